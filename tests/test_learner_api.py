"""
The learner API the MFEs call (``GET /pok/api/v1/learner/credentials``): every state in the learner's words with
what they can do next, only the requesting learner's credentials, the LMS's JWT (header and cookie pair) and session
authentication, a bounded list, a constant number of queries and no POK call, and the request's language.

Requests go through Django's test client against the sandbox LMS's URLs (the plugin's ``url_config`` mounted as the
LMS mounts it); JWTs are signed as the LMS signs them (``JWT_AUTH`` in test_settings.py) with edx-drf-extensions'
own test helpers, and sent as the MFEs send them.
"""
import json
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone, translation
from rest_framework.authentication import SessionAuthentication

from lms_sandbox.factories import UserFactory
from openedx_pok import learner_api
from openedx_pok.course_setup import configuration
from openedx_pok.issuance.states import CredentialStatus, release_reason
from openedx_pok.models import CertificateTemplate, PokCertificate
from test_utils import credential_of
from test_utils.factories import CredentialFactory

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent
URL = "/pok/api/v1/learner/credentials"
#: What staff read on a held or failed credential: never shown to the learner.
INTERNAL_REASON = "POK refused the credential: template tpl-secret does not exist (account acme)."


@pytest.fixture(autouse=True)
def fresh_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def learner(db):
    return UserFactory(profile__name="Ada Lovelace")


@pytest.fixture
def signed_in(client, learner):
    client.force_login(learner)
    return client


def fetch(client, status=200, headers=None, **params):
    response = client.get(URL, params, **(headers or {}))
    assert response.status_code == status, response.content
    return response.json()


def only_item(client, **params):
    body = fetch(client, **params)
    assert body["count"] == 1 and len(body["results"]) == 1, body
    return body["results"][0]


def nothing():
    """The answer for a learner without a credential (of that course): no result, and the widgets' words still."""
    return {"count": 0, "limit": learner_api.LIMIT, "labels": learner_api.widget_labels(), "results": []}


def credential(learner, **traits):
    return CredentialFactory(user=learner, **traits)


# --- every state, in the learner's words --------------------------------------------------------------------------


@pytest.mark.parametrize("traits", [{}, {"requesting": True}, {"in_progress": True}], ids=["pending", "requesting",
                                                                                            "in_progress"])
def test_a_credential_on_its_way_is_being_issued_with_nothing_to_do(signed_in, learner, traits):
    row = credential(learner, **traits)
    item = only_item(signed_in)
    assert item["course_id"] == str(row.course_key) and item["reference"] == str(row.uuid)
    assert item["status"] == "in_progress" and item["status_label"] == "In progress"
    assert item["title"] == "Your credential is being issued" and "a few moments" in item["message"]
    assert item["next_step"] == "none" and item["action"] is None
    assert item["view_url"] is None and item["share"] == [] and item["linkedin_url"] is None
    assert item["emitted"] is False and item["available_date"] is None


def test_a_credential_waiting_for_the_learner_asks_them_to_accept_it_by_email(signed_in, learner):
    credential(learner, in_progress=True, pok_state="waitingForApproval")
    item = only_item(signed_in)
    assert item["status"] == "in_progress" and item["next_step"] == "accept_by_email"
    assert item["title"] == "Accept your credential" and "e-mail" in item["message"] and "accept" in item["message"]
    assert item["view_url"] is None and item["action"] is None


def test_pok_states_that_wait_for_the_issuer_ask_nothing_of_the_learner(signed_in, learner):
    credential(learner, in_progress=True, pok_state="requestingSignature")
    item = only_item(signed_in)
    assert item["next_step"] == "none" and item["title"] == "Your credential is being issued"


def test_a_scheduled_credential_says_until_when_to_wait(signed_in, learner):
    date = (timezone.now() + timedelta(days=3)).replace(microsecond=0)
    credential(learner, status=CredentialStatus.SCHEDULED, not_before=date, status_reason=release_reason(date))
    item = only_item(signed_in)
    assert item["status"] == "scheduled" and item["next_step"] == "wait_until_date"
    assert item["available_date"] == date.isoformat()
    assert item["message"] == release_reason(date) and str(date.year) in item["message"]
    assert item["title"] == "Your credential is scheduled" and item["view_url"] is None


def test_a_scheduled_credential_without_a_date_says_so(signed_in, learner):
    credential(learner, status=CredentialStatus.SCHEDULED, not_before=None)
    item = only_item(signed_in)
    assert item["next_step"] == "wait_until_date" and item["available_date"] is None
    assert item["message"] == release_reason(None)


def test_a_credential_held_for_the_learners_name_links_their_account_settings(client, db):
    nameless = UserFactory(profile__name="")
    credential(nameless, held=True)
    client.force_login(nameless)
    item = only_item(client)
    assert item["status"] == "delayed" and item["next_step"] == "set_full_name"
    assert item["title"] == "Your credential is being prepared" and "full name" in item["message"]
    assert item["action"] == {"label": "Set your full name in your account settings",
                              "url": "http://testserver/account/settings"}
    assert "no usable name" not in json.dumps(item)  # the staff's reason stays with staff


def test_the_account_link_follows_the_account_mfe(client, settings, db):
    settings.ACCOUNT_MICROFRONTEND_URL = "https://apps.example.org/account/"
    nameless = UserFactory(profile__name="  ")
    credential(nameless, held=True)
    client.force_login(nameless)
    assert only_item(client)["action"]["url"] == "https://apps.example.org/account/"


def test_a_credential_held_for_the_learners_email_asks_them_to_update_it(client, db):
    learner = UserFactory(profile__name="Ada Lovelace", email="ada-at-example")
    credential(learner, held=True)
    client.force_login(learner)
    item = only_item(client)
    assert item["next_step"] == "update_email" and "e-mail" in item["message"]
    assert item["action"]["label"] == "Update your e-mail address in your account settings"


@pytest.mark.parametrize("traits", [{"held": True}, {"failed": True}, {"failed_retryable": True}],
                         ids=["held", "failed", "failed_retryable"])
def test_a_credential_delayed_on_staffs_side_says_so_and_leaks_no_reason(signed_in, learner, traits):
    row = credential(learner, status_reason=INTERNAL_REASON, **traits)
    item = only_item(signed_in)
    assert item["status"] == "delayed" and item["status_label"] == "Delayed"
    assert item["next_step"] == "none" and item["action"] is None
    assert item["title"] == "Your credential is being prepared"
    assert str(row.uuid) in item["message"] and "support" in item["message"]
    body = json.dumps(item)
    assert "tpl-secret" not in body and "refused" not in body and "acme" not in body


def test_a_held_credential_of_a_retired_learner_says_nothing_about_their_data(client, db):
    nameless = UserFactory(profile__name="")
    credential(nameless, held=True, receiver={"retired": True})
    client.force_login(nameless)
    item = only_item(client)
    assert item["next_step"] == "none" and item["action"] is None


def test_an_emitted_credential_gives_its_page_and_the_linkedin_link(signed_in, learner):
    row = credential(learner, emitted=True)
    item = only_item(signed_in)
    assert item["status"] == "emitted" and item["emitted"] is True and item["next_step"] == "view"
    assert item["view_url"] == row.view_url and item["action"] == {"label": "View your credential",
                                                                   "url": row.view_url}
    assert item["course_name"] == row.title and item["title"] == "Your credential is ready"
    linkedin = urlsplit(item["linkedin_url"])
    assert f"{linkedin.scheme}://{linkedin.netloc}{linkedin.path}" == "https://www.linkedin.com/profile/add"
    query = parse_qs(linkedin.query)
    assert query["certUrl"] == [row.view_url] and query["certId"] == [row.pok_credential_id]
    assert query["name"] == [row.title] and query["startTask"] == ["CERTIFICATION_NAME"]
    assert item["share"] == [{"id": "linkedin", "label": "Add to LinkedIn profile", "url": item["linkedin_url"]}]


def test_the_share_links_are_the_sites(signed_in, learner, settings):
    settings.SANDBOX_SITE_CONFIGURATION = {"POK_SHARE_LINKS": ["x"]}
    row = credential(learner, emitted=True)
    item = only_item(signed_in)
    assert [link["id"] for link in item["share"]] == ["x"] and item["linkedin_url"] is None
    assert item["view_url"] == row.view_url


def test_an_emitted_credential_off_the_allowed_hosts_is_not_linked(signed_in, learner):
    credential(learner, emitted=True, view_url="https://evil.example.org/view/1")
    item = only_item(signed_in)
    assert item["status"] == "in_progress" and item["view_url"] is None and item["linkedin_url"] is None


def test_a_revoked_credential_says_so_without_any_address(signed_in, learner):
    row = credential(learner, revoked=True)
    item = only_item(signed_in)
    assert item["status"] == "revoked" and item["title"] == "Your credential was revoked"
    assert item["next_step"] == "none" and item["action"] is None
    assert item["view_url"] is None and item["share"] == [] and item["linkedin_url"] is None
    body = json.dumps(item)
    assert row.view_url not in body and row.pok_credential_id not in body and "Revoke credential" not in body


def test_a_credential_from_the_real_flow_reads_as_emitted(client, pok, course, lms):
    ada = UserFactory(profile__name="Ada Lovelace")
    lms.award(ada, course)
    row = credential_of(ada, course)
    assert row.status == CredentialStatus.EMITTED
    client.force_login(ada)
    item = only_item(client, course_id=str(course.id))
    assert item["view_url"] == row.view_url and item["course_name"] == "Verifiable Credentials 101"
    assert item["linkedin_url"] and item["next_step"] == "view"


# --- whose credentials, which courses, how many -------------------------------------------------------------------


def test_only_the_requesting_learners_credentials_are_listed(client, learner):
    mine = credential(learner, emitted=True)
    other = UserFactory()
    theirs = credential(other, emitted=True)
    credential(other, held=True, course_key=mine.course_key)
    client.force_login(learner)
    body = fetch(client)
    assert body["count"] == 1 and [item["reference"] for item in body["results"]] == [str(mine.uuid)]
    assert theirs.view_url not in json.dumps(body)
    # A course where only the other learner has a credential: nothing, not theirs.
    assert fetch(client, course_id=str(theirs.course_key)) == nothing()


def test_course_id_gives_that_courses_credential_only(signed_in, learner):
    wanted = credential(learner, in_progress=True)
    credential(learner, emitted=True)
    item = only_item(signed_in, course_id=str(wanted.course_key))
    assert item["reference"] == str(wanted.uuid)


def test_a_course_that_is_not_mapped_gives_an_empty_list(signed_in, learner):
    assert fetch(signed_in, course_id="course-v1:Nobody+Mapped+2026")["results"] == []
    row = credential(learner, emitted=True)
    CertificateTemplate.objects.filter(course_key=row.course_key).delete()
    # Its certificate page is the Open edX one again: the widgets show nothing of POK for it either.
    assert fetch(signed_in, course_id=str(row.course_key)) == nothing()
    assert fetch(signed_in)["count"] == 0


def test_a_course_id_that_is_not_a_key_is_a_400(signed_in):
    body = fetch(signed_in, status=400, course_id="not a course key")
    assert body["detail"]


def test_newest_first_and_bounded_with_the_total(signed_in, learner, monkeypatch):
    rows = [credential(learner, emitted=True) for _ in range(3)]
    now = timezone.now()
    for age, row in zip((2, 0, 1), rows, strict=True):
        PokCertificate.objects.filter(id=row.id).update(created=now - timedelta(days=age))
    body = fetch(signed_in)
    assert body["count"] == 3 and [item["reference"] for item in body["results"]] == [
        str(rows[1].uuid), str(rows[2].uuid), str(rows[0].uuid)]
    monkeypatch.setattr(learner_api, "LIMIT", 2)
    body = fetch(signed_in)
    assert body["count"] == 3 and body["limit"] == 2 and len(body["results"]) == 2
    assert body["results"][0]["reference"] == str(rows[1].uuid)


def test_the_answer_is_never_cached(signed_in, learner):
    credential(learner)
    assert signed_in.get(URL)["Cache-Control"] == "no-store"


# --- cost: the database only, a constant number of statements -----------------------------------------------------


def _queries(client):
    with CaptureQueriesContext(connection) as queries:
        body = fetch(client)
    # Statements, not the savepoints of the request's transaction (ATOMIC_REQUESTS inside the test's).
    return body, [query["sql"] for query in queries if "SAVEPOINT" not in query["sql"]]


def test_a_constant_number_of_queries_and_no_pok_call(client, pok, db):
    def learner_with(count):
        # Every kind of credential, held ones of a nameless learner included (the only ones that read the profile).
        learner = UserFactory(profile__name="")
        kinds = [{"emitted": True}, {"held": True}, {"in_progress": True, "pok_state": "waitingForApproval"},
                 {"revoked": True}, {"failed": True}, {"status": CredentialStatus.SCHEDULED}]
        for index in range(count):
            credential(learner, **kinds[index % len(kinds)])
        return learner

    few, many = learner_with(2), learner_with(13)
    configuration.mapping_for(PokCertificate.objects.first().course_key)  # the mappings cached, as in a running LMS
    costs = {}
    for learner in (few, many):
        client.force_login(learner)
        body, queries = _queries(client)
        assert body["count"] == len(body["results"]) == PokCertificate.objects.filter(user=learner).count()
        plugin = [sql for sql in queries if "openedx_pok" in sql]
        assert len(plugin) == 2, plugin  # the learner's courses, then their credentials
        costs[learner.id] = len(queries)
    assert costs[few.id] == costs[many.id] <= 5, (costs, queries)  # the session, the user and the held ones' profile
    client.force_login(many)
    course_id = str(PokCertificate.objects.filter(user=many).first().course_key)
    with CaptureQueriesContext(connection) as queries:
        fetch(client, course_id=course_id)
    assert len([query for query in queries if "openedx_pok" in query["sql"]]) == 1
    assert pok.count() == 0


def test_a_learner_without_credentials_costs_one_statement_of_the_plugin(signed_in):
    _, queries = _queries(signed_in)
    assert len([sql for sql in queries if "openedx_pok" in sql]) == 1


# --- authentication, as the LMS's MFE APIs ------------------------------------------------------------------------


def test_anonymous_requests_are_refused(client, learner):
    credential(learner, emitted=True)
    response = client.get(URL)
    # JwtAuthentication, first, answers 401 with its WWW-Authenticate; the session alone answers 403.
    assert response.status_code == (401 if len(learner_api.authentication_classes()) == 2 else 403)
    assert "results" not in response.json()


def jwt_for(user, other_key=False, **claims):
    """A JWT of ``user`` as the LMS makes them for its MFEs: RS512, signed with the LMS's key (or another one)."""
    utils = pytest.importorskip("edx_rest_framework_extensions.auth.jwt.tests.utils")
    payload = {**utils.generate_latest_version_payload(user), **claims}
    if not other_key:
        return utils.generate_asymmetric_jwt_token(payload)
    from cryptography.hazmat.primitives.asymmetric import rsa
    from jwt import encode

    return encode(payload, rsa.generate_private_key(public_exponent=65537, key_size=2048), algorithm="RS512")


def send_as_the_mfes_do(client, settings, token):
    """The JWT cookie pair of the MFEs: header and payload in one cookie, the signature in the other."""
    header, payload, signature = token.split(".")
    client.cookies[settings.JWT_AUTH["JWT_AUTH_COOKIE_HEADER_PAYLOAD"]] = f"{header}.{payload}"
    client.cookies[settings.JWT_AUTH["JWT_AUTH_COOKIE_SIGNATURE"]] = signature


def test_a_jwt_in_the_authorization_header_answers_for_its_learner(client, learner):
    mine = credential(learner, emitted=True)
    credential(UserFactory(), emitted=True)
    body = fetch(client, headers={"HTTP_AUTHORIZATION": f"JWT {jwt_for(learner)}"})
    assert [item["reference"] for item in body["results"]] == [str(mine.uuid)]


def test_the_jwt_cookie_pair_of_the_mfes_answers_for_its_learner(client, settings, learner):
    mine = credential(learner, in_progress=True)
    send_as_the_mfes_do(client, settings, jwt_for(learner))
    body = fetch(client, course_id=str(mine.course_key))
    assert [item["reference"] for item in body["results"]] == [str(mine.uuid)]


def test_another_learners_jwt_sees_only_their_own(client, learner):
    credential(learner, emitted=True)
    other = UserFactory()
    assert fetch(client, headers={"HTTP_AUTHORIZATION": f"JWT {jwt_for(other)}"})["results"] == []


@pytest.mark.parametrize("problem", ["expired", "wrong_key", "wrong_issuer"])
def test_an_invalid_jwt_is_a_401(client, learner, problem):
    credential(learner, emitted=True)
    now = int(time.time())
    token = {
        "expired": lambda: jwt_for(learner, iat=now - 7200, exp=now - 3600),
        "wrong_key": lambda: jwt_for(learner, other_key=True),
        "wrong_issuer": lambda: jwt_for(learner, iss="https://elsewhere.example.org/oauth2"),
    }[problem]()
    response = client.get(URL, HTTP_AUTHORIZATION=f"JWT {token}")
    assert response.status_code == 401 and "results" not in response.json()


def test_an_expired_jwt_cookie_without_a_session_is_a_401(client, settings, learner):
    now = int(time.time())
    send_as_the_mfes_do(client, settings, jwt_for(learner, iat=now - 7200, exp=now - 3600))
    assert client.get(URL).status_code == 401


def test_a_forged_jwt_cookie_of_another_learner_beside_a_session_is_a_401(client, settings, learner):
    """A bad JWT cookie is forgiven (the session decides) unless it names another user than the session's: then
    edx-drf-extensions refuses the request, and nothing of either learner is answered."""
    credential(learner, emitted=True)
    intruder = UserFactory()
    client.force_login(learner)
    send_as_the_mfes_do(client, settings, jwt_for(intruder, other_key=True))
    response = client.get(URL)
    assert response.status_code == 401 and "results" not in response.json()
    client.cookies.clear()
    client.force_login(learner)
    send_as_the_mfes_do(client, settings, jwt_for(learner, other_key=True))  # the same learner's, badly signed
    assert fetch(client)["count"] == 1


def test_without_edx_drf_extensions_the_session_alone_quietly(client, learner, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "edx_rest_framework_extensions.auth.jwt.authentication", None)
    with caplog.at_level("DEBUG"):
        classes = learner_api.authentication_classes.__wrapped__()  # not the cached answer of this process
    assert classes == (SessionAuthentication,)
    assert not [record for record in caplog.records if record.name.startswith("openedx_pok")]
    monkeypatch.setattr(learner_api, "authentication_classes", lambda: classes)
    credential(learner, emitted=True)
    assert client.get(URL).status_code == 403  # DRF's answer without an authentication scheme to announce
    client.force_login(learner)
    assert fetch(client)["count"] == 1


def test_with_edx_drf_extensions_the_jwt_comes_first():
    jwt = pytest.importorskip("edx_rest_framework_extensions.auth.jwt.authentication")
    assert learner_api.authentication_classes() == (jwt.JwtAuthentication, SessionAuthentication)


def test_loading_the_urls_imports_no_jwt_library():
    """The LMS loads the plugin's URLs while some of its settings phases lack what edx-drf-extensions reads."""
    probe = ("import sys, django; django.setup(); import openedx_pok.urls; "
             "print(sorted(name for name in sys.modules if name.startswith(('rest_framework_jwt', 'edx_rest_fr'))))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120,
                            cwd=ROOT, env={**os.environ, "DJANGO_SETTINGS_MODULE": "test_settings",
                                           "PYTHONPATH": str(ROOT)})
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stdout


# --- the request's language ---------------------------------------------------------------------------------------


def test_the_words_follow_the_requests_language(client, db):
    nameless = UserFactory(profile__name="")
    credential(nameless, held=True)
    credential(nameless, in_progress=True)
    date = timezone.now() + timedelta(days=3)
    credential(nameless, status=CredentialStatus.SCHEDULED, not_before=date)
    client.force_login(nameless)
    body = fetch(client, headers={"HTTP_ACCEPT_LANGUAGE": "es-419"})
    by_step = {item["status"] + ":" + item["next_step"]: item for item in body["results"]}
    held, issuing = by_step["delayed:set_full_name"], by_step["in_progress:none"]
    assert held["title"] == "Su credencial se está preparando" and held["status_label"] == "Demorada"
    assert held["action"]["label"] == "Indique su nombre completo en la configuración de su cuenta"
    assert issuing["title"] == "Su credencial se está emitiendo" and issuing["status_label"] == "En curso"
    with translation.override("es-419"):
        assert by_step["scheduled:wait_until_date"]["message"] == release_reason(date)
    assert by_step["scheduled:wait_until_date"]["message"].startswith("Se emitirá el")
    english = fetch(client, headers={"HTTP_ACCEPT_LANGUAGE": "en"})
    assert {item["title"] for item in english["results"]} >= {"Your credential is being prepared",
                                                             "Your credential is being issued"}


def test_the_widgets_own_words_come_with_the_answer_in_its_language(signed_in, learner):
    """The MFE widgets have no message catalog of their own: their heading, link texts and the loading and error lines
    come translated with every answer, an empty one included (the widget then shows nothing, but may say it failed)."""
    labels = fetch(signed_in, headers={"HTTP_ACCEPT_LANGUAGE": "en"})["labels"]
    assert labels == {"heading": "My credentials", "status": "Status", "open": "Open",
                      "share_linkedin": "Share on LinkedIn", "loading": "Checking for updates…",
                      "error": "Your credential's status could not be updated. Reload the page to try again."}
    credential(learner, emitted=True)
    spanish = fetch(signed_in, headers={"HTTP_ACCEPT_LANGUAGE": "es-419"})
    with translation.override("es-419"):
        assert spanish["labels"] == learner_api.widget_labels()
    assert set(spanish["labels"]) == set(labels) and all(spanish["labels"].values())
