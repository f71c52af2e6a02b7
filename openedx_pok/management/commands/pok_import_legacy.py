"""
``manage.py lms pok_import_legacy [--dry-run]``: import the earlier openedx-pok's data now, and say what happened.

The data migration runs the same import on upgrade; this command is for a second look: after fixing the rows it
skipped (a learner restored, a course key corrected), to see beforehand what an upgrade will import (``--dry-run``
writes nothing and prints the same counts), or on a database where the legacy tables were restored later. Safe to
run any number of times: what is already imported is counted, never written twice. ``-v 2`` lists every skipped
legacy row with its reason (ids only).
"""
from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from openedx_pok import api
from openedx_pok.issuance.states import CredentialStatus


class Command(BaseCommand):
    help = "Import the course templates and credentials of the earlier openedx-pok (21.x, 22.0.0)."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Count what would be imported; write nothing.")
        parser.add_argument("--batch-size", type=int, default=None, help="Legacy rows per batch (default 2000).")

    def handle(self, *args, **options):
        if options["batch_size"] is not None and options["batch_size"] < 1:
            raise CommandError(_("--batch-size must be a positive number."))
        report = api.import_legacy(dry_run=options["dry_run"], batch_size=options["batch_size"])
        if not report.found:
            self.stdout.write(_("No tables of the earlier openedx-pok in this database: nothing to import."))
            return
        if report.error:
            raise CommandError(report.error)
        write = self.stdout.write
        if report.dry_run:
            write(_("Dry run: nothing was written; a real run would do the following."))
        mappings = report.mappings
        write(ngettext("Course mappings, from {n} legacy template:", "Course mappings, from {n} legacy templates:",
                       report.templates).format(n=report.templates))
        write(_("  imported: {enabled} enabled, {disabled} disabled (the course's module_pok.enable flag was off)")
              .format(enabled=mappings["imported"], disabled=mappings["imported_disabled"]))
        write(_("  already present: {n}").format(n=mappings["present"]))
        write(_("  skipped: {n}{reasons}").format(n=sum(report.mapping_skips.values()),
                                                 reasons=self._reasons(report, report.mapping_skips)))
        write(_("  from the module_pok.enable flag: {org} organization defaults, {on} courses on, {off} courses off, "
                "{present} already present").format(org=mappings["flag_organization"], on=mappings["flag_course_on"],
                                                    off=mappings["flag_course_off"],
                                                    present=mappings["flag_present"]))
        if report.flag_partial:
            write(_("  note: the flag was rolled out to some users only; no course was enabled for that alone."))
        imported = sum(report.imported.values())
        write(ngettext("Credentials, from {n} legacy row:", "Credentials, from {n} legacy rows:",
                       report.credentials).format(n=report.credentials))
        write(_("  imported: {n}").format(n=imported))
        for status in CredentialStatus:
            if report.imported[status]:
                write(f"    {status.label}: {report.imported[status]}")
        write(_("  pending issuance (the earlier plugin never got a POK credential; the next reconcile sends them): "
                "{n}").format(n=report.imported[CredentialStatus.PENDING]))
        if report.undated:
            write(_("  with a legacy date that is not a date (imported with its other date or the import time): "
                    "{n}").format(n=report.undated))
        if report.retired:
            write(_("  of learners the LMS has retired (imported without their name and e-mail; unsent ones held): "
                    "{n}").format(n=report.retired))
        write(_("  adopted by an unsent credential of this plugin: {n}").format(n=report.adopted))
        write(_("  already present: {n}").format(n=report.present))
        write(_("  skipped: {n}{reasons}").format(n=sum(report.credential_skips.values()),
                                                 reasons=self._reasons(report, report.credential_skips)))
        if options["verbosity"] >= 2:
            for table, legacy_id, reason in report.skipped_rows:
                write(f"    {table} {legacy_id}: {report.label(reason)}")
        if not report.accounted():
            raise CommandError(_("Some legacy rows are not accounted for; see the log."))
        write(ngettext("Every legacy row is accounted for ({n} batch).",
                       "Every legacy row is accounted for ({n} batches).", report.batches).format(n=report.batches))

    @staticmethod
    def _reasons(report, skips):
        if not skips:
            return ""
        return " (" + "; ".join(f"{report.label(reason)}: {n}" for reason, n in sorted(skips.items())) + ")"
