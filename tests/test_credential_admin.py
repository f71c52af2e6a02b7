"""
The credential admin of issue 10: the history every status change writes, the staff actions (retry, refresh,
re-issue, mark revoked) behind a confirmation page and recorded with the staff member, the filters, the counts per
status above the list and the link to the credential on POK. Issue 20: a credential's page that is read-only (no
Save, no Delete) with its actions and what happens next, its header, POSTs and history in sentences; confirmation
pages with usernames and what will change; POK's states in the staff member's language. Against the POK simulator,
through Django's test client.
"""
import re
from datetime import timedelta
from html import unescape
from urllib.parse import urlencode

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import Promise

from lms_sandbox.factories import UserFactory
from openedx_pok import api, tasks
from openedx_pok.issuance import staff_actions, states
from openedx_pok.issuance.history import Cause
from openedx_pok.models import CertificateTemplate, CredentialEvent, CredentialStatus, PokCertificate
from pok_simulator import Fault
from test_utils.factories import CourseMappingFactory, CredentialFactory
from test_utils.helpers import credential_of

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:openedx_pok_pokcertificate_changelist"


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_superuser("boss", "boss@example.com", "pw")


@pytest.fixture
def admin_client(client, staff):
    client.force_login(staff)
    return client


def history_of(row):
    return list(CredentialEvent.objects.filter(credential_id=row.id).order_by("id")
                .values_list("cause", "from_status", "to_status", "attempt", "pok_id", "actor_id"))


def act(client, action, rows, confirm=True, captured=None, **extra):
    """Run an admin action on ``rows``; ``confirm`` answers its confirmation page."""
    data = {"action": action, "_selected_action": [row.id for row in rows], **extra}
    if confirm:
        data["post"] = "yes"
    if captured is None:
        return client.post(reverse(CHANGELIST), data, follow=True)
    with captured(execute=True):
        return client.post(reverse(CHANGELIST), data, follow=True)


# ---- the history ------------------------------------------------------------------------------------------------

def test_an_issuance_writes_one_history_line_with_the_attempt_and_pok_id(pok, course, learner, lms):
    lms.award(learner, course)
    row = credential_of(learner, course)
    assert row.status == CredentialStatus.EMITTED
    assert history_of(row) == [(Cause.ISSUANCE, CredentialStatus.REQUESTING, CredentialStatus.EMITTED, 1,
                                row.pok_credential_id, None)]


def test_a_refused_post_and_a_staff_retry_are_in_the_history(
        pok, course, learner, lms, admin_client, staff, django_capture_on_commit_callbacks):
    pok.add_fault(Fault("status", endpoint="issue_credential", status=400, times=1))
    lms.award(learner, course)
    row = credential_of(learner, course)
    assert row.status == CredentialStatus.FAILED
    [failed] = CredentialEvent.objects.filter(credential_id=row.id)
    assert (failed.to_status, failed.attempt, failed.cause) == (CredentialStatus.FAILED, 1, Cause.ISSUANCE)
    assert failed.reason == row.status_reason and "POK refused" in failed.reason

    response = act(admin_client, "retry_issuance", [row], captured=django_capture_on_commit_callbacks)
    assert b"1 credential scheduled for issuance" in response.content
    row = credential_of(learner, course)
    assert row.status == CredentialStatus.EMITTED
    assert history_of(row)[1:] == [
        (Cause.STAFF_RETRY, CredentialStatus.FAILED, CredentialStatus.PENDING, 1, "", staff.id),
        (Cause.ISSUANCE, CredentialStatus.REQUESTING, CredentialStatus.EMITTED, 2, row.pok_credential_id, None),
    ]


def test_the_reconcile_run_writes_lines_only_for_the_rows_it_changed(pok, settings):
    settings.POK_RETRY_AMBIGUOUS = False
    stale = timezone.now() - timedelta(hours=1)
    abandoned = CredentialFactory(requesting=True)
    PokCertificate.objects.filter(id=abandoned.id).update(modified=stale)
    fresh = CredentialFactory(requesting=True)  # a worker is sending it right now: not abandoned
    api.reconcile(inline=True)
    assert credential_of(abandoned.user, _course(abandoned)).status == CredentialStatus.FAILED
    assert history_of(abandoned) == [(Cause.RECONCILE, CredentialStatus.REQUESTING, CredentialStatus.FAILED, 1, "",
                                      None)]
    assert history_of(fresh) == []


def _course(row):
    class Course:
        id = row.course_key
    return Course


def test_the_change_page_shows_the_history_read_only_without_learner_data(
        pok, course, learner, lms, admin_client, staff, django_capture_on_commit_callbacks):
    pok.add_fault(Fault("status", endpoint="issue_credential", status=400, times=1))
    lms.award(learner, course)
    row = credential_of(learner, course)
    act(admin_client, "retry_issuance", [row], captured=django_capture_on_commit_callbacks)
    response = admin_client.get(reverse("admin:openedx_pok_pokcertificate_change", args=[row.id]))
    html = response.content.decode()
    assert response.status_code == 200
    assert "Staff member boss retried it: from Failed to Pending." in html
    assert "The issuance task moved it from Requesting to Failed." in html
    inline = response.context["inline_admin_formsets"][0]
    assert len(inline.formset.forms) == 3 and not inline.has_add_permission and not inline.has_delete_permission
    lines = " ".join(CredentialEvent.objects.values_list("reason", flat=True))
    assert learner.email not in lines and "Lovelace" not in lines


# ---- the actions ------------------------------------------------------------------------------------------------

def test_every_action_asks_for_confirmation_first(pok, admin_client):
    rows = [CredentialFactory(failed=True), CredentialFactory(emitted=True)]
    for action in ("retry_issuance", "refresh_from_pok", "reissue_credentials", "mark_revoked"):
        response = act(admin_client, action, rows, confirm=False)
        html = response.content.decode()
        assert response.status_code == 200 and 'name="post" value="yes"' in html, action
        assert "2 credentials are selected" in html, action
        assert all(f'name="_selected_action" value="{row.id}"' in html for row in rows), action
    assert list(PokCertificate.objects.order_by("id").values_list("status", flat=True)) == [
        CredentialStatus.FAILED, CredentialStatus.EMITTED]
    assert not CredentialEvent.objects.exists()


def test_reissue_makes_a_new_credential_and_keeps_the_old_one_as_replaced(
        pok, course, learner, lms, admin_client, staff, django_capture_on_commit_callbacks):
    lms.award(learner, course)
    old = credential_of(learner, course)
    response = act(admin_client, "reissue_credentials", [old], captured=django_capture_on_commit_callbacks)
    assert b"1 credential scheduled for re-issue" in response.content
    new = credential_of(learner, course)
    assert new.status == CredentialStatus.EMITTED and new.pok_credential_id != old.pok_credential_id
    assert new.previous_credential_ids == [old.pok_credential_id] and new.issuance == old.issuance + 1
    assert len(pok.credentials_for(learner.email)) == 2  # the old one stays on POK until revoked there
    replaced = CredentialEvent.objects.get(credential_id=new.id, cause=Cause.STAFF_REISSUE)
    assert (replaced.pok_id, replaced.actor_id) == (old.pok_credential_id, staff.id)
    assert f"replaces POK credential {old.pok_credential_id}" in replaced.reason


def test_reissue_leaves_credentials_without_a_pok_credential(pok, admin_client):
    held = CredentialFactory(held=True)
    response = act(admin_client, "reissue_credentials", [held])
    assert b"has no POK credential to replace" in response.content
    assert PokCertificate.objects.get().status == CredentialStatus.HELD


def test_mark_revoked_needs_a_reason_and_reminds_to_revoke_on_pok(pok, admin_client, staff):
    row = CredentialFactory(emitted=True)
    response = act(admin_client, "mark_revoked", [row])  # confirmed, but no reason given
    assert b"Give the reason" in response.content
    assert PokCertificate.objects.get().status == CredentialStatus.EMITTED
    response = act(admin_client, "mark_revoked", [row], reason="Plagiarism found by the course team.")
    assert b"1 credential marked revoked. Revoke it on POK as well." in response.content
    row.refresh_from_db()
    assert row.status == CredentialStatus.REVOKED
    assert row.status_reason == (f"Plagiarism found by the course team. Revoke credential {row.pok_credential_id} "
                                 "on POK as well.")
    assert history_of(row) == [(Cause.STAFF_REVOKE, CredentialStatus.EMITTED, CredentialStatus.REVOKED, 1,
                                row.pok_credential_id, staff.id)]
    response = act(admin_client, "mark_revoked", [row], reason="again")
    assert b"1 credential was already revoked" in response.content


def test_refresh_is_recorded_with_the_staff_member(
        pok, course, learner, lms, admin_client, staff, django_capture_on_commit_callbacks):
    pok.emission_mode = "async"
    pok.polls_until_emitted = 1
    lms.award(learner, course)
    row = credential_of(learner, course)
    assert row.status == CredentialStatus.IN_PROGRESS
    act(admin_client, "refresh_from_pok", [row], captured=django_capture_on_commit_callbacks)
    row.refresh_from_db()
    assert row.status == CredentialStatus.EMITTED
    causes = [line[0] for line in history_of(row)]
    assert causes == [Cause.ISSUANCE, Cause.STAFF_REFRESH, Cause.REFRESH]
    assert CredentialEvent.objects.get(cause=Cause.STAFF_REFRESH).actor_id == staff.id


def test_an_action_across_all_filtered_rows_applies_to_the_filter_only(pok, admin_client):
    failed = [CredentialFactory(failed=True) for _index in range(3)]
    emitted = CredentialFactory(emitted=True)
    url = reverse(CHANGELIST) + "?status__exact=failed"
    page = admin_client.post(url, {"action": "mark_revoked", "select_across": "1", "index": "0",
                                   "_selected_action": [failed[0].id]})
    assert b"3 credentials are selected" in page.content
    admin_client.post(url, {"action": "mark_revoked", "select_across": "1", "index": "0", "post": "yes",
                            "_selected_action": [failed[0].id], "reason": "Course withdrawn."})
    assert set(PokCertificate.objects.filter(status=CredentialStatus.REVOKED).values_list("id", flat=True)) == {
        row.id for row in failed}
    assert PokCertificate.objects.get(id=emitted.id).status == CredentialStatus.EMITTED


def test_actions_need_the_change_permission(pok, client):
    viewer = get_user_model().objects.create_user("viewer", "viewer@example.com", "pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_pokcertificate"))
    client.force_login(viewer)
    row = CredentialFactory(failed=True)
    response = client.get(reverse(CHANGELIST))
    actions = [choice[0] for choice in response.context["action_form"].fields["action"].choices]
    assert "export_csv" in actions
    assert not {"retry_issuance", "refresh_from_pok", "reissue_credentials", "mark_revoked"} & set(actions)
    act(client, "mark_revoked", [row], reason="no")
    assert PokCertificate.objects.get().status == CredentialStatus.FAILED


# ---- the list: filters, counts, link ---------------------------------------------------------------------------

def shown(response):
    return {row.id for row in response.context["cl"].result_list}


def test_each_filter_narrows_the_list(pok, admin_client, settings):
    settings.POK_ACCOUNTS = {"other": {"url": pok.url, "key": "k2"}}
    first = CourseMappingFactory(course_key="course-v1:OrgA+C1+2026").course_key
    second = CourseMappingFactory(course_key="course-v1:OrgB+C2+2026").course_key
    old_day = timezone.now() - timedelta(days=40)
    waiting = CredentialFactory(in_progress=True, pok_state="waitingForApproval", course_key=first)
    emitted = CredentialFactory(emitted=True, course_key=first, emission_date=old_day)
    other_org = CredentialFactory(emitted=True, course_key=second, account="other")
    week_ago = (timezone.now() - timedelta(days=7)).replace(hour=0, minute=0, second=0, microsecond=0)
    cases = {
        "status__exact=emitted": {emitted.id, other_org.id},
        "pok_state=waitingForApproval": {waiting.id},
        f"course={first}": {waiting.id, emitted.id},
        "org=OrgB": {other_org.id},
        "account=other": {other_org.id},
        f"emission_date__gte={week_ago}": {other_org.id},
        "course=not-a-course-key": set(),
        "course=course-v1:Unmapped+X+2026": set(),  # a course without a mapping (a shared link): still applied
        "org=NoMapping": set(),
    }
    for query, expected in cases.items():
        name, value = query.split("=", 1)
        response = admin_client.get(reverse(CHANGELIST), {name: value})
        assert response.status_code == 200, query
        assert shown(response) == expected, query
    html = admin_client.get(reverse(CHANGELIST)).content.decode()
    for choice in ({"pok_state": "waitingForApproval"}, {"course": str(first)}, {"org": "OrgA"}, {"org": "OrgB"},
                   {"account": "other"}):
        assert f'href="?{urlencode(choice)}"' in html, choice


def test_counts_per_status_are_shown_cached_and_forgotten_after_an_action(pok, admin_client):
    rows = [CredentialFactory(failed=True), CredentialFactory(failed=True), CredentialFactory(emitted=True)]
    response = admin_client.get(reverse(CHANGELIST))
    counts = {status: count for status, _label, count, _shown in response.context["status_counts"]}
    assert counts[CredentialStatus.FAILED] == 2 and counts[CredentialStatus.EMITTED] == 1
    assert counts[CredentialStatus.PENDING] == 0
    assert 'href="?status__exact=failed"' in response.content.decode()
    assert staff_actions.status_counts() == {CredentialStatus.FAILED: 2, CredentialStatus.EMITTED: 1}
    PokCertificate.objects.filter(id=rows[0].id).update(status=CredentialStatus.HELD)  # not through an action
    assert staff_actions.status_counts()[CredentialStatus.FAILED] == 2  # still the cached counts
    act(admin_client, "mark_revoked", [rows[1]], reason="Withdrawn.")  # forgets them: the list counts again
    assert staff_actions.status_counts() == {CredentialStatus.HELD: 1, CredentialStatus.REVOKED: 1,
                                   CredentialStatus.EMITTED: 1}


def test_the_list_links_to_the_pok_page_of_allowed_hosts_only(pok, admin_client, settings):
    good = CredentialFactory(emitted=True)
    bad = CredentialFactory(emitted=True, view_url="https://evil.example.net/c/1")
    html = admin_client.get(reverse(CHANGELIST)).content.decode()
    assert f'href="{good.view_url}" target="_blank" rel="noopener noreferrer"' in html
    assert bad.view_url not in html.split('id="result_list"')[1]
    page = admin_client.get(reverse("admin:openedx_pok_pokcertificate_change", args=[good.id])).content.decode()
    assert f'href="{good.view_url}"' in page


def test_retirement_blanks_history_lines_that_mention_the_learner(pok, course, learner, lms):
    lms.award(learner, course)
    row = credential_of(learner, course)
    CredentialEvent.objects.create(credential=row, to_status=CredentialStatus.HELD,
                                   reason=f"Name {learner.profile.name} is too long")
    api.retire_learner(learner.id)
    reasons = list(CredentialEvent.objects.filter(credential=row).values_list("reason", flat=True))
    assert "" in reasons and not [reason for reason in reasons if "Lovelace" in reason]
    assert CredentialEvent.objects.filter(credential=row).count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_history_that_cannot_be_written_never_fails_the_status_change(pok, monkeypatch, caplog):
    """E.g. the package upgraded and the LMS running before ``migrate`` made the history table."""
    from django.db import ProgrammingError

    from openedx_pok.issuance import history

    def table_missing(*args, **kwargs):
        raise ProgrammingError("no such table: openedx_pok_credential_event")

    monkeypatch.setattr(history, "record", table_missing)
    monkeypatch.setattr(tasks, "enqueue_issuance", lambda *args, **kwargs: None)
    row = CredentialFactory(failed=True)
    assert staff_actions.retry(row)
    assert PokCertificate.objects.get(id=row.id).status == CredentialStatus.PENDING
    assert "history of 1 credentials not written (ProgrammingError)" in caplog.text


def test_an_action_on_a_credential_that_moved_meanwhile_does_nothing(pok, admin_client, monkeypatch):
    """The admin read the row as failed; a reconcile run made it pending before staff confirmed: no second send."""
    sent = []
    monkeypatch.setattr(tasks, "enqueue_issuance", lambda row_id, **kwargs: sent.append(row_id))
    row = CredentialFactory(failed=True)
    PokCertificate.objects.filter(id=row.id).update(status=CredentialStatus.PENDING)
    assert not staff_actions.retry(row) and not staff_actions.reissue(row) and sent == []
    assert PokCertificate.objects.get(id=row.id).status == CredentialStatus.PENDING
    assert not CredentialEvent.objects.exists()


# ---- issue 20: the credential's page -------------------------------------------------------------------------

CHANGE = "admin:openedx_pok_pokcertificate_change"
PAGE_ACTION = "admin:openedx_pok_pokcertificate_page_action"


def page_of(client, row):
    response = client.get(reverse(CHANGE, args=[row.id]))
    assert response.status_code == 200
    return response


def page_actions(response):
    return re.findall(r'class="pok-page-action" data-action="(\w+)"', response.content.decode())


def next_step(response):
    return unescape(re.search(r'<p class="pok-next-step"><strong>What happens next:</strong> (.*?)</p>',
                              response.content.decode(), re.S).group(1))


def test_the_page_of_a_credential_has_no_save_or_delete(pok, admin_client):
    html = page_of(admin_client, CredentialFactory(failed=True)).content.decode()
    assert 'name="_save"' not in html and 'name="_continue"' not in html and 'name="_addanother"' not in html
    assert "deletelink" not in html and "/delete/" not in html


@pytest.mark.parametrize(("trait", "actions"), [
    ({"failed": True}, ["retry_issuance", "mark_revoked"]),
    ({"held": True}, ["retry_issuance", "mark_revoked"]),
    ({"in_progress": True}, ["refresh_from_pok", "reissue_credentials", "mark_revoked"]),
    ({"emitted": True}, ["reissue_credentials", "mark_revoked"]),
    ({"revoked": True}, ["reissue_credentials"]),
    ({}, ["mark_revoked"]),  # pending: on its way
])
def test_the_page_offers_the_actions_that_would_change_the_credential(pok, admin_client, trait, actions):
    assert page_actions(page_of(admin_client, CredentialFactory(**trait))) == actions


def test_an_action_from_the_page_goes_through_the_confirmation_and_back_to_the_page(
        pok, course, learner, lms, admin_client, staff, django_capture_on_commit_callbacks):
    pok.add_fault(Fault("status", endpoint="issue_credential", status=400, times=1))
    lms.award(learner, course)
    row = credential_of(learner, course)
    url = reverse(PAGE_ACTION, args=[row.id, "retry_issuance"])
    assert f'href="{url}"' in page_of(admin_client, row).content.decode()

    confirmation = admin_client.get(url)
    html = confirmation.content.decode()
    assert confirmation.status_code == 200 and "1 credential is selected." in html
    assert "1 of them is held or failed: it will be sent again." in html
    assert f'href="{reverse(CHANGE, args=[row.id])}" class="button cancel-link"' in html
    assert credential_of(learner, course).status == CredentialStatus.FAILED  # a GET changes nothing

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(url, {"post": "yes"})
    assert response.status_code == 302 and response["Location"] == reverse(CHANGE, args=[row.id])
    assert credential_of(learner, course).status == CredentialStatus.EMITTED
    assert history_of(row)[-2] == (Cause.STAFF_RETRY, CredentialStatus.FAILED, CredentialStatus.PENDING, 1, "",
                                   staff.id)
    page = admin_client.get(response["Location"]).content.decode()
    assert "1 credential scheduled for issuance." in page


def test_mark_revoked_from_the_page_asks_for_its_reason(pok, admin_client, staff):
    row = CredentialFactory(emitted=True)
    url = reverse(PAGE_ACTION, args=[row.id, "mark_revoked"])
    assert b"Give the reason" in admin_client.post(url, {"post": "yes"}).content
    assert PokCertificate.objects.get().status == CredentialStatus.EMITTED
    response = admin_client.post(url, {"post": "yes", "reason": "Withdrawn by the course team."})
    assert response.status_code == 302
    assert PokCertificate.objects.get().status == CredentialStatus.REVOKED


def test_page_actions_need_the_change_permission_and_a_known_action(pok, client, admin_client):
    row = CredentialFactory(failed=True)
    assert admin_client.get(reverse(PAGE_ACTION, args=[row.id, "delete_selected"])).status_code == 404
    assert admin_client.get(reverse(PAGE_ACTION, args=[row.id + 1000, "retry_issuance"])).status_code == 404
    viewer = get_user_model().objects.create_user("viewer", "viewer@example.com", "pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_pokcertificate"))
    client.force_login(viewer)
    assert page_actions(page_of(client, row)) == []
    assert client.post(reverse(PAGE_ACTION, args=[row.id, "retry_issuance"]), {"post": "yes"}).status_code == 403
    assert PokCertificate.objects.get().status == CredentialStatus.FAILED


def test_credentials_cannot_be_deleted_in_the_admin_but_learners_still_can(pok, admin_client):
    row = CredentialFactory(emitted=True)
    actions = [choice[0] for choice in admin_client.get(reverse(CHANGELIST)).context["action_form"]
               .fields["action"].choices]
    assert "delete_selected" not in actions
    admin_client.post(reverse(CHANGELIST), {"action": "delete_selected", "_selected_action": [row.id], "post": "yes"})
    assert admin_client.get(reverse("admin:openedx_pok_pokcertificate_delete", args=[row.id])).status_code == 403
    assert admin_client.post(reverse("admin:openedx_pok_pokcertificate_delete", args=[row.id]),
                             {"post": "yes"}).status_code == 403
    assert PokCertificate.objects.filter(id=row.id).exists()
    # Deleting the learner's account in the user admin is not blocked by their credentials (it takes them along).
    page = admin_client.get(reverse("admin:auth_user_delete", args=[row.user_id]))
    assert page.status_code == 200 and not page.context["perms_lacking"]


def _in_a_while(**delta):
    return timezone.now() + timedelta(**delta)


@pytest.mark.parametrize(("fields", "expected"), [
    # A time in Django's format: "12:02 p.m.", but "noon" at 12:00 and a date too just before midnight.
    ({"failed_retryable": True, "not_before": "soon"}, r"^Retried automatically after (\d{1,2}(:\d\d)? [ap]\.m\.|noon"
                                                      r"|midnight|\w+\. \d+, \d{4}, .+), or Retry now\.$"),
    ({"failed_retryable": True}, r"^Retried automatically at the next reconcile run, or Retry now\.$"),
    ({"failed": True}, r"^Not retried automatically: fix what the reason names, then Retry now\.$"),
    ({"failed": True, "possible_duplicate": True}, r"check on POK that the learner has only one"),
    ({"not_before": "soon", "tries": 1}, r"^Sent to POK automatically after "),
    ({}, r"^The issuance task sends it to POK"),
    ({"in_progress": True}, r"^POK is still issuing it; .* or Refresh from POK now\.$"),
    ({"in_progress": True, "pok_state": "waitingForApproval"}, r"^POK waits \(Waiting for the learner to accept it\)"),
    ({"emitted": True}, r"^Nothing to do: "),
    ({"revoked": True}, r"^Nothing more happens: learners are no longer sent to it\.$"),
    ({"held": True, "status_reason": "POK is not configured: no template."},
     r"^Fix what the reason names \(for example the course's POK set-up\), then Retry now\.$"),
])
def test_the_page_says_what_happens_next(pok, admin_client, fields, expected):
    if fields.get("not_before") == "soon":
        fields["not_before"] = _in_a_while(minutes=2)
    assert re.search(expected, next_step(page_of(admin_client, CredentialFactory(**fields)))), fields


def test_a_credential_held_for_the_learners_name_says_it_follows_once_they_save_it(
        pok, course, lms, admin_client):
    nameless = UserFactory(profile__name="")
    lms.award(nameless, course)
    row = credential_of(nameless, course)
    assert row.status == CredentialStatus.HELD
    assert next_step(page_of(admin_client, row)) == (
        "Ask the learner to set their full name in their account settings: the credential follows by itself once "
        "they save it.")
    nameless.profile.name = "Ada Lovelace"
    lms.run(nameless.profile.save)  # what the page promised: no staff action
    row = credential_of(nameless, course)
    assert row.status == CredentialStatus.EMITTED
    assert next_step(page_of(admin_client, row)).startswith("Nothing to do")


def test_a_credential_held_for_the_learners_email_says_so(pok, course, lms, admin_client):
    learner = UserFactory(profile__name="Ada Lovelace", email="ada-at-example")
    lms.award(learner, course)
    assert next_step(page_of(admin_client, credential_of(learner, course))).startswith(
        "Ask the learner to correct their e-mail address")


def test_a_retired_learners_credential_is_never_sent_and_the_page_says_so(pok, course, learner, lms, admin_client):
    CertificateTemplate.objects.filter(course_key=course.id).update(template_id="")
    lms.award(learner, course)
    api.retire_learner(learner.id)
    response = page_of(admin_client, credential_of(learner, course))
    assert next_step(response) == "The learner deleted their account: it is never sent."
    assert "retry_issuance" not in page_actions(response)


def test_the_header_names_the_credential_by_the_number_the_list_shows(pok, admin_client):
    other = CredentialFactory()  # so that the credential's id and its learner's id differ
    row = CredentialFactory(failed=True)
    assert row.id != row.user_id and other.id
    html = page_of(admin_client, row).content.decode()
    heading = f"Credential {row.id}: {row.user.username} in {row.course_key}"
    assert f"<h2>{heading}</h2>" in html and f"&rsaquo; {heading}\n</div>" in html
    assert f"{row.user_id} / {row.course_key}" not in html
    assert f"{row.user.username} (user id {row.user_id})" in html
    listed = admin_client.get(reverse(CHANGELIST)).content.decode()
    assert f'<a href="{reverse(CHANGE, args=[row.id])}">{row.id}</a>' in listed


def test_the_posts_and_the_tries_agree_with_the_reason(pok, admin_client):
    """The template could not be read 4 times: no POST was ever sent, and the page says both in one place."""
    row = CredentialFactory(failed_retryable=True, attempts=0, tries=4,
                            status_reason="POK was unavailable after 4 tries: HTTP 503")
    html = page_of(admin_client, row).content.decode()
    assert ("0 POSTs sent to POK. 4 tries of this issuance met a temporary POK error (a try that fails before its "
            "POST, for example reading the template, sends nothing).") in html
    assert "POST attempts:" not in html and "Temporary failures:" not in html and "Ambiguous attempts:" not in html
    listed = admin_client.get(reverse(CHANGELIST)).content.decode()
    assert "0 POSTs, 4 temporary errors" in listed


def test_history_lines_read_as_sentences(pok, course, learner, lms, admin_client, staff,
                                         django_capture_on_commit_callbacks):
    pok.emission_mode = "async"
    pok.polls_until_emitted = 1
    lms.award(learner, course)
    row = credential_of(learner, course)
    act(admin_client, "refresh_from_pok", [row], captured=django_capture_on_commit_callbacks)
    act(admin_client, "mark_revoked", [row], reason="Withdrawn.")
    html = page_of(admin_client, row).content.decode()
    history = html.split('id="history-group"')[1]
    cells = [re.sub(r"\s+", " ", cell).strip() for cell in re.findall(r'<td class="field-what_happened">(.*?)</td>',
                                                                       history, re.S)]
    assert cells == [
        "The issuance task moved it from Requesting to In progress.",
        "Staff member boss asked POK for its state (In progress).",
        "A refresh from POK moved it from In progress to Emitted.",
        "Staff member boss marked it revoked: from Emitted to Revoked.",
    ], cells
    assert not re.search(rf"{row.id}: \w+ -&gt; \w+", history)  # the line's raw __str__


# ---- issue 20: the confirmation pages --------------------------------------------------------------------------

def test_the_confirmation_names_learners_and_says_how_many_will_change(pok, admin_client):
    failed = CredentialFactory(failed=True, user=UserFactory(username="grace.h"))
    emitted = CredentialFactory(emitted=True, user=UserFactory(username="ada.l"))
    expected = {
        "retry_issuance": "1 of them is held or failed: it will be sent again.",
        "refresh_from_pok": "0 of them are in progress on POK: they will be refreshed.",
        "reissue_credentials": "1 of them holds a POK credential: it will be re-issued.",
        "mark_revoked": "2 of them are not revoked yet: they will be marked revoked.",
    }
    for action, sentence in expected.items():
        html = act(admin_client, action, [failed, emitted], confirm=False).content.decode()
        assert "2 credentials are selected." in html and sentence in html, action
        assert "Learner id" not in html
        assert f'<td title="user id {failed.user_id}">grace.h</td>' in html
        assert f'<td title="user id {emitted.user_id}">ada.l</td>' in html
        others = "The others are left as they are." in html
        assert others == (action != "mark_revoked"), action
        assert ('value="Yes, I am sure"' in html) == (action != "refresh_from_pok"), action  # nothing to change


def test_the_confirmation_does_not_count_a_retired_learners_credential(pok, admin_client):
    kept = CredentialFactory(failed=True)
    retired = CredentialFactory(failed=True, receiver={"retired": True})
    html = act(admin_client, "retry_issuance", [kept, retired], confirm=False).content.decode()
    assert "1 of them is held or failed: it will be sent again." in html


# ---- issue 20: POK's states in the staff member's language -----------------------------------------------------

def test_known_pok_states_are_labelled_and_unknown_ones_shown_as_sent(pok, admin_client):
    CredentialFactory(in_progress=True, pok_state="waitingForApproval")
    CredentialFactory(in_progress=True, pok_state="newStateFromPok")
    response = admin_client.get(reverse(CHANGELIST))
    html = response.content.decode()
    assert "In progress (POK: Waiting for the learner to accept it)" in html
    assert "In progress (POK: newStateFromPok)" in html
    choices = dict(next(spec for spec in response.context["cl"].filter_specs
                        if getattr(spec, "parameter_name", "") == "pok_state").lookup_choices)
    assert choices == {"newStateFromPok": "newStateFromPok",
                       "waitingForApproval": "Waiting for the learner to accept it"}
    assert set(states.LABELS_OF_POK_STATES) >= (states.IN_PROGRESS_STATES | states.WAITING_STATES | states.FAILED_STATES
                                            | {states.EMITTED_STATE, states.REVOKED_STATE})
    assert all(isinstance(label, Promise) for label in states.LABELS_OF_POK_STATES.values())  # marked for translation


@pytest.mark.parametrize(("language", "revoked", "waiting"), [
    ("es-419", "Revocada (POK: Emitida)", "En curso (POK: Esperando a que el estudiante la acepte)"),
    ("pt-br", "Revogada (POK: Emitida)", "Em andamento (POK: Aguardando a aceitação do estudante)"),
])
def test_pok_states_are_translated_for_staff(pok, admin_client, language, revoked, waiting):
    row = CredentialFactory(revoked=True)  # revoked here, still emitted on POK
    CredentialFactory(in_progress=True, pok_state="waitingForApproval")
    CredentialFactory(in_progress=True, pok_state="newStateFromPok")
    html = unescape(admin_client.get(reverse(CHANGELIST), HTTP_ACCEPT_LANGUAGE=language).content.decode())
    assert revoked in html and waiting in html
    assert "(POK: newStateFromPok)" in html  # unknown: as POK sent it
    assert "waitingForApproval</a>" not in html  # the filter's choice too
    page = unescape(admin_client.get(reverse(CHANGE, args=[row.id]), HTTP_ACCEPT_LANGUAGE=language).content.decode())
    assert revoked in page
