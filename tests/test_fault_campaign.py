"""
Fault campaign: 300 learners through a real Celery worker on Redis and MariaDB while POK misbehaves.

POK answers every request after 100 ms, and 10% of the learners' first POSTs fail with a 5xx: half of them before
POK created the credential, half after (the client cannot tell which). Then the reconcile run. What must hold: every
learner ends with an emitted credential, nobody has more than two credentials on POK, a learner with two is flagged
"possible duplicate" on their row, and nothing is left pending or requesting. The counts are printed for the record.
"""
import time
import uuid
from collections import Counter
from datetime import timedelta

import pytest
from django.db import transaction
from opaque_keys.edx.keys import CourseKey

from lms_sandbox.factories import CourseOverviewFactory, OrganizationFactory, UserFactory
from lms_sandbox.generation import generate_certificate
from lms_sandbox.grades import CourseGrade
from openedx_pok import api
from openedx_pok.models import CertificateTemplate, CredentialStatus, PokCertificate
from pok_simulator import Fault
from tests.test_celery_worker import (
    UNSETTLED,
    broker_mode,
    celery_worker,
    lms_tasks_on,
    remove_queue,
    require_mysql,
    require_redis,
)

pytestmark = [pytest.mark.mysql, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

LEARNERS = 300
CAMPAIGN_TIMEOUT = 110  # seconds: the whole campaign must finish in under two minutes


def test_fault_campaign_ends_with_every_credential_emitted_and_duplicates_flagged(pok, settings, tmp_path):
    require_mysql()
    broker_url = settings.CELERY_BROKER_URL
    require_redis(broker_url)
    queue = f"openedx-pok-campaign-{uuid.uuid4().hex[:12]}"
    settings.POK_CELERY_QUEUE = queue
    pok.latency = 0.1
    pok.add_fault(Fault("status", endpoint="issue_credential", status=500, probability=0.05, seed=11,
                        new_keys_only=True, times=None))
    pok.add_fault(Fault("status_after_create", endpoint="issue_credential", status=502, probability=0.05, seed=12,
                        new_keys_only=True, times=None))
    OrganizationFactory(short_name="FaultX", name="Fault University")
    course = CourseOverviewFactory(id=CourseKey.from_string("course-v1:FaultX+CAMPAIGN+2026"), org="FaultX")
    CertificateTemplate.objects.create(course_key=course.id, template_id="tpl-basic")
    learners = UserFactory.create_batch(LEARNERS)
    log_path = tmp_path / "celery-worker.log"

    with broker_mode(broker_url), lms_tasks_on(queue):
        try:
            for learner in learners:
                with transaction.atomic():
                    generate_certificate(learner, course.id, CourseGrade(percent=0.9, letter_grade="Pass"))
            # The worker also runs the LMS's generation tasks (queued 2 s ahead): issuance may wait for them.
            with celery_worker(queue, broker_url, pok, log_path, concurrency=4,
                               extra_env={"POK_TEST_CERTIFICATE_WAIT_DELAY": "1"}) as worker:
                deadline = time.monotonic() + CAMPAIGN_TIMEOUT
                while PokCertificate.objects.filter(status__in=UNSETTLED).exists():
                    assert worker.poll() is None, "the Celery worker died during the campaign"
                    assert time.monotonic() < deadline, (
                        f"the campaign did not settle in time: {unsettled_summary()}, POSTs so far "
                        f"{pok.count('issue_credential')}")
                    time.sleep(0.5)
            api.reconcile(inline=True, pending_grace=timedelta(0))
        except BaseException:
            print(log_path.read_text(errors="replace") if log_path.exists() else "(no worker log)")
            raise
        finally:
            remove_queue(queue)

    rows = list(PokCertificate.objects.filter(course_key=course.id))
    statuses = Counter(row.status for row in rows)
    per_learner = Counter(len(pok.credentials_for(learner.email)) for learner in learners)
    flagged = {row.user_id for row in rows if row.possible_duplicate}
    doubled = {learner.id for learner in learners if len(pok.credentials_for(learner.email)) == 2}
    print(f"fault campaign: {LEARNERS} learners, statuses {dict(statuses)}, credentials per learner "
          f"{dict(per_learner)}, flagged possible duplicate {len(flagged)}, POSTs {pok.count('issue_credential')}")
    assert statuses == {CredentialStatus.EMITTED: LEARNERS}, [r.status_reason for r in rows if r.status != "emitted"]
    assert set(per_learner) <= {1, 2}
    assert doubled <= flagged
    assert doubled, "the campaign produced no 5xx after creation: it tested nothing"



def unsettled_summary():
    """Statuses and reasons of the rows still on their way, for a failure message that says why."""
    rows = PokCertificate.objects.filter(status__in=UNSETTLED)
    return dict(Counter((row.status, row.status_reason[:80]) for row in rows))
