"""
Analytics tracking events of the credential life cycle (``edx.pok.credential.*``): one per transition, through the
real issuance flow and the POK simulator, with ids and the status only, never an email or a name; and the platform
door that hands them to the LMS's ``eventtracking`` (a no-op where it is missing).
"""
import sys
import types
from datetime import timedelta

import pytest

from lms_sandbox.factories import GeneratedCertificateFactory
from openedx_pok import api, compat
from openedx_pok.issuance import events
from openedx_pok.models import CertificateTemplate, CredentialStatus, PokCertificate
from pok_simulator import Fault
from test_utils import credential_of

pytestmark = pytest.mark.django_db

KEYS = {"user_id", "course_id", "reference", "pok_id", "status"}


@pytest.fixture
def tracked():
    """The events the sandbox LMS's tracker received during the test."""
    recorded = compat.backend().tracked_events
    recorded.clear()
    yield recorded
    recorded.clear()


def names(tracked):
    return [name for name, _data in tracked]


def assert_no_personal_data(tracked, user):
    for _name, data in tracked:
        assert set(data) == KEYS
        text = repr(data)
        for personal in (user.email, user.username, user.profile.name, user.first_name, user.last_name):
            assert personal not in text, (personal, data)


def test_award_sends_requested_then_emitted(pok, course, learner, lms, tracked):
    lms.award(learner, course)
    lms.award(learner, course)  # the LMS saves again: no second "requested"
    row = credential_of(learner, course)
    assert names(tracked) == [events.REQUESTED, events.EMITTED]
    requested, emitted = (data for _name, data in tracked)
    assert requested == {"user_id": learner.id, "course_id": str(course.id), "reference": str(row.uuid),
                         "pok_id": "", "status": "pending"}
    assert emitted == {**requested, "pok_id": row.pok_credential_id, "status": "emitted"}
    assert_no_personal_data(tracked, learner)


def test_refusal_sends_failed(pok, course, learner, lms, tracked):
    pok.add_fault(Fault("status", endpoint="issue_credential", status=400, times=1))
    lms.award(learner, course)
    assert credential_of(learner, course).status == CredentialStatus.FAILED
    assert names(tracked) == [events.REQUESTED, events.FAILED]
    assert tracked[-1][1]["status"] == "failed"
    assert_no_personal_data(tracked, learner)


def test_pok_declining_the_credential_sends_failed_once(pok, course, learner, lms, tracked):
    pok.add_fault(Fault("patch_answer", endpoint="issue_credential", fields={"state": "signatureRejected"}))
    lms.award(learner, course)
    row = credential_of(learner, course)
    assert row.status == CredentialStatus.FAILED
    assert names(tracked) == [events.REQUESTED, events.FAILED]
    assert tracked[-1][1]["pok_id"] == row.pok_credential_id


def test_nothing_for_a_credential_still_on_its_way(pok, course, learner, lms, tracked):
    pok.emission_mode = "async"
    pok.polls_until_emitted = 2
    lms.award(learner, course)
    assert names(tracked) == [events.REQUESTED]
    lms.run(api.reconcile, inline=True, pending_grace=timedelta(0))
    lms.run(api.reconcile, inline=True, pending_grace=timedelta(0))
    assert credential_of(learner, course).status == CredentialStatus.EMITTED
    assert names(tracked) == [events.REQUESTED, events.EMITTED]


def test_revocation_sends_revoked_once(pok, course, learner, lms, tracked):
    lms.award(learner, course)
    lms.revoke(learner, course)
    lms.run(api.revoke, learner.id, course.id, "again")
    assert names(tracked) == [events.REQUESTED, events.EMITTED, events.REVOKED]
    assert tracked[-1][1]["status"] == "revoked"
    assert tracked[-1][1]["pok_id"] == credential_of(learner, course).pok_credential_id
    assert_no_personal_data(tracked, learner)


def test_backfill_sends_requested_for_each_new_credential(pok, course, lms, tracked):
    CertificateTemplate.objects.filter(course_key=course.id).delete()
    learners = [GeneratedCertificateFactory(course_id=course.id).user for _ in range(3)]
    CertificateTemplate.objects.create(course_key=course.id, template_id="tpl-basic")
    lms.run(api.backfill, [course.id])
    assert names(tracked).count(events.REQUESTED) == 3 and names(tracked).count(events.EMITTED) == 3
    assert {data["user_id"] for name, data in tracked if name == events.REQUESTED} == {u.id for u in learners}
    references = {str(row.uuid) for row in PokCertificate.objects.all()}
    assert {data["reference"] for _name, data in tracked} == references


def test_a_broken_tracker_is_logged_never_raised(course, learner, monkeypatch, settings, caplog):
    settings.POK_COMPAT_BACKEND = compat.DEFAULT_BACKEND

    class BrokenTracker:
        def emit(self, name, data):
            raise RuntimeError("analytics is down")

    monkeypatch.setitem(sys.modules, "eventtracking", types.SimpleNamespace(tracker=BrokenTracker()))
    row = PokCertificate(id=7, user_id=learner.id, course_key=course.id)
    assert events.emit(events.REQUESTED, row) is False
    assert "could not emit tracking event edx.pok.credential.requested for credential 7" in caplog.text


def test_platform_backend_hands_events_to_eventtracking(monkeypatch, settings, course, learner):
    settings.POK_COMPAT_BACKEND = compat.DEFAULT_BACKEND
    received = []
    tracker = types.SimpleNamespace(emit=lambda name, data: received.append((name, data)))
    monkeypatch.setitem(sys.modules, "eventtracking", types.SimpleNamespace(tracker=tracker))
    row = PokCertificate.objects.create(user=learner, course_key=course.id)
    assert events.emit(events.REQUESTED, row) is True
    assert received == [(events.REQUESTED, events.event_data(row))]


def test_without_eventtracking_nothing_is_emitted(monkeypatch, settings, course, learner):
    settings.POK_COMPAT_BACKEND = compat.DEFAULT_BACKEND
    monkeypatch.setitem(sys.modules, "eventtracking", None)  # import eventtracking -> ImportError (e.g. the CMS)
    row = PokCertificate(user=learner, course_key=course.id)
    assert compat.emit_tracking_event(events.REQUESTED, events.event_data(row)) is False
    assert events.emit(events.REQUESTED, row) is False
