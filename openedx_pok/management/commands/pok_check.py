"""
``manage.py lms pok_check [--online]``: the plugin's doctor for a deployment pipeline.

Runs the plugin's checks (``openedx_pok.E0xx`` / ``W0xx``, see ``openedx_pok/checks.py``), with the deployment and
the database ones that no other command runs (a POK misconfiguration must never stop ``migrate`` or a deploy; here a
pipeline can gate on it) and, with ``--online``, a live connection test per POK account. Exits non-zero when an
error is found or an account cannot be reached; warnings are printed only, and so are the accounts an outage paused
(their credentials wait and resume by themselves: nothing to fix, and no reason to stop a deploy).
"""
from django.core import checks
from django.core.management.base import BaseCommand, CommandError
from django.db import connections
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from openedx_pok.course_setup import accounts, catalog
from openedx_pok.issuance import outage

# The plugin's check tag (openedx_pok.checks.TAG; commands reach the plugin through api only).
TAG = "openedx_pok"


class Command(BaseCommand):
    help = "Check the POK plugin's configuration (and, with --online, every POK account)."
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--online", action="store_true", help="Also call POK once per account.")

    def handle(self, *args, **options):
        found = checks.run_checks(tags=[TAG], include_deployment_checks=True, databases=list(connections))
        problems = 0
        for message in found:
            line = f"{message.id}: {message.msg}" + (f" ({message.hint})" if message.hint else "")
            if message.level >= checks.ERROR:
                problems += 1
                self.stderr.write(line)
            else:
                self.stdout.write(line)
        for name, pause in outage.paused_accounts():
            self.stdout.write(outage.describe(name, pause))
        if options["online"]:
            for name in accounts.account_names():
                report = catalog.test_connection(name)
                if report.ok:
                    credits = report.available_credits or 0
                    self.stdout.write(ngettext(
                        "account {name}: OK, organization {organization}, wallet {wallet}, {credits} credit",
                        "account {name}: OK, organization {organization}, wallet {wallet}, {credits} credits",
                        credits).format(name=name, organization=report.organization, wallet=report.wallet,
                                        credits=credits))
                else:
                    problems += 1
                    self.stderr.write(_("account {name}: {reason}").format(name=name, reason=report.reason))
        if problems:
            raise CommandError(ngettext("{count} problem found in the POK configuration.",
                                        "{count} problems found in the POK configuration.", problems).format(
                                            count=problems))
        self.stdout.write(_("POK configuration OK."))
