"""
``manage.py lms pok_sync``: bring unfinished POK credentials forward now.

Sends pending and retryable-failed credentials, re-sends requests abandoned by a crashed worker and polls POK for
credentials in progress, in bounded batches. Runs in this process by default so it works without Celery workers
(e.g. from cron); ``--enqueue`` hands the work to the workers instead. Credentials of a POK account that an outage
paused wait for it (they resume by themselves); the command says which accounts are paused.
"""
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from openedx_pok import api
from openedx_pok.issuance import outage


class Command(BaseCommand):
    help = "Issue pending POK credentials and refresh the ones in progress."

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, default=None, help="At most this many rows per action.")
        parser.add_argument("--enqueue", action="store_true", help="Enqueue Celery tasks instead of working inline.")
        parser.add_argument("--include-recent", action="store_true",
                            help="Also send credentials that became pending in the last two minutes.")

    def handle(self, *args, **options):
        if options["limit"] is not None and options["limit"] < 1:
            raise CommandError("--limit must be a positive number of rows.")
        counts = api.reconcile(
            limit=options["limit"], inline=not options["enqueue"],
            pending_grace=timedelta(0) if options["include_recent"] else None,
        )
        self.stdout.write(
            f"abandoned requests re-sent: {counts['abandoned']}, issued: {counts['issued']}, "
            f"refreshed: {counts['refreshed']}"
        )
        for name, pause in outage.paused_accounts():
            self.stdout.write(outage.describe(name, pause))
