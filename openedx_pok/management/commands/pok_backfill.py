"""
``manage.py lms pok_backfill (--course KEY ... | --org ORG ...) [--since DATE] [--until DATE] [--dry-run] [--limit N]
[--rate R]``: a POK credential for every learner who already holds a downloadable certificate in those courses.

Each learner without a credential gets one issuance request through ``api`` (the Celery workers make the POSTs);
running it again is safe: credentials already issued, on their way or held are counted, never sent again. The
certificates are streamed, with a progress bar on a terminal, and the run ends with a summary table.
"""
import sys
from datetime import UTC, datetime, time, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from tqdm import tqdm

from openedx_pok import api
from openedx_pok.exceptions import IssuanceError
from openedx_pok.issuance.states import CredentialStatus

#: Reasons listed under "held" and "failed" in the summary; the rest are added up in one line.
MAX_REASONS = 10


def parse_when(value, end_of_day=False):
    """
    A date (``2026-03-31``) or an ISO 8601 date and time, as an aware datetime (UTC when no offset is given).

    A bare date as ``--until`` means the end of that day (the bound is exclusive), so ``--until 2026-03-31``
    includes certificates of the 31st.
    """
    try:
        day = parse_date(value)  # first: parse_datetime also takes a bare date, as midnight
        moment = None if day is not None else parse_datetime(value)
    except ValueError:  # well formed but no such day or time, e.g. 2026-02-30
        raise ValueError(value) from None
    if day is not None:
        moment = datetime.combine(day + timedelta(days=1) if end_of_day else day, time.min)
    elif moment is None:
        raise ValueError(value)
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment, UTC)


class Command(BaseCommand):
    help = gettext_lazy("Request POK credentials for the learners who earned a certificate before their course "
                        "issued them.")

    def add_arguments(self, parser):
        scope = parser.add_mutually_exclusive_group(required=True)
        scope.add_argument("--course", nargs="+", action="extend", metavar="KEY", default=[],
                           help=_("Course run keys to backfill (each must be mapped to a POK template)."))
        scope.add_argument("--org", nargs="+", action="extend", metavar="ORG", default=[],
                           help=_("Organizations whose POK-enabled courses are backfilled."))
        parser.add_argument("--since", help=_("Only certificates created on or after this date (YYYY-MM-DD)."))
        parser.add_argument("--until", help=_("Only certificates created up to this date, included (YYYY-MM-DD)."))
        parser.add_argument("--dry-run", action="store_true", help=_("Count what would be requested; write nothing."))
        parser.add_argument("--limit", type=int, help=_("At most this many issuance requests in this run."))
        parser.add_argument("--rate", type=float,
                            help=_("At most this many issuance tasks per second, across all Celery workers."))

    def _options(self, options):
        try:
            since = parse_when(options["since"]) if options["since"] else None
            until = parse_when(options["until"], end_of_day=True) if options["until"] else None
        except ValueError as exc:
            raise CommandError(_("{value} is not a date (YYYY-MM-DD) or an ISO 8601 date and time.").format(
                value=exc.args[0])) from None
        if since and until and since >= until:
            raise CommandError(_("--since must be before --until."))
        if options["limit"] is not None and options["limit"] < 1:
            raise CommandError(_("--limit must be a positive number of requests."))
        if options["rate"] is not None and not options["rate"] > 0:
            raise CommandError(_("--rate must be a positive number of tasks per second."))
        return {"since": since, "until": until, "dry_run": options["dry_run"], "limit": options["limit"],
                "rate": options["rate"]}

    def handle(self, *args, **options):
        backfill_options = self._options(options)
        stream = getattr(self.stderr, "_out", sys.stderr)  # the bar redraws one line: the raw stream, not the wrapper
        with tqdm(unit=_("certificates"), file=stream, disable=not stream.isatty(), dynamic_ncols=True) as bar:

            def progress(done, total=None):
                if total is not None:
                    bar.total = total
                    bar.refresh()
                bar.update(done)

            try:
                report = api.backfill(options["course"], options["org"], progress=progress, **backfill_options)
            except IssuanceError as exc:
                raise CommandError(exc.reason) from None
        self.stdout.write(summary(report))


def _reasons(counter):
    lines = [f"      {count:>8}  {reason}" for reason, count in counter.most_common(MAX_REASONS)]
    rest = sum(count for _reason, count in counter.most_common()[MAX_REASONS:])
    if rest:
        lines.append(f"      {rest:>8}  " + _("(other reasons)"))
    return lines


def _release_dates(report):
    """One line per course that does not show certificates yet: when its credentials go out."""
    return [f"      {str(course):<40}  " + (date.isoformat() if date else _("no date set yet"))
            for course, date in sorted(report.waiting.items())]


def summary(report):
    """The summary table of a backfill run."""
    counts = report.counts
    title = _("POK backfill of {courses}: {examined}").format(
        courses=ngettext("{count} course", "{count} courses", counts["courses"]).format(count=counts["courses"]),
        examined=ngettext("{count} certificate examined", "{count} certificates examined",
                          counts["examined"]).format(count=counts["examined"]))
    if report.dry_run:
        title += " " + _("(dry run: nothing was written)")
    had = ", ".join(f"{CredentialStatus(status).label} {count}"
                    for status, count in sorted(report.already_had.items()))
    requested = f"{counts['requested']:>8}"
    if counts["retried"]:
        requested += "  " + _("({count} of them after a temporary failure)").format(count=counts["retried"])
    lines = [
        title,
        f"  {_('Requested'):<26}{requested}",
        f"  {_('Already had a credential'):<26}{counts['already_had']:>8}" + (f"  ({had})" if had else ""),
        f"  {_('Waiting for the release'):<26}{counts['scheduled']:>8}",
        *_release_dates(report),
        f"  {_('Held'):<26}{counts['held']:>8}",
        *_reasons(report.held),
        f"  {_('Failed'):<26}{counts['failed']:>8}",
        *_reasons(report.failed),
    ]
    if report.limit_reached:
        lines.append(_("Stopped at --limit: run the command again for the rest."))
    return "\n".join(lines)
