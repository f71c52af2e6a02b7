"""
``manage.py lms pok_sync_templates [--account NAME]``: pull each POK account's templates and pages into the tables
the course mapping admin picks from. Exits non-zero when an account could not be synced.
"""
from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from openedx_pok.course_setup import accounts, catalog


class Command(BaseCommand):
    help = gettext_lazy("Sync the templates and pages of the POK accounts into the local catalog.")

    def add_arguments(self, parser):
        parser.add_argument("--account", default=None, help=_("Only this account (a name from POK_ACCOUNTS)."))

    def handle(self, *args, **options):
        if options["account"] and options["account"] not in accounts.account_names():
            raise CommandError(_("Unknown POK account '{account}'.").format(account=options["account"]))
        reports = catalog.sync(options["account"])
        for report in reports:
            for line in report.messages:
                (self.stderr if report.error else self.stdout).write(line)
        failed = [report.account for report in reports if report.error]
        if failed:
            raise CommandError(ngettext("Could not sync POK account {accounts}.",
                                        "Could not sync POK accounts {accounts}.", len(failed)).format(
                accounts=", ".join(failed)))
