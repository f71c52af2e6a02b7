"""
``manage.py lms pok_sync_templates [--account NAME]``: pull each POK account's templates and pages into the tables
the course mapping admin picks from. Exits non-zero when an account could not be synced.
"""
from django.core.management.base import BaseCommand, CommandError

from openedx_pok.course_setup import accounts, catalog


class Command(BaseCommand):
    help = "Sync the templates and pages of the POK accounts into the local catalog."

    def add_arguments(self, parser):
        parser.add_argument("--account", default=None, help="Only this account (a name from POK_ACCOUNTS).")

    def handle(self, *args, **options):
        if options["account"] and options["account"] not in accounts.account_names():
            raise CommandError(f"Unknown POK account '{options['account']}'.")
        reports = catalog.sync(options["account"])
        for report in reports:
            for line in report.messages:
                (self.stderr if report.error else self.stdout).write(line)
        failed = [report.account for report in reports if report.error]
        if failed:
            raise CommandError(f"Could not sync POK account(s): {', '.join(failed)}.")
