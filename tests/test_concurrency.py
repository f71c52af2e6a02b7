"""
Exactly-once issuance under real concurrency, on MariaDB/MySQL (docs/decisions/0003-exactly-once-issuance.rst).

The claim that makes issuance exactly-once is a compare-and-set UPDATE whose guarantee comes from the database's row
locks, so it can only be tested on the database the LMS really uses and with real parallel connections: SQLite
serializes every writer and would let a broken claim pass. Each test starts several threads together (a barrier),
each with its own database connection, and the POK simulator answers slowly so that the POSTs of a broken claim
would overlap and be counted.

Run with ``POK_TEST_DB=mysql`` (``make test-mysql``); on any other database these tests fail on purpose instead of
passing vacuously.
"""
import logging
import threading
import traceback
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.db import IntegrityError, OperationalError, connection, connections
from django.test import Client
from opaque_keys.edx.keys import CourseKey

import openedx_pok
from lms_sandbox.factories import CourseOverviewFactory, GeneratedCertificateFactory, OrganizationFactory, UserFactory
from lms_sandbox.generation import generate_certificate
from lms_sandbox.grades import CourseGrade
from lms_sandbox.models import GeneratedCertificate
from openedx_pok import api, tasks
from openedx_pok.models import CertificateTemplate, CredentialStatus, PokCertificate

pytestmark = [pytest.mark.mysql, pytest.mark.django_db(transaction=True)]

THREADS = 8
# Long enough that every thread reaches the claim while the first POST is still in flight.
SIMULATOR_LATENCY = 0.2
THREAD_TIMEOUT = 60
PLUGIN_DIR = str(Path(openedx_pok.__file__).resolve().parent)
# What a thread that lost the claim may report: the winner's row in flight or done, never held or failed.
CLAIM_OUTCOMES = {CredentialStatus.REQUESTING, CredentialStatus.IN_PROGRESS, CredentialStatus.EMITTED}


def require_mysql():
    """Fail (not skip) on another database: a skipped concurrency test would look like a passing one in CI."""
    assert connection.vendor == "mysql", (
        f"tests/test_concurrency.py needs MariaDB/MySQL but runs on {connection.vendor}: "
        "run it with POK_TEST_DB=mysql (make test-mysql)."
    )


def run_together(target, args_per_thread):
    """
    Run ``target(*args)`` in one thread per entry, all released at once; return (results, errors).

    Each thread gets its own Django connection (connections are thread-local) and closes it at the end so that the
    test database can be flushed afterwards. Errors are collected with their traceback instead of being lost in a
    thread's stderr.
    """
    barrier = threading.Barrier(len(args_per_thread))
    results = [None] * len(args_per_thread)
    errors = []

    def body(index, args):
        try:
            barrier.wait(timeout=THREAD_TIMEOUT)
            results[index] = target(*args)
        except BaseException:  # noqa: BLE001 - reported to the test thread, which fails on it
            errors.append(traceback.format_exc())
        finally:
            connections.close_all()

    threads = [threading.Thread(target=body, args=(i, args), name=f"pok-race-{i}")
               for i, args in enumerate(args_per_thread)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(THREAD_TIMEOUT)
    assert not any(thread.is_alive() for thread in threads), "a thread did not finish in time (deadlock?)"
    return results, errors


def mapped_course_with_certificates(users):
    """
    A POK-enabled course whose learners already hold a downloadable Open edX certificate and no credential yet.

    The certificates are saved before the course is mapped: saving one sends CERTIFICATE_CREATED, and on a mapped
    course the plugin's receiver would issue the credential right there, before the threads start.
    """
    OrganizationFactory(short_name="DemoX", name="Demo University")
    overview = CourseOverviewFactory(id=CourseKey.from_string("course-v1:DemoX+RACE+2026"),
                                     display_name="Concurrent Credentials", org="DemoX")
    for user in users:
        GeneratedCertificateFactory(user=user, course_id=overview.id)
    assert not PokCertificate.objects.exists(), "the course was not mapped yet, so nothing may have been recorded"
    CertificateTemplate.objects.create(course_key=overview.id, template_id="tpl-basic")
    return overview


def request_and_issue(user_id, course_key):
    """What duplicate events plus duplicate tasks do: record the intent, then run the issuance task once more."""
    row = api.request_issuance(user_id, course_key)
    assert row is not None, "the course is mapped, request_issuance must return the row"
    return tasks.run_issuance(row.id)


def plugin_errors(caplog):
    """Errors the plugin logged: its steps and receivers swallow exceptions, so a raise alone would go unseen."""
    return [f"{record.name}: {record.getMessage()}" for record in caplog.records
            if record.name.startswith("openedx_pok") and record.levelno >= logging.ERROR]


def test_concurrent_claims_of_one_credential_send_one_post(pok, caplog):
    require_mysql()
    learner = UserFactory(profile__name="Ada Lovelace")
    course = mapped_course_with_certificates([learner])
    pok.latency = SIMULATOR_LATENCY

    results, errors = run_together(request_and_issue, [(learner.id, course.id)] * THREADS)

    assert errors == []
    assert plugin_errors(caplog) == []
    rows = list(PokCertificate.objects.filter(user=learner, course_key=course.id))
    assert len(rows) == 1
    row = rows[0]
    assert pok.count("issue_credential") == 1
    assert row.status == CredentialStatus.EMITTED, row.status_reason
    assert row.attempts == 1 and row.ambiguous_attempts == 0
    assert len(pok.credentials_for(learner.email)) == 1
    assert set(results) <= CLAIM_OUTCOMES, results


def test_concurrent_issuance_for_different_learners_loses_none(pok, caplog):
    require_mysql()
    learners = [UserFactory() for _ in range(THREADS)]
    course = mapped_course_with_certificates(learners)
    pok.latency = SIMULATOR_LATENCY

    results, errors = run_together(request_and_issue, [(learner.id, course.id) for learner in learners])

    assert errors == []
    assert plugin_errors(caplog) == []
    assert results == [CredentialStatus.EMITTED] * THREADS
    rows = PokCertificate.objects.filter(course_key=course.id)
    assert rows.count() == THREADS
    assert {row.user_id for row in rows} == {learner.id for learner in learners}
    assert all(row.status == CredentialStatus.EMITTED and row.attempts == 1 for row in rows), [
        (row.user_id, row.status, row.attempts, row.status_reason) for row in rows
    ]
    assert pok.count("issue_credential") == THREADS
    assert all(len(pok.credentials_for(learner.email)) == 1 for learner in learners)


def _raised_in_plugin(exc):
    return any(frame.filename.startswith(PLUGIN_DIR) for frame in traceback.extract_tb(exc.__traceback__))


def generate_in_thread(user_id, course_key):
    """
    One LMS certificate generation, with the learner loaded by this thread as a separate LMS process would.

    Concurrent generations may collide in the LMS task's ``update_or_create`` of the certificate (a duplicate key,
    or on MariaDB a deadlock of its locking read); that is the LMS's race, not the plugin's, so only such an error
    that never passed through plugin code is ignored.
    """
    user = get_user_model().objects.select_related("profile").get(id=user_id)
    try:
        return generate_certificate(user, course_key, CourseGrade(percent=0.9, passed=True, letter_grade="Pass"))
    except (IntegrityError, OperationalError) as exc:
        if _raised_in_plugin(exc):
            raise
        return None


def test_concurrent_certificate_generation_sends_one_post(pok, caplog):
    require_mysql()
    learner = UserFactory(profile__name="Ada Lovelace")
    OrganizationFactory(short_name="DemoX", name="Demo University")
    course = CourseOverviewFactory(id=CourseKey.from_string("course-v1:DemoX+RACE+2026"), org="DemoX")
    CertificateTemplate.objects.create(course_key=course.id, template_id="tpl-basic")
    pok.latency = SIMULATOR_LATENCY

    _results, errors = run_together(generate_in_thread, [(learner.id, course.id)] * THREADS)

    assert errors == []
    assert plugin_errors(caplog) == []
    certificate = GeneratedCertificate.objects.get(user=learner, course_id=course.id)
    assert certificate.status == "downloadable"
    rows = list(PokCertificate.objects.filter(user=learner, course_key=course.id))
    assert len(rows) == 1
    row = rows[0]
    assert pok.count("issue_credential") == 1
    assert row.status == CredentialStatus.EMITTED, row.status_reason
    assert row.attempts == 1 and row.ambiguous_attempts == 0
    assert len(pok.credentials_for(learner.email)) == 1
    # The LMS's own racing generation tasks may replace the verify_uuid after the credential read it; the next view
    # of the certificate page brings the credential's copy up to date.
    Client().get(f"/certificates/{certificate.verify_uuid}")
    assert PokCertificate.objects.get(id=row.id).verify_uuid == certificate.verify_uuid
