"""
The CSV report of credentials, for staff: the admin's export action and ``manage.py lms pok_report``.

It streams. Credentials are read in keyset pages of ``CHUNK_SIZE`` (``openedx_pok.keyset``), as plain values, and
the usernames of each page are fetched in one query of their own, so 100,000 rows never sit in memory together and
no query joins the user table over all of them. Emails leave only when the caller asks for them explicitly.
"""
import csv
from datetime import datetime

from django.contrib.auth import get_user_model
from django.http import StreamingHttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _

from openedx_pok.issuance.states import CredentialStatus
from openedx_pok.keyset import keyset_pages
from openedx_pok.models import PokCertificate

CHUNK_SIZE = 2000
_FIELDS = ("id", "user_id", "course_key", "status", "pok_state", "pok_credential_id", "view_url", "emission_date",
           "attempts", "status_reason")
# A cell starting with one of these is a formula to a spreadsheet (CSV injection): reasons and POK's states are text
# from outside, so such cells get a leading apostrophe, which spreadsheets show as text.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Excel reads a CSV file as the system's legacy code page unless it starts with a UTF-8 byte order mark: accented
# names then show as "JosÃ©". Other spreadsheets and utf-8-sig readers accept the mark.
EXCEL_BOM = "\ufeff"


def header(include_emails=False):
    """The column titles, in the language of the request or command."""
    columns = [_("learner id"), _("username"), _("course"), _("status"), _("POK state"), _("POK id"),
               _("view URL"), _("emitted date"), _("attempts"), _("reason")]
    if include_emails:
        columns.insert(2, _("email"))
    return columns


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    text = str(value)
    return f"'{text}" if text.startswith(_FORMULA_STARTS) else text


def _chunks(queryset, size):
    """The queryset's credentials as lists of value dicts, a keyset page at a time."""
    values = queryset.values(*_FIELDS)
    if queryset.query.is_sliced:  # a slice cannot be filtered further; it is small by construction
        rows = list(values)
        for start in range(0, len(rows), size):
            yield rows[start:start + size]
        return
    yield from keyset_pages(values, size)


def _row(values, users, include_emails):
    username, email = users.get(values["user_id"], ("", ""))
    emitted = values["emission_date"] if values["status"] == CredentialStatus.EMITTED else None
    row = [values["user_id"], username, values["course_key"], values["status"], values["pok_state"],
           values["pok_credential_id"], values["view_url"], emitted, values["attempts"], values["status_reason"]]
    if include_emails:
        row.insert(2, email)
    return [_cell(value) for value in row]


class _Line:
    """A file-like object whose ``write`` hands back the line the csv writer formatted (no buffer grows)."""

    def write(self, value):
        return value


def credentials_csv(queryset=None, course_keys=(), include_emails=False, chunk_size=CHUNK_SIZE, excel=False):
    """
    The CSV lines (header first) of the credentials in ``queryset``, or else of the courses ``course_keys``.

    An iterator: no credential is read before the first line after the header is asked for, and each page when
    the lines before it have been consumed. The header is translated at once, in the caller's language (a streamed
    response is consumed after the request's language is gone). ``include_emails`` adds the learners' emails, an
    explicit choice of the caller; ``excel`` starts the first line with :data:`EXCEL_BOM`.
    """
    if queryset is None:
        queryset = PokCertificate.objects.filter(course_key__in=list(course_keys))
    return _lines(queryset, header(include_emails), include_emails, chunk_size, EXCEL_BOM if excel else "")


def _lines(queryset, titles, include_emails, chunk_size, prefix):
    writer = csv.writer(_Line())
    yield prefix + writer.writerow(titles)
    users = get_user_model().objects
    for chunk in _chunks(queryset, chunk_size):
        found = users.filter(id__in={values["user_id"] for values in chunk}).values_list("id", "username", "email")
        known = {user_id: (username, email) for user_id, username, email in found}
        for values in chunk:
            yield writer.writerow(_row(values, known, include_emails))
        del chunk, found, known, values  # before the next page is read (see _chunks)


def csv_response(queryset, include_emails=False):
    """
    A streaming download of :func:`credentials_csv` (the admin export).

    A download is opened by a person, most often in a spreadsheet, so it carries the BOM Excel needs to read UTF-8.
    """
    response = StreamingHttpResponse(credentials_csv(queryset, include_emails=include_emails, excel=True),
                                     content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="pok-credentials-{timezone.now():%Y%m%d-%H%M%S}.csv"'
    return response
