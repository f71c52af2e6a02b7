"""
The backfill: one issuance request for every learner who earned an Open edX certificate before the course issued
POK credentials (a course mapped late, certificates from before the plugin was installed).

It streams: certificates are read through ``compat`` in keyset pages and recorded a batch at a time with a few
queries (one for the batch's existing credentials, one bulk insert, one to learn the new rows' ids), so memory stays
flat in the number of learners. It is idempotent: a learner who already has a credential (emitted, on its way,
held, revoked) is counted, never sent again; only a failure POK may still accept (``failed`` + retryable, e.g. POK was
down half-way through an earlier run) is requested again, and nothing that might make a second credential is. The
POSTs are not made here: each new row's issuance task is handed to the Celery workers after the batch commits, with
``rate`` tasks per second at most across all workers (the k-th task of a run is due k/rate seconds after its start,
written on the row as its "not before" and as the task's countdown, both of which live outside any one worker). POK's
Retry-After holds for every worker already (``configuration.account_wait_seconds``). This module never enqueues:
``schedule(row_id, countdown=...)`` is given by ``api`` / ``tasks``, which own the Celery side.
"""
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from itertools import islice

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from opaque_keys.edx.keys import CourseKey

from openedx_pok import compat, lms_tables
from openedx_pok.course_setup import configuration
from openedx_pok.exceptions import CourseSetupError
from openedx_pok.issuance import events, history
from openedx_pok.issuance.states import CredentialStatus, release_reason, transition
from openedx_pok.keys import parse_course_key
from openedx_pok.models import CertificateTemplate, PokCertificate

log = logging.getLogger(__name__)

#: Certificates read and recorded per batch (one page of the keyset walk, one transaction).
BATCH_SIZE = 500
#: With a rate, the run keeps at most this many seconds of tasks waiting in the broker and sleeps beyond that: a
#: countdown far in the future is held in a worker's memory, and it stays below reconcile's two-minute grace for
#: fresh pending rows, so reconcile never sends a backfilled credential ahead of its turn.
MAX_AHEAD_SECONDS = 60


@dataclass
class BackfillReport:
    """What a backfill run did (or, in a dry run, would do), for the summary table and the admin message."""

    courses: tuple = ()
    dry_run: bool = False
    examined: int = 0                                      # certificates looked at
    requested: int = 0                                     # issuance requests made (new rows and retried failures)
    retried: int = 0                                       # of which earlier failures that POK may still accept
    scheduled: int = 0                                     # new credentials that wait for their course's release
    waiting: dict = field(default_factory=dict)            # course key -> release date, courses not showing them yet
    already_had: Counter = field(default_factory=Counter)  # local status -> credentials left as they are
    held: Counter = field(default_factory=Counter)         # reason -> held credentials (bad learner data, setup)
    failed: Counter = field(default_factory=Counter)       # reason -> failures left to staff
    limit_reached: bool = False
    started: bool | None = None                            # background run: whether its task was handed over

    @property
    def counts(self):
        """The totals, as plain numbers (logs, the admin message, the Celery task)."""
        return {"courses": len(self.courses), "examined": self.examined, "requested": self.requested,
                "retried": self.retried, "scheduled": self.scheduled, "already_had": sum(self.already_had.values()),
                "held": sum(self.held.values()), "failed": sum(self.failed.values())}

    def count_existing(self, status, reason):
        """File a credential the run leaves alone under held, failed or already had."""
        if status == CredentialStatus.HELD:
            self.held[reason or _("No reason recorded.")] += 1
        elif status == CredentialStatus.FAILED:
            self.failed[reason or _("No reason recorded.")] += 1
        else:
            self.already_had[str(status)] += 1


class Pacer:
    """
    When each task of a run may go: the k-th (from 0) at ``start + k / rate``; all at once without a rate.

    ``next_offset`` gives the seconds from now until the next task's turn; ``wait_if_ahead`` sleeps while more than
    ``max_ahead`` seconds of tasks are already scheduled, so the broker holds a bounded window of the run.
    """

    def __init__(self, rate=None, clock=time.monotonic, sleep=time.sleep, max_ahead=MAX_AHEAD_SECONDS):
        self.rate, self.clock, self.sleep, self.max_ahead = rate, clock, sleep, max_ahead
        self.scheduled = 0
        self.start = None

    def _next_due(self):
        if self.start is None:
            self.start = self.clock()
        return self.start + self.scheduled / self.rate

    def next_offset(self):
        if not self.rate:
            return 0.0
        offset = max(0.0, self._next_due() - self.clock())
        self.scheduled += 1
        return offset

    def wait_if_ahead(self):
        if not self.rate or self.start is None:
            return
        ahead = self._next_due() - self.clock()
        if ahead > self.max_ahead:
            self.sleep(ahead - self.max_ahead)


def _as_course_key(value):
    key = parse_course_key(value)
    if key is None:
        raise CourseSetupError(_("{key} is not a course key (course-v1:Org+Course+Run).").format(key=value))
    return key


def _mapping_rule(course_keys):
    """A function course key -> its mapping (or None), with the rule of ``for_course``, in one query for all."""
    mappings = list(CertificateTemplate.objects.filter(organization__in={key.org for key in course_keys}))
    by_course = {str(mapping.course_key): mapping for mapping in mappings if mapping.course_key}
    by_org = {mapping.organization: mapping for mapping in mappings if not mapping.course_key}
    # A course's own mapping wins over its organization's default even when disabled (that is how one opts out).
    return lambda key: by_course.get(str(key)) or by_org.get(key.org)


def resolve_courses(course_keys=(), orgs=()):
    """
    The POK-enabled course runs to backfill: the given course keys and the courses of the given organizations.

    CourseSetupError says what is wrong: a value that is not a course key or not a course of this LMS, a course
    without an enabled mapping, an organization with no course or none that is mapped. Courses of an organization
    that are not POK-enabled (opted out) are left out.
    """
    known_by_org = {}

    def known(org):
        if org not in known_by_org:
            known_by_org[org] = {str(key) for key in compat.get_course_keys_for_org(org)}
        return known_by_org[org]

    keys = [_as_course_key(value) for value in course_keys]
    for key in keys:
        if str(key) not in known(key.org):
            raise CourseSetupError(_("The course {course} does not exist in Open edX.").format(course=key))
    mapping_of = _mapping_rule(keys)
    for key in keys:
        mapping = mapping_of(key)
        if mapping is None or not mapping.enabled:
            raise CourseSetupError(
                _("The course {course} is not mapped to a POK template (or its mapping is disabled).").format(
                    course=key))
    for org in orgs:
        org = str(org).strip()
        org_keys = [CourseKey.from_string(key) for key in sorted(known(org))]
        if not org_keys:
            raise CourseSetupError(_("The organization {org} has no courses in Open edX.").format(org=org))
        mapping_of = _mapping_rule(org_keys)
        enabled = [key for key in org_keys if (mapping_of(key) is not None and mapping_of(key).enabled)]
        if not enabled:
            raise CourseSetupError(_("No course of the organization {org} is mapped to a POK template.").format(
                org=org))
        log.info("POK: backfill of organization %s: %s of its %s courses are POK-enabled", org, len(enabled),
                 len(org_keys))
        keys.extend(enabled)
    return tuple(dict.fromkeys(keys))  # each course once, in the order given


def _batches(iterable, size):
    iterator = iter(iterable)
    while batch := list(islice(iterator, size)):
        yield batch


def _existing(batch):
    """The credentials of the batch's learners and courses: {(user id, course key string): (id, status, ...)}."""
    rows = PokCertificate.objects.filter(
        user_id__in={record.user_id for record in batch}, course_key__in={record.course_key for record in batch},
    ).values_list("user_id", "course_key", "id", "status", "retryable", "status_reason")
    return {(user_id, str(course_key)): rest for user_id, course_key, *rest in rows}


def _due(now, offset):
    return now + timedelta(seconds=offset) if offset else None


def _new_row(record, report, pacer, now):
    """(unsaved row, countdown of its task or None): a course that does not show certificates yet gets no task."""
    key = str(record.course_key)
    if key in report.waiting:
        date = report.waiting[key]
        return PokCertificate(user_id=record.user_id, course_key=record.course_key, verify_uuid=record.verify_uuid,
                              status=CredentialStatus.SCHEDULED, not_before=date,
                              status_reason=release_reason(date)), None
    offset = pacer.next_offset()
    return PokCertificate(user_id=record.user_id, course_key=record.course_key, verify_uuid=record.verify_uuid,
                          not_before=_due(now, offset)), offset


def _create(records, pacer, schedule, report, schedule_many=None):
    """
    Insert the new rows in one statement, learn their ids, and schedule them (and their event) after commit: with
    ``schedule_many`` and no rate, all of them in one call (the workers get them a few per message). Rows of a course
    that does not show certificates yet wait for that release (reconcile sends them) and get no task.
    """
    now = timezone.now()
    rows, offsets = [], {}
    for record in records:
        row, offset = _new_row(record, report, pacer, now)
        rows.append(row)
        offsets[row.uuid] = offset
    PokCertificate.objects.bulk_create(rows, ignore_conflicts=True)
    inserted = dict(PokCertificate.objects.filter(uuid__in=list(offsets)).values_list("uuid", "id"))
    to_send = [row for row in rows if row.uuid in inserted and offsets[row.uuid] is not None]
    together = schedule_many is not None and not any(offsets[row.uuid] for row in to_send)
    if together and to_send:
        transaction.on_commit(partial(schedule_many, [inserted[row.uuid] for row in to_send]))
    for row in rows:
        if row.uuid not in inserted:
            continue
        row.id = inserted[row.uuid]
        if not together and offsets[row.uuid] is not None:
            transaction.on_commit(partial(schedule, row.id, countdown=offsets[row.uuid]))
        transaction.on_commit(partial(events.emit, events.REQUESTED, row))
    history.created([row for row in rows if row.uuid in inserted])
    report.requested += len(to_send)
    report.scheduled += len(inserted) - len(to_send)
    missed = [lms_tables.CertificateRecord(0, row.user_id, row.course_key) for row in rows if row.uuid not in inserted]
    if missed:
        # Recorded meanwhile by the LMS itself (the learner's award event raced the backfill): left to that flow.
        found = _existing(missed)
        for record in missed:
            row = found.get((record.user_id, str(record.course_key)))
            if row is None:  # the database ignored the insert for another reason (MySQL's INSERT IGNORE)
                report.failed[_("The credential could not be recorded; run the backfill again.")] += 1
            else:
                report.count_existing(row[1], row[3])


def _retry(row_ids, pacer, schedule, report):
    """Earlier failures POK may still accept: pending again, scheduled like new rows (compare-and-set each)."""
    now = timezone.now()
    for row_id in row_ids:
        offset = pacer.next_offset()
        if transition(row_id, CredentialStatus.FAILED, status=CredentialStatus.PENDING, not_before=_due(now, offset)):
            transaction.on_commit(partial(schedule, row_id, countdown=offset))
            report.requested += 1
            report.retried += 1
        else:
            row = PokCertificate.objects.filter(id=row_id).values_list("status", "status_reason").first()
            if row is not None:
                report.count_existing(*row)


def _record_batch(batch, report, schedule, pacer, dry_run, room, schedule_many=None):
    """One batch: sort its certificates into new, retried and left alone; write and schedule unless a dry run."""
    existing = _existing(batch)
    new, retry = [], []
    for record in batch:
        row = existing.get((record.user_id, str(record.course_key)))
        retryable_failure = row is not None and row[1] == CredentialStatus.FAILED and row[2]
        if (row is None or retryable_failure) and room is not None and len(new) + len(retry) >= room:
            report.limit_reached = True
            break
        report.examined += 1
        if row is None:
            new.append(record)
        elif retryable_failure:
            retry.append(row[0])
        else:
            report.count_existing(row[1], row[3])
    if dry_run:
        waiting = sum(1 for record in new if str(record.course_key) in report.waiting)
        report.requested += len(new) - waiting + len(retry)
        report.scheduled += waiting
        report.retried += len(retry)
        return
    with transaction.atomic():
        if new:
            _create(new, pacer, schedule, report, schedule_many)
        _retry(retry, pacer, schedule, report)


def _waiting_for_release(courses):
    """{course key: release date (or None: not set yet)} of the courses that do not show certificates yet."""
    waiting = {}
    for course_key in courses:
        course = configuration.course_info(course_key)
        release = configuration.certificates_release(course) if course is not None else None
        if release is not None and not release.released:
            waiting[str(course_key)] = release.date
    return waiting


def run(courses, schedule, since=None, until=None, dry_run=False, limit=None, rate=None, progress=None,
        batch_size=BATCH_SIZE, clock=time.monotonic, sleep=time.sleep, schedule_many=None):
    """
    Request a credential for every downloadable certificate of ``courses`` that has none (see the module docstring).

    ``since`` / ``until`` bound the certificates' creation dates (inclusive / exclusive); ``limit`` caps the number
    of requests of this run; ``rate`` caps tasks per second; ``progress(n, total=None)`` is called with the number
    of certificates to read (one COUNT query, only with ``progress``), then after each batch with how many it read.
    ``dry_run`` writes and schedules nothing and counts what a run would do. ``schedule_many(row_ids)``, when given,
    schedules a batch's new rows together when no rate spaces them out. Returns a :class:`BackfillReport`.
    """
    report = BackfillReport(courses=tuple(courses), dry_run=dry_run)
    report.waiting = _waiting_for_release(report.courses)
    pacer = Pacer(rate, clock=clock, sleep=sleep)
    if progress is not None:
        progress(0, total=compat.count_downloadable_certificates(report.courses, since=since, until=until))
    certificates = compat.iter_downloadable_certificates(report.courses, since=since, until=until,
                                                         batch_size=batch_size)
    for batch in _batches(certificates, batch_size):
        room = None if limit is None else limit - report.requested - report.scheduled
        pacer.wait_if_ahead()
        _record_batch(batch, report, schedule, pacer, dry_run, room, schedule_many)
        if progress is not None:
            progress(len(batch))
        if report.limit_reached:
            break
    log.info("POK: backfill%s of %s courses: %s", " (dry run)" if dry_run else "", len(report.courses), report.counts)
    return report


def backfill(course_keys, orgs, schedule, start, background=False, **options):
    """
    The backfill of the given courses and organizations' courses (:func:`resolve_courses`): run here, or with
    ``background`` counted here (a dry run: what the background run will request) and handed to ``start(courses)``
    (the Celery task), which runs it on a worker. CourseSetupError for a course or organization it cannot backfill.
    """
    courses = resolve_courses(course_keys, orgs)
    if not background:
        return run(courses, schedule, **options)
    report = run(courses, schedule, dry_run=True)
    report.started = bool(report.requested or report.scheduled) and bool(start(courses))
    return report
