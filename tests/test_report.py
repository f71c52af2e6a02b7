"""
The CSV report of credentials: ``pok_report`` and the credential admin's export actions. What staff get (columns,
no emails unless asked for, safe cells), that it streams (pages of rows, usernames per page, memory flat in the
number of rows) and that only staff get it.
"""
import codecs
import csv
import io
import tracemalloc

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.contrib.messages.storage.fallback import FallbackStorage
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from opaque_keys.edx.keys import CourseKey

from lms_sandbox.factories import CourseOverviewFactory, UserFactory
from openedx_pok.admin.credentials import PokCertificateAdmin
from openedx_pok.issuance import csv_report as report
from openedx_pok.models import CredentialStatus, PokCertificate
from pok_simulator import Fault
from test_utils.factories import CredentialFactory

pytestmark = pytest.mark.django_db

HEADER = ["learner id", "username", "course", "status", "POK state", "POK id", "view URL", "emitted date",
          "attempts", "reason"]


def rows_of(text):
    return list(csv.reader(io.StringIO(text)))


def report_command(*args):
    out = io.StringIO()
    call_command("pok_report", *args, stdout=out, stderr=io.StringIO())
    return rows_of(out.getvalue())


def test_report_of_a_course_through_the_real_flow(pok, course, learner, lms):
    lms.award(learner, course)
    refused = UserFactory(profile__name="Grace Hopper")
    pok.add_fault(Fault("status", endpoint="issue_credential", status=400, times=1))
    lms.award(refused, course)
    elsewhere = CredentialFactory(emitted=True)  # another course: not in this report

    table = report_command("--course", str(course.id))

    assert table[0] == HEADER
    by_user = {int(line[0]): line for line in table[1:]}
    assert set(by_user) == {learner.id, refused.id}
    emitted = PokCertificate.objects.get(user=learner)
    assert by_user[learner.id] == [
        str(learner.id), learner.username, str(course.id), "emitted", "emitted", emitted.pok_credential_id,
        emitted.view_url, emitted.emission_date.isoformat(), "1", "",
    ]
    failed = by_user[refused.id]
    assert failed[3] == "failed" and failed[7] == "" and "POK refused the credential" in failed[9]
    assert str(elsewhere.user_id) not in by_user
    text = "\n".join(",".join(line) for line in table)
    assert learner.email not in text and refused.email not in text  # no emails without the flag


def test_emails_only_with_the_explicit_flag(course, learner):
    CredentialFactory(user=learner, course_key=course.id, emitted=True)
    table = report_command("--course", str(course.id), "--include-emails")
    assert table[0][2] == "email" and table[1][2] == learner.email


def test_output_file_and_several_courses(course, tmp_path):
    other = CourseOverviewFactory()
    CredentialFactory.create_batch(3, course_key=course.id, held=True)
    CredentialFactory(course_key=other.id)
    target = tmp_path / "report.csv"
    err = io.StringIO()
    call_command("pok_report", "--course", str(course.id), str(other.id), "--output", str(target), stderr=err)
    table = rows_of(target.read_text(encoding="utf-8"))
    assert len(table) == 5 and {line[2] for line in table[1:]} == {str(course.id), str(other.id)}
    assert "4 credentials written to" in err.getvalue()
    assert not target.read_bytes().startswith(codecs.BOM_UTF8)  # plain UTF-8 unless --excel


def test_excel_output_starts_with_a_byte_order_mark_and_keeps_accents(course, tmp_path):
    CredentialFactory(user=UserFactory(username="josé"), course_key=course.id, emitted=True)
    target = tmp_path / "report.csv"
    call_command("pok_report", "--course", str(course.id), "--output", str(target), "--excel", stderr=io.StringIO())
    data = target.read_bytes()
    assert data.startswith(codecs.BOM_UTF8) and data.count(codecs.BOM_UTF8) == 1
    table = rows_of(data.decode("utf-8-sig"))
    assert table[0] == HEADER and table[1][1] == "josé"
    out = io.StringIO()
    call_command("pok_report", "--course", str(course.id), "--excel", stdout=out)
    assert out.getvalue().startswith("\ufeff" + ",".join(HEADER))


@pytest.mark.parametrize(("args", "message"), [
    (("--course", "not-a-course"), "is not a course key"),
    ((), "the following arguments are required: --course"),
    (("--course", "course-v1:X+Y+Z", "--output", "/nonexistent/dir/report.csv"), "Cannot write"),
])
def test_bad_input_is_a_clear_error(db, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("pok_report", *args, stdout=io.StringIO(), stderr=io.StringIO())


def test_cells_a_spreadsheet_would_run_are_kept_as_text(course):
    user = UserFactory(username="=HYPERLINK(evil)")
    CredentialFactory(user=user, course_key=course.id, held=True, status_reason="+cmd|' /C calc'!A0")
    line = report_command("--course", str(course.id))[1]
    assert line[1] == "'=HYPERLINK(evil)" and line[9] == "'+cmd|' /C calc'!A0"


def test_streams_a_page_at_a_time_with_usernames_per_page(course):
    users = UserFactory.create_batch(5)
    for user in users:
        CredentialFactory(user=user, course_key=course.id)
    lines = report.credentials_csv(course_keys=[course.id], chunk_size=2)
    with CaptureQueriesContext(connection) as captured:
        header = next(lines)
        assert len(captured.captured_queries) == 0  # nothing read for the header
        next(lines)
        assert len(captured.captured_queries) == 2  # the first page, and its learners' usernames
        rest = list(lines)
    assert len(rest) == 4 and header.startswith("learner id,")
    sql = [query["sql"].replace('"', "").replace("`", "") for query in captured.captured_queries]  # either quoting
    pages = [statement for statement in sql if "FROM openedx_pok_credential" in statement]
    assert len(pages) == 3 and all("LIMIT 2" in page and "OFFSET" not in page for page in pages)
    assert all("auth_user" not in page for page in pages)  # no join over all users
    assert len(sql) == 6


def _bulk_credentials(learners, course_keys):
    """A credential for each of ``learners`` new learners in each course, inserted in bulk (a large report, quickly)."""
    User = get_user_model()
    prefix = f"bulk{User.objects.count()}x"
    User.objects.bulk_create([User(username=f"{prefix}{n}", email=f"{prefix}{n}@example.com")
                              for n in range(learners)], batch_size=5000)
    ids = list(User.objects.filter(username__startswith=prefix).values_list("id", flat=True))
    for index, course_key in enumerate(course_keys):
        PokCertificate.objects.bulk_create(
            [PokCertificate(user_id=user_id, course_key=course_key, status=CredentialStatus.EMITTED,
                            pok_state="emitted", pok_credential_id=f"pok-{index}-{user_id}",
                            view_url=f"https://pok.tech/view/pok-{index}-{user_id}", status_reason="x" * 200)
             for user_id in ids], batch_size=5000)


def _courses(count):
    return [CourseKey.from_string(f"course-v1:BigX+B{n}+2026") for n in range(count)]


def _peak_memory_of_a_full_export(course_keys):
    tracemalloc.start()
    try:
        lines = sum(1 for _line in report.credentials_csv(course_keys=course_keys))
        return lines, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_stays_flat_in_the_number_of_rows(db):
    small, large = _courses(1), _courses(11)[1:]
    _bulk_credentials(2_000, small + large)  # 2,000 rows in the small report, 20,000 in the large one
    small_lines, small_peak = _peak_memory_of_a_full_export(small)
    large_lines, large_peak = _peak_memory_of_a_full_export(large)
    assert (small_lines, large_lines) == (2_001, 20_001)
    # Ten times the rows, about the same memory: one page of 2,000 rows at a time, whatever the total.
    assert large_peak < 1.5 * small_peak + 1_000_000, (small_peak, large_peak)


def _copy_to_courses(source, targets):
    """MariaDB: copy the source course's credentials to other courses in one INSERT ... SELECT each (fast)."""
    table = PokCertificate._meta.db_table
    columns = [field.column for field in PokCertificate._meta.concrete_fields if field.column != "id"]
    # The placeholders come in column order: course_key is before pok_credential_id in the model.
    picked = {"uuid": "REPLACE(UUID(), '-', '')", "course_key": "%s",
              "pok_credential_id": "CONCAT(pok_credential_id, %s)"}
    select = ", ".join(picked.get(column, column) for column in columns)
    with connection.cursor() as cursor:
        for index, target in enumerate(targets):
            cursor.execute(f"INSERT INTO {table} ({', '.join(columns)}) SELECT {select} FROM {table} "  # noqa: S608
                           "WHERE course_key = %s", [str(target), f"-{index}", str(source)])


@pytest.mark.mysql
def test_a_hundred_thousand_rows_stream_on_mariadb(db):
    """MariaDB's drivers buffer whole result sets: the keyset pages are what keeps this flat."""
    courses = _courses(20)
    _bulk_credentials(5_000, courses[:1])
    _copy_to_courses(courses[0], courses[1:])
    lines, peak = _peak_memory_of_a_full_export(courses)
    assert lines == 100_001
    assert peak < 40_000_000, peak  # all rows at once would take several hundred MB


# --- the admin export ------------------------------------------------------------------------------------------------

@pytest.fixture
def boss(client):
    client.force_login(get_user_model().objects.create_superuser("boss", "boss@example.com", "pw"))
    return client


def _export(client, action, **data):
    return client.post(reverse("admin:openedx_pok_pokcertificate_changelist") + data.pop("query", ""),
                       {"action": action, **data})


def test_admin_exports_the_selection_as_a_streamed_csv(boss, course):
    chosen = CredentialFactory(course_key=course.id, emitted=True)
    CredentialFactory(course_key=course.id, emitted=True)
    response = _export(boss, "export_csv", _selected_action=[chosen.id])
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="pok-credentials-')
    body = b"".join(response.streaming_content)
    assert body.startswith(codecs.BOM_UTF8)  # a download is opened in a spreadsheet: Excel needs the mark for UTF-8
    table = rows_of(body.decode("utf-8-sig"))
    assert table[0] == HEADER and [line[0] for line in table[1:]] == [str(chosen.user_id)]
    assert chosen.user.email not in str(table)


def test_admin_exports_everything_the_filter_matches(boss, course):
    held = CredentialFactory.create_batch(3, course_key=course.id, held=True)
    CredentialFactory(course_key=course.id, emitted=True)
    response = _export(boss, "export_csv", query="?status=held", select_across="1",
                       _selected_action=[held[0].id])
    table = rows_of(b"".join(response.streaming_content).decode("utf-8-sig"))
    assert sorted(int(line[0]) for line in table[1:]) == sorted(row.user_id for row in held)


def test_admin_export_with_emails_needs_its_own_action_and_the_change_permission(client, course):
    row = CredentialFactory(course_key=course.id, emitted=True)
    response = _export_as_boss(client, "export_csv_with_emails", row)
    table = rows_of(b"".join(response.streaming_content).decode("utf-8-sig"))
    assert table[0][2] == "email" and table[1][2] == row.user.email

    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_pokcertificate"))
    client.force_login(viewer)
    allowed = _export(client, "export_csv", _selected_action=[row.id])
    assert allowed.streaming and row.user.email.encode() not in b"".join(allowed.streaming_content)
    refused = _export(client, "export_csv_with_emails", _selected_action=[row.id])
    assert not refused.streaming  # the action is not offered to a view-only staff member


def _export_as_boss(client, action, row):
    client.force_login(get_user_model().objects.create_superuser("chief", "chief@example.com", "pw"))
    return _export(client, action, _selected_action=[row.id])


def test_export_refuses_a_user_without_staff_status(course):
    """The explicit check, for a user who holds the permissions but not staff status (the admin site checks too)."""
    row = CredentialFactory(course_key=course.id, emitted=True)
    request = RequestFactory().post("/")
    request.user = UserFactory(is_staff=False, is_superuser=True)
    request.session = {}
    request._messages = FallbackStorage(request)  # noqa: SLF001 - what the messages middleware sets
    model_admin = PokCertificateAdmin(PokCertificate, admin.site)
    assert model_admin.export_csv(request, PokCertificate.objects.filter(id=row.id)) is None
    assert [str(message) for message in request._messages] == ["Only staff can export credentials."]  # noqa: SLF001


def test_a_sliced_queryset_is_exported_too(course):
    rows = CredentialFactory.create_batch(4, course_key=course.id)
    lines = list(report.credentials_csv(PokCertificate.objects.order_by("id")[:3], chunk_size=2))
    assert [line.split(",")[0] for line in lines[1:]] == [str(row.user_id) for row in rows[:3]]
