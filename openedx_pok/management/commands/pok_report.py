"""
``manage.py lms pok_report --course KEY [--course KEY ...] [--output FILE] [--include-emails] [--excel]``: the
credentials of courses as CSV (learner id, username, course, status, POK state, POK id, view URL, emitted date,
attempts, reason).

Streamed line by line to the file or standard output, so a course with 100,000 learners does not sit in memory.
Emails are added only with ``--include-emails``: a report is easily forwarded, a learner's email should not be.
The CSV is UTF-8; ``--excel`` starts it with a byte order mark, without which Excel garbles accented names.
"""
from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from openedx_pok import api
from openedx_pok.issuance import csv_report


class Command(BaseCommand):
    help = gettext_lazy("Export the POK credentials of courses as CSV.")

    def add_arguments(self, parser):
        parser.add_argument("--course", nargs="+", action="extend", required=True, metavar="KEY",
                            help=_("Course run keys whose credentials are exported."))
        parser.add_argument("--output", metavar="FILE", help=_("Write the CSV to this file instead of the output."))
        parser.add_argument("--include-emails", action="store_true", help=_("Add the learners' email addresses."))
        parser.add_argument("--excel", action="store_true",
                            help=_("Start the UTF-8 file with a byte order mark, so that Excel shows accented names "
                                   "correctly."))

    def handle(self, *args, **options):
        course_keys = []
        for value in options["course"]:
            course_key = api.as_course_key(value)
            if course_key is None:
                raise CommandError(_("{key} is not a course key (course-v1:Org+Course+Run).").format(key=value))
            course_keys.append(course_key)
        lines = csv_report.credentials_csv(course_keys=course_keys, include_emails=options["include_emails"],
                                          excel=options["excel"])
        if not options["output"]:
            for line in lines:
                self.stdout.write(line, ending="")
            return
        try:
            with open(options["output"], "w", encoding="utf-8", newline="") as output:
                count = -1  # the header is not a credential
                for line in lines:
                    output.write(line)
                    count += 1
        except OSError as exc:
            raise CommandError(_("Cannot write {file}: {error}").format(file=options["output"],
                                                                        error=exc.strerror)) from None
        self.stderr.write(_("{count} credentials written to {file}.").format(count=count, file=options["output"]))
