"""
``manage.py lms pok_check [--online]``: the plugin's doctor for a deployment pipeline.

Runs the plugin's system checks (``openedx_pok.E0xx`` / ``W0xx``) and, with ``--online``, a live connection test
per POK account. Exits non-zero when an error is found or an account cannot be reached; warnings are printed only.
"""
from django.core import checks
from django.core.management.base import BaseCommand, CommandError

from openedx_pok import api


class Command(BaseCommand):
    help = "Check the POK plugin's configuration (and, with --online, every POK account)."
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--online", action="store_true", help="Also call POK once per account.")

    def handle(self, *args, **options):
        found = checks.run_checks(tags=["openedx_pok"], include_deployment_checks=False)
        problems = 0
        for message in found:
            line = f"{message.id}: {message.msg}" + (f" ({message.hint})" if message.hint else "")
            if message.level >= checks.ERROR:
                problems += 1
                self.stderr.write(line)
            else:
                self.stdout.write(line)
        if options["online"]:
            for name in api.account_names():
                report = api.test_connection(name)
                if report.ok:
                    self.stdout.write(f"account {name}: OK, organization {report.organization}, wallet "
                                      f"{report.wallet}, {report.available_credits} credits")
                else:
                    problems += 1
                    self.stderr.write(f"account {name}: {report.reason}")
        if problems:
            raise CommandError(f"{problems} problem(s) found in the POK configuration.")
        self.stdout.write("POK configuration OK.")
