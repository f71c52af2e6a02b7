"""
The reconcile run: brings every unfinished credential forward, in bounded batches, whatever was lost on the way.

It finds requests a crashed worker (or a failed database) left ``requesting``, pending rows whose task was lost,
retryable failures whose backoff has passed, and credentials POK is still working on. It never enqueues: it returns
a :class:`ReconcilePlan`, and ``tasks.reconcile`` sends the work to the workers or runs it inline (``pok_sync``).
Set-based where it can be: a few UPDATEs per batch, not a few per row.
"""
import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from openedx_pok.course_setup import configuration
from openedx_pok.issuance import answers
from openedx_pok.issuance.states import CredentialStatus, release_reason, transition_many
from openedx_pok.models import PokCertificate

log = logging.getLogger(__name__)

# A row left "requesting" this long was abandoned by a crashed worker mid-POST.
STALE_REQUESTING = timedelta(minutes=10)
# Pending rows younger than this are left to the task already scheduled for them.
PENDING_GRACE = timedelta(minutes=2)
# The statuses a retryable problem leaves a credential in: a failure, or a hold (the Open edX certificate not there).
RETRYABLE_STATUSES = (CredentialStatus.FAILED, CredentialStatus.HELD)


@dataclass
class ReconcilePlan:
    """What a reconcile run found to do: the rows to (re)issue and to refresh, and how many were abandoned."""

    abandoned: int = 0
    to_issue: list = field(default_factory=list)
    to_refresh: list = field(default_factory=list)

    @property
    def counts(self):
        return {"abandoned": self.abandoned, "issued": len(self.to_issue), "refreshed": len(self.to_refresh)}


def _recover_abandoned(now, limit):
    """
    Requests left ``requesting`` by a crashed worker (or a database that failed after the POST).

    A row whose answer was remembered is stored from it, never sent again. The others count as ambiguous: each
    gets the one resend an issuance may have after an ambiguous failure (flagged as a possible duplicate), unless
    it had it already or ambiguous retries are off; then it is failed for staff. Set-based: a few UPDATEs per batch.
    """
    rows = list(PokCertificate.objects.filter(status=CredentialStatus.REQUESTING,
                                              modified__lt=now - STALE_REQUESTING)[:limit])
    resend, give_up = [], []
    for row in rows:
        answer = answers.recall(row)
        if answer is not None:
            answers.store(row, answer, CredentialStatus.REQUESTING)
        elif settings.POK_RETRY_AMBIGUOUS and row.ambiguous_attempts == 0:
            resend.append(row.id)
        else:
            give_up.append(row.id)
    transition_many(
        resend, CredentialStatus.REQUESTING, status=CredentialStatus.PENDING, possible_duplicate=True,
        ambiguous_attempts=F("ambiguous_attempts") + 1, not_before=None,
        status_reason=_("The previous request to POK was interrupted; sending it again."),
    )
    transition_many(
        give_up, CredentialStatus.REQUESTING, status=CredentialStatus.FAILED, retryable=False,
        ambiguous_attempts=F("ambiguous_attempts") + 1,
        status_reason=_("The request to POK was interrupted and may have reached POK. Check POK for this "
                        "learner's credential before retrying."),
    )
    if give_up:
        log.warning("POK: %s interrupted requests left to staff: %s", len(give_up), give_up)
    return resend, len(rows)


def _release_scheduled(now, limit):
    """
    Credentials waiting for their course's certificate release (``scheduled``): those of courses that release them
    now become pending (their ids are returned, to be issued), the others follow a date the course team moved.

    One query for the courses that have such credentials (an index walk, however many credentials wait), then per
    course its release as the LMS decides it and one statement. Bounded by ``limit`` courses and credentials.
    """
    released = []
    waiting = PokCertificate.objects.filter(status=CredentialStatus.SCHEDULED)
    # DISTINCT over (status, course_key), the index's own columns: MariaDB skips from course to course through the
    # index (a loose index scan, two index reads per course); DISTINCT course_key alone read every waiting row.
    courses = waiting.order_by().values_list("status", "course_key").distinct()[:limit]
    for course_key in [course_key for _status, course_key in courses]:
        course = configuration.course_info(course_key)
        if course is None:
            continue  # the course is gone from the LMS: its credentials wait, as the LMS shows no certificate
        release = configuration.certificates_release(course)
        rows = waiting.filter(course_key=course_key)
        if release.released:
            ids = list(rows.values_list("id", flat=True)[:limit - len(released)])
            transition_many(ids, CredentialStatus.SCHEDULED, status=CredentialStatus.PENDING, not_before=None,
                            status_reason="", modified=now)
            released += ids
            if len(released) >= limit:
                break
        else:
            # "Not that date" as ranges of not_before (none, before, after), which an index ending with not_before
            # reads as such; ``exclude(not_before=...)`` is the same rows as a NOT no index range can serve.
            moved = rows.filter(not_before__isnull=False) if release.date is None else rows.filter(
                Q(not_before__isnull=True) | Q(not_before__lt=release.date) | Q(not_before__gt=release.date))
            moved.update(not_before=release.date, status_reason=release_reason(release.date), modified=now)
    return released


def _due_retryable(due, limit):
    """
    Up to ``limit`` retryable failures and holds whose backoff has passed (``due``): the ids, per status in id order.

    Each status is walked a page of ``limit`` at a time through the (status, retryable) index alone (the page query
    reads nothing but the index, in id order), and the page's due rows are picked by primary key; the walk goes on
    past rows still waiting for their backoff, so they never hide due ones behind them. No statement reads more than
    a page, however many credentials the table holds: one query with the backoff condition let MariaDB's optimizer
    take the one-column ``retryable`` index or a rowid filter over every failed row instead (7,000 rows read at
    100,000 credentials).
    """
    found = []
    for status in RETRYABLE_STATUSES:
        candidates = PokCertificate.objects.filter(status=status, retryable=True).order_by("id")
        after = None
        while len(found) < limit:
            page = list((candidates if after is None else candidates.filter(id__gt=after))
                        .values_list("id", flat=True)[:limit])
            if not page:
                break
            found += sorted(PokCertificate.objects.filter(due, id__in=page, status=status, retryable=True)
                            .values_list("id", flat=True))[:limit - len(found)]
            if len(page) < limit:
                break
            after = page[-1]
    return found


def _to_issue(due, settled_before, woken, limit):
    """
    The pending rows to issue, at most ``limit``, the least recently touched first: those older than the grace
    (``settled_before``), then those this run just made pending (``woken``: retried, resent, released).

    Two bounded reads instead of one query with ``modified <= ... OR id IN (...)``, which MariaDB answered with an
    index merge and a sort of every pending row: a range of the (status, modified) index in its own order, and, only
    when that range leaves room, the woken rows by primary key. The woken rows were stamped by this run, after the
    grace began, so they come after every row of the range, as in one query ordered by ``modified``.
    """
    pending = PokCertificate.objects.filter(due, status=CredentialStatus.PENDING)
    rows = list(pending.filter(modified__lte=settled_before).order_by("modified").values_list("id", flat=True)[:limit])
    taken = set(rows)
    woken = [row_id for row_id in dict.fromkeys(woken) if row_id not in taken]
    if woken and len(rows) < limit:
        fresh = sorted(pending.filter(id__in=woken).values_list("modified", "id"))
        rows += [row_id for _modified, row_id in fresh[:limit - len(rows)]]
    return rows


def reconcile_plan(limit=None, pending_grace=None):
    """
    Bring every unfinished credential forward, in bounded batches: returns the plan of what to issue and refresh.

    - ``requesting`` rows abandoned mid-POST are recovered (see :func:`_recover_abandoned`);
    - ``pending`` rows older than a grace period, retryable failures and credentials held because the Open edX
      certificate was not there yet are (re)issued, each once its "not before" (backoff, Retry-After) has passed;
    - ``scheduled`` rows of courses that now release their certificates are issued (see :func:`_release_scheduled`);
    - ``in_progress`` rows are polled on POK, the least recently polled first.
    ``pending_grace`` (default two minutes) leaves fresh pending rows to the task already scheduled for them.
    """
    limit = limit or settings.POK_SYNC_BATCH_SIZE
    grace = PENDING_GRACE if pending_grace is None else pending_grace
    now = timezone.now()
    due = Q(not_before__isnull=True) | Q(not_before__lte=now)
    plan = ReconcilePlan()
    resend, plan.abandoned = _recover_abandoned(now, limit)
    released = _release_scheduled(now, limit)

    retryable_failures = _due_retryable(due, limit)
    transition_many(retryable_failures, RETRYABLE_STATUSES, status=CredentialStatus.PENDING, modified=now)
    plan.to_issue = _to_issue(due, now - grace, retryable_failures + resend + released, limit)
    plan.to_refresh = list(PokCertificate.objects.filter(status=CredentialStatus.IN_PROGRESS).exclude(
        Q(pok_credential_id__isnull=True) | Q(pok_credential_id=""),
    ).order_by(F("last_synced_at").asc(nulls_first=True)).values_list("id", flat=True)[:limit])
    log.info("POK: reconcile %s", plan.counts)
    return plan
