"""
Learner retirement: the LMS's ``USER_RETIRE_LMS_MISC`` signal reaches the plugin's receiver (wired through
``plugin_app["signals_config"]`` and ``compat``), which blanks the learner's name and email from every credential
row and keeps the rows and their ids; a credential not sent yet never is.

The sandbox runs the LMS's order (openedx/core/djangoapps/user_api/accounts/utils.py and views.py, openedx-platform
Verawood): deactivation replaces the e-mail first, then the "LMS misc" step sends the signal (a failing receiver
makes it answer 500), then the "LMS" step replaces names and username.
"""
import json
from datetime import timedelta

import pytest
from django.db import DatabaseError
from django.dispatch import Signal
from django.forms.models import model_to_dict

from lms_sandbox import retirement as lms_retirement
from openedx_pok import api, compat
from openedx_pok.apps import OpenedxPokConfig
from openedx_pok.issuance import retirement, staff_actions
from openedx_pok.models import CertificateTemplate, CredentialEvent, CredentialStatus, PokCertificate
from pok_simulator import Fault
from test_utils import credential_of
from tests.test_compat import install

pytestmark = pytest.mark.django_db


def everything_stored(row):
    """Every value of the row, as text (what a database dump would show)."""
    return json.dumps(model_to_dict(PokCertificate.objects.get(id=row.id)), default=str)


def test_the_receiver_is_wired_to_the_lms_signal():
    receivers = OpenedxPokConfig.plugin_app["signals_config"]["lms.djangoapp"]["receivers"]
    config = next(r for r in receivers if r["receiver_func_name"] == "handle_learner_retired")
    assert config["signal_path"] == "openedx_pok.compat.USER_RETIRE_LMS_MISC"
    assert compat.USER_RETIRE_LMS_MISC is lms_retirement.USER_RETIRE_LMS_MISC
    uids = {key[0] for key, *_rest in lms_retirement.USER_RETIRE_LMS_MISC.receivers}
    assert "openedx_pok.receivers.handle_learner_retired" in uids


def test_retirement_blanks_names_and_email_and_keeps_the_ids(pok, course, learner, lms):
    lms.award(learner, course)
    row = credential_of(learner, course)
    assert row.status == CredentialStatus.EMITTED and row.receiver["email"] == learner.email
    # A template parameter that printed the learner's name (a parameter mapping may do so).
    PokCertificate.objects.filter(id=row.id).update(
        custom_parameters={"learner": "Ada Lovelace", "inverted": "LOVELACE, Ada", "course": "Verifiable 101"})
    original_email = learner.email
    assert original_email in everything_stored(row)

    lms_retirement.deactivate_account(learner)
    assert lms_retirement.retire_misc(learner) == 204

    retired = credential_of(learner, course)
    assert retired.receiver == {"firstName": "", "lastName": "", "email": "", "retired": True}
    assert retired.custom_parameters == {"learner": "", "inverted": "", "course": "Verifiable 101"}
    answer = json.loads(retired.pok_response)
    assert set(answer) <= {"id", "state", "createdAt"} and answer["id"] == row.pok_credential_id
    assert "receiver" not in json.loads(row.pok_response) and answer["state"] == "emitted"  # never stored
    # Kept for counting and for staff: the row, its ids and its status.
    assert (retired.id, retired.uuid, retired.user_id, retired.course_key) == (row.id, row.uuid, learner.id,
                                                                               course.id)
    assert (retired.status, retired.pok_credential_id, retired.view_url) == (row.status, row.pok_credential_id,
                                                                             row.view_url)
    stored = everything_stored(row)
    for personal in (original_email, "Ada", "Lovelace", learner.profile.name):
        assert personal not in stored, personal


def test_a_credential_not_sent_yet_is_never_sent(pok, course, learner, lms):
    pok.add_fault(Fault("rate_limit", endpoint="issue_credential", times=10))
    lms.award(learner, course)
    assert credential_of(learner, course).status == CredentialStatus.FAILED  # retryable: reconcile would send it
    posts = pok.count("issue_credential")

    lms_retirement.deactivate_account(learner)
    assert lms_retirement.retire_misc(learner) == 204
    assert lms_retirement.retire_account(learner) == 204

    row = credential_of(learner, course)
    assert row.status == CredentialStatus.HELD and not row.retryable
    assert "retired" in row.status_reason
    pok.clear_faults()
    lms.run(api.reconcile, inline=True, pending_grace=timedelta(0))
    lms.run(api.request_issuance, learner.id, course.id)  # a late award event: the retired account has no name
    assert credential_of(learner, course).status == CredentialStatus.HELD
    assert pok.count("issue_credential") == posts


def test_retiring_twice_changes_nothing_more(pok, course, learner, lms):
    lms.award(learner, course)
    lms_retirement.deactivate_account(learner)
    assert lms_retirement.retire_misc(learner) == 204
    first = everything_stored(credential_of(learner, course))
    assert retirement.retire_learner(learner.id) == 1
    assert json.loads(everything_stored(credential_of(learner, course))) | {"modified": None} == \
        json.loads(first) | {"modified": None}


def test_other_learners_are_untouched(pok, course, learner, lms):
    from lms_sandbox.factories import UserFactory

    other = UserFactory(profile__name="Grace Hopper")
    lms.award(learner, course)
    lms.award(other, course)
    lms_retirement.deactivate_account(learner)
    assert lms_retirement.retire_misc(learner) == 204
    assert credential_of(other, course).receiver["email"] == other.email


def test_a_retirement_signal_without_a_user_is_ignored(pok, course, learner, lms):
    lms.award(learner, course)
    before = everything_stored(credential_of(learner, course))
    responses = lms_retirement.USER_RETIRE_LMS_MISC.send(sender=lms_retirement.LMSAccountRetirementView, user=None)
    assert responses and all(not isinstance(response, Exception) for _receiver, response in responses)
    assert everything_stored(credential_of(learner, course)) == before


def test_scrubbing_rules():
    receiver = {"firstName": "Ana María", "lastName": "de la Cruz", "email": "ana@example.com"}
    parameters = {"name": "ANA MARÍA DE LA CRUZ", "mail": "Contact: ana@example.com", "grade": "90%", "n": 3}
    assert retirement.scrub_parameters(parameters, receiver) == {"name": "", "mail": "", "grade": "90%", "n": 3}
    assert retirement.scrub_parameters(None, receiver) == {}
    assert retirement.scrub_answer('{"id": "c1", "state": "emitted", "receiver": {"name": "Ana"}}') == \
        '{"id": "c1", "state": "emitted"}'
    assert retirement.scrub_answer("<html>Ana</html>") == ""
    assert retirement.scrub_answer('["Ana"]') == ""
    assert retirement.scrub_answer("") == ""


def test_platform_backend_finds_the_lms_signal(monkeypatch, settings):
    settings.POK_COMPAT_BACKEND = compat.DEFAULT_BACKEND
    signal = Signal()
    install(monkeypatch, "openedx.core.djangoapps.user_api.accounts.signals", USER_RETIRE_LMS_MISC=signal)
    assert compat.USER_RETIRE_LMS_MISC is signal
    with pytest.raises(AttributeError):
        compat.NOT_A_SIGNAL  # noqa: B018 - the module's lazy attributes are only the ones it names


def test_a_failing_retirement_fails_the_lms_step(pok, course, learner, lms, monkeypatch, caplog):
    """
    The pipeline must see the failure (and retry the step) rather than report the learner retired: the plugin's
    receiver lets the error through, and ``LMSAccountRetirementView`` answers 500.
    """
    lms.award(learner, course)
    lms_retirement.deactivate_account(learner)

    def broken(user_id):
        raise DatabaseError("lock wait timeout")

    monkeypatch.setattr(api, "retire_learner", broken)
    assert lms_retirement.retire_misc(learner) == 500
    assert f"could not anonymize the credentials of retired user {learner.id}" in caplog.text
    monkeypatch.undo()
    assert lms_retirement.retire_misc(learner) == 204  # the pipeline's retry
    assert credential_of(learner, course).receiver == retirement.RETIRED_RECEIVER


def test_a_later_receiver_failing_keeps_the_plugins_anonymization(pok, course, learner, lms):
    """
    ``.send`` without a transaction (views.py ``LMSAccountRetirementView``, openedx-platform Verawood): when a
    receiver after the plugin's fails, the step answers 500 but what the plugin wrote stays; the retry finds nothing
    more to do.
    """
    lms.award(learner, course)
    lms_retirement.deactivate_account(learner)

    def failing(**kwargs):
        raise RuntimeError("another app's receiver")

    lms_retirement.USER_RETIRE_LMS_MISC.connect(failing, dispatch_uid="test-retirement-failing", weak=False)
    try:
        assert lms_retirement.retire_misc(learner) == 500
    finally:
        lms_retirement.USER_RETIRE_LMS_MISC.disconnect(dispatch_uid="test-retirement-failing")
    assert credential_of(learner, course).receiver == retirement.RETIRED_RECEIVER
    assert retirement.retire_learner(learner.id) == 1


def test_the_misc_step_sees_the_retired_email_and_the_plugin_needs_only_its_snapshot(pok, course, learner, lms):
    """
    At the LMS misc step the user's e-mail is already the retired one (accounts/utils.py, Verawood): the plugin
    finds the learner's data by user id and the stored receiver snapshot, never by the current e-mail.
    """
    lms.award(learner, course)
    original_email = learner.email
    seen = []
    lms_retirement.deactivate_account(learner)
    lms_retirement.USER_RETIRE_LMS_MISC.connect(lambda user, **kwargs: seen.append(user.email),
                                                dispatch_uid="test-retirement-email", weak=False)
    try:
        assert lms_retirement.retire_misc(learner) == 204
    finally:
        lms_retirement.USER_RETIRE_LMS_MISC.disconnect(dispatch_uid="test-retirement-email")
    assert seen == [learner.email] and seen[0] != original_email
    assert original_email not in everything_stored(credential_of(learner, course))


def test_a_credential_due_after_deactivation_is_not_sent_to_the_retired_email(pok, course, learner, lms):
    """
    Deactivation retires the e-mail at once (accounts/utils.py, Verawood); the pipeline's LMS misc step may come days
    later. A credential still due in between (POK was down, the certificates are not released yet) must not reach POK
    with the learner's name and a retired, undeliverable address.
    """
    pok.add_fault(Fault("rate_limit", endpoint="issue_credential", times=10))
    lms.award(learner, course)
    posts = pok.count("issue_credential")
    pok.clear_faults()
    lms_retirement.deactivate_account(learner)

    lms.run(api.reconcile, inline=True, pending_grace=timedelta(0))

    assert pok.count("issue_credential") == posts
    row = credential_of(learner, course)
    assert row.status == CredentialStatus.HELD and "deleting their account" in row.status_reason


def test_a_retired_learners_credential_is_never_sent_again(pok, course, learner, lms):
    """
    The LMS misc step comes hours before the LMS blanks the account (and an LMS may format retired e-mails its own
    way): the account still has the learner's name and e-mail. No path may send them to POK again: a staff retry
    (the admin's bulk action, one row at a time), reconcile, the backfill or a new award.
    """
    pok.add_fault(Fault("rate_limit", endpoint="issue_credential", times=10))
    lms.award(learner, course)
    pok.clear_faults()
    posts = pok.count("issue_credential")
    assert api.retire_learner(learner.id) == 1
    assert credential_of(learner, course).status == CredentialStatus.HELD

    assert not lms.run(staff_actions.retry, credential_of(learner, course))
    lms.run(api.reconcile, inline=True, pending_grace=timedelta(0))
    lms.run(api.backfill, course_keys=[str(course.id)])
    lms.award(learner, course)  # a new award: pending again, held again before anything is sent
    lms.run(api.reconcile, inline=True, pending_grace=timedelta(0))

    row = credential_of(learner, course)
    assert pok.count("issue_credential") == posts
    assert row.status == CredentialStatus.HELD and row.receiver == retirement.RETIRED_RECEIVER
    assert row.status_reason == retirement.retired_reason()
    assert learner.email not in everything_stored(row)


def test_a_retired_learners_emitted_credential_is_never_reissued(pok, course, learner, lms):
    lms.award(learner, course)
    posts = pok.count("issue_credential")
    assert api.retire_learner(learner.id) == 1
    assert not lms.run(staff_actions.reissue, credential_of(learner, course))
    lms.revoke(learner, course)
    lms.award(learner, course)  # re-awarded after the revocation: a new issuance, which is held, not sent
    lms.run(api.reconcile, inline=True, pending_grace=timedelta(0))
    row = credential_of(learner, course)
    assert pok.count("issue_credential") == posts
    assert row.status == CredentialStatus.HELD and row.receiver == retirement.RETIRED_RECEIVER


def test_retirement_replaces_the_rows_own_reason(pok, course, learner, lms):
    """A staff member's revocation reason may name the learner: the row keeps a neutral reason, as its history."""
    lms.award(learner, course)
    assert staff_actions.mark_revoked(credential_of(learner, course), "Ada Lovelace asked us to withdraw it.")
    assert "Lovelace" in everything_stored(credential_of(learner, course))

    lms_retirement.deactivate_account(learner)
    assert lms_retirement.retire_misc(learner) == 204

    row = credential_of(learner, course)
    assert row.status == CredentialStatus.REVOKED
    assert row.status_reason == "The learner's account was retired."
    assert "Lovelace" not in everything_stored(row)
    assert not CredentialEvent.objects.filter(credential_id=row.id, reason__icontains="Lovelace").exists()


def test_a_parameter_filled_from_the_username_is_blanked(pok, course, learner, lms):
    pok.add_template("tpl-handle", "Handle", [("handle", "Handle")])
    CertificateTemplate.objects.filter(course_key=course.id).update(
        template_id="tpl-handle", parameter_sources={"handle": {"source": "learner.username"}})
    lms.award(learner, course)
    row = credential_of(learner, course)
    assert row.status == CredentialStatus.EMITTED and row.custom_parameters == {"handle": learner.username}

    lms_retirement.deactivate_account(learner)
    assert lms_retirement.retire_misc(learner) == 204

    assert credential_of(learner, course).custom_parameters == {"handle": ""}
    assert learner.username not in everything_stored(row)


def test_a_receiver_imported_from_the_earlier_plugin_is_blanked(pok, course, learner, lms):
    """The earlier openedx-pok stored ``{"name", "email"}``: the name is found in that shape too."""
    lms.award(learner, course)
    row = credential_of(learner, course)
    PokCertificate.objects.filter(id=row.id).update(
        receiver={"name": "Ada Lovelace", "email": learner.email},
        custom_parameters={"student": "Ada Lovelace", "course": "Verifiable 101"})

    assert api.retire_learner(learner.id) == 1

    retired = credential_of(learner, course)
    assert retired.receiver == retirement.RETIRED_RECEIVER
    assert retired.custom_parameters == {"student": "", "course": "Verifiable 101"}
    assert "Lovelace" not in everything_stored(row)
