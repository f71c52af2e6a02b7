"""
The reconcile run reads in bounded batches (issue 23, "Flat at a million credentials"): what it picks must not change.

``reconcile_plan`` finds the due retryable failures a page at a time through the (status, retryable) index and the
pending rows to issue in two bounded reads; these tests pin what a single query used to give: a due failure is found
behind any number still waiting for their backoff, and the rows a run just made pending come after the older ones.
"""
from datetime import timedelta

import pytest
from django.utils import timezone

from openedx_pok.issuance.reconcile import reconcile_plan
from openedx_pok.models import CredentialStatus, PokCertificate
from test_utils.factories import CredentialFactory

pytestmark = pytest.mark.django_db

LIMIT = 3


def _aged(row, minutes=60):
    PokCertificate.objects.filter(id=row.id).update(modified=timezone.now() - timedelta(minutes=minutes))
    return row


def test_a_due_failure_is_retried_behind_more_than_a_batch_still_waiting():
    later = timezone.now() + timedelta(hours=1)
    waiting = [CredentialFactory(failed_retryable=True, not_before=later) for _ in range(2 * LIMIT + 1)]
    due_failure = CredentialFactory(failed_retryable=True, not_before=None)
    due_hold = CredentialFactory(held=True, retryable=True, not_before=timezone.now() - timedelta(minutes=1))

    plan = reconcile_plan(limit=LIMIT)

    assert sorted(plan.to_issue) == sorted([due_failure.id, due_hold.id])
    assert set(PokCertificate.objects.filter(status=CredentialStatus.PENDING).values_list("id", flat=True)) == {
        due_failure.id, due_hold.id}
    assert all(PokCertificate.objects.get(id=row.id).status == CredentialStatus.FAILED for row in waiting)


def test_at_most_a_batch_of_failures_is_retried_per_run():
    rows = [CredentialFactory(failed_retryable=True, not_before=None) for _ in range(LIMIT + 2)]
    CredentialFactory(failed=True)  # not retryable: never picked

    plan = reconcile_plan(limit=LIMIT)

    assert len(plan.to_issue) == LIMIT
    assert PokCertificate.objects.filter(status=CredentialStatus.PENDING).count() == LIMIT
    assert set(plan.to_issue) <= {row.id for row in rows}


def test_rows_made_pending_by_the_run_come_after_the_older_pending_ones():
    oldest = _aged(CredentialFactory(), minutes=90)
    older = _aged(CredentialFactory(), minutes=60)
    CredentialFactory()  # pending within the grace: its own task sends it
    retried = [CredentialFactory(failed_retryable=True, not_before=None) for _ in range(2)]

    plan = reconcile_plan(limit=LIMIT)

    assert plan.to_issue[:2] == [oldest.id, older.id]
    assert len(plan.to_issue) == LIMIT and plan.to_issue[2] in {row.id for row in retried}


def test_a_full_batch_of_older_pending_rows_leaves_the_retried_ones_to_the_next_run():
    older = [_aged(CredentialFactory(), minutes=60 + index) for index in range(LIMIT)]
    retried = CredentialFactory(failed_retryable=True, not_before=None)

    plan = reconcile_plan(limit=LIMIT)

    assert plan.to_issue == [row.id for row in reversed(older)]  # the least recently touched first
    assert PokCertificate.objects.get(id=retried.id).status == CredentialStatus.PENDING  # retried, sent next run


def test_pending_rows_waiting_for_their_not_before_are_left():
    later = timezone.now() + timedelta(minutes=30)
    waiting = _aged(CredentialFactory(not_before=later))
    ready = _aged(CredentialFactory())

    assert reconcile_plan(limit=LIMIT).to_issue == [ready.id]
    assert PokCertificate.objects.get(id=waiting.id).status == CredentialStatus.PENDING
