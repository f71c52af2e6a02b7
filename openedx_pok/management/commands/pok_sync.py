"""
``manage.py lms pok_sync``: bring unfinished POK credentials forward now.

Sends pending and retryable-failed credentials, re-sends requests abandoned by a crashed worker and polls POK for
credentials in progress, in bounded batches. Runs in this process by default so it works without Celery workers
(e.g. from cron); ``--enqueue`` hands the work to the workers instead. Credentials of a POK account that an outage
paused wait for it (they resume by themselves); the command says which accounts are paused.
"""
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from openedx_pok import api
from openedx_pok.issuance import outage
from openedx_pok.issuance.states import CredentialStatus


def outcome(ended):
    """"Emitted 3, Held 1": where the credentials ended, in the order of the life cycle, translated."""
    return ", ".join(f"{status.label} {ended[status.value]}" for status in CredentialStatus if ended.get(status.value))


def report(counts, inline):
    """What a run did, in sentences with correct plurals."""
    if not inline:
        return [
            ngettext("Handed %(count)d credential to the workers to send.",
                     "Handed %(count)d credentials to the workers to send.",
                     counts["issued"]) % {"count": counts["issued"]},
            ngettext("Handed %(count)d credential in progress to the workers to poll.",
                     "Handed %(count)d credentials in progress to the workers to poll.",
                     counts["refreshed"]) % {"count": counts["refreshed"]},
        ]
    lines = []
    sent = counts["issued"]
    if sent:
        line = ngettext("Sent %(count)d credential to POK", "Sent %(count)d credentials to POK", sent) % {"count": sent}
        line += ": " + outcome(counts["issued_now"]) + "."
        if counts["abandoned"]:
            line += " " + ngettext("%(count)d of them was a request a stopped worker had left unanswered.",
                                   "%(count)d of them were requests a stopped worker had left unanswered.",
                                   counts["abandoned"]) % {"count": counts["abandoned"]}
        lines.append(line)
    polled = counts["refreshed"]
    if polled:
        line = ngettext("Asked POK about %(count)d credential in progress",
                        "Asked POK about %(count)d credentials in progress", polled) % {"count": polled}
        lines.append(line + ": " + outcome(counts["refreshed_now"]) + ".")
    return lines or [_("Nothing to send or to ask POK about.")]


class Command(BaseCommand):
    help = gettext_lazy("Issue pending POK credentials and refresh the ones in progress.")

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, default=None, help=_("At most this many rows per action."))
        parser.add_argument("--enqueue", action="store_true",
                            help=_("Enqueue Celery tasks instead of working inline."))
        parser.add_argument("--include-recent", action="store_true",
                            help=_("Also send credentials that became pending in the last two minutes."))

    def handle(self, *args, **options):
        if options["limit"] is not None and options["limit"] < 1:
            raise CommandError(_("--limit must be a positive number of rows."))
        counts = api.reconcile(
            limit=options["limit"], inline=not options["enqueue"],
            pending_grace=timedelta(0) if options["include_recent"] else None,
        )
        for line in report(counts, inline=not options["enqueue"]):
            self.stdout.write(line)
        for name, pause in outage.paused_accounts():
            self.stdout.write(outage.describe(name, pause))
