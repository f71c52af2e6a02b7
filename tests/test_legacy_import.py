"""
The upgrade from the earlier openedx-pok (PyPI 21.0.1 and 22.0.0): ``migrate`` and ``pok_import_legacy`` import its
course templates and credentials, on databases whose schema and rows the published packages themselves produced.

The legacy tables come from ``tests/legacy/fixtures`` (made by ``make legacy-fixtures``: the packages' own migrations
and their own row-writing code, on SQLite and on MariaDB); each test loads the dump of its database engine next to
this plugin's tables, exactly what an LMS has after ``pip install`` over the earlier plugin. The earlier course flag
``module_pok.enable`` is a django-waffle ``Flag`` row with course and organization override rows, read through the
sandbox's platform door with the platform backend's own logic.
"""
import json
import operator
import sys
import types
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import DatabaseError, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from opaque_keys.edx.keys import CourseKey
from waffle.models import Flag

from lms_sandbox import retirement as lms_retirement
from lms_sandbox.factories import UserFactory
from lms_sandbox.models import WaffleFlagCourseOverrideModel, WaffleFlagOrgOverrideModel
from openedx_pok import api, compat, lms_tables
from openedx_pok.issuance import retirement
from openedx_pok.issuance.states import PublicStatus, new_issuance_fields, transition
from openedx_pok.models import CertificateTemplate, CredentialEvent, CredentialStatus, PokCertificate
from tests import legacy
from tests.legacy import build

MAPPED = CourseKey.from_string("course-v1:LegacyX+MAPPED+2025")
CHAIN = CourseKey.from_string("course-v1:LegacyX+CHAIN+2025")
NO_CREDENTIALS = CourseKey.from_string("course-v1:OtherU+NOCREDS+2025")
FLAG_ONLY = CourseKey.from_string("course-v1:OtherU+FLAGONLY+2025")
# The earlier flag as an operator had it: on for two courses and for organization OtherU, off for one OtherU course.
FLAG = {"everyone": False, "courses": {MAPPED: "on", CHAIN: "on", NO_CREDENTIALS: "off"}, "orgs": {"OtherU": "on"}}
BEFORE = "1003_credential_reliability"  # the migration before the import
# (learner, course) -> expected local status, for every legacy row that is importable.
EXPECTED = {
    ("emitted", MAPPED): CredentialStatus.EMITTED,
    ("emitted", CHAIN): CredentialStatus.EMITTED,
    ("emitted-no-url", MAPPED): CredentialStatus.IN_PROGRESS,
    ("processing", MAPPED): CredentialStatus.IN_PROGRESS,
    ("waiting", CHAIN): CredentialStatus.IN_PROGRESS,
    ("aborted", CHAIN): CredentialStatus.FAILED,
    ("rejected", CHAIN): CredentialStatus.FAILED,
    ("revoked", MAPPED): CredentialStatus.REVOKED,
    ("unknown-state", FLAG_ONLY): CredentialStatus.IN_PROGRESS,
    ("unsafe-url", CHAIN): CredentialStatus.IN_PROGRESS,
    ("foreign-host", CHAIN): CredentialStatus.IN_PROGRESS,
    ("flag-only", FLAG_ONLY): CredentialStatus.EMITTED,
    ("no-pok-id", MAPPED): CredentialStatus.PENDING,
    ("no-pok-id-chain", CHAIN): CredentialStatus.PENDING,
    ("user-gone", MAPPED): CredentialStatus.EMITTED,
}
LEGACY_ROWS = len(EXPECTED) + 2  # plus a duplicate POK id and an invalid course key


@pytest.fixture(params=legacy.VERSIONS)
def version(request):
    return request.param


@pytest.fixture
def legacy_db(transactional_db, version):
    """This plugin migrated up to just before the import, with the earlier plugin's tables and rows beside it."""
    set_flag(**FLAG)
    call_command("migrate", "openedx_pok", BEFORE, verbosity=0)
    dump = legacy.load(connection, version)
    yield dump
    legacy.unload(connection, dump)
    call_command("migrate", "openedx_pok", verbosity=0)


@pytest.fixture
def one_version(transactional_db):
    """
    The earlier plugin's tables and rows (latest version) beside this plugin's fully migrated schema, as an LMS
    has them when an operator runs ``pok_import_legacy``: for the import's behaviour, not for ``migrate``.
    """
    set_flag(**FLAG)
    call_command("migrate", "openedx_pok", verbosity=0)
    dump = legacy.load(connection, legacy.VERSIONS[-1])
    yield dump
    legacy.unload(connection, dump)
    call_command("migrate", "openedx_pok", verbosity=0)


def set_flag(everyone, courses=None, orgs=None, **rollout):
    """``module_pok.enable`` in the waffle tables: the Flag row, then an enabled override row per course and org."""
    Flag.objects.update_or_create(name="module_pok.enable", defaults={"everyone": everyone, **rollout})
    for course_id, choice in (courses or {}).items():
        WaffleFlagCourseOverrideModel.objects.create(waffle_flag="module_pok.enable", course_id=course_id,
                                                     override_choice=choice, enabled=True)
    for org, choice in (orgs or {}).items():
        WaffleFlagOrgOverrideModel.objects.create(waffle_flag="module_pok.enable", org=org, override_choice=choice,
                                                  enabled=True)


def credential(label, course):
    return PokCertificate.objects.filter(user__username=f"legacy-{label}", course_key=course).first()


def statuses():
    # Only these columns: after migrating back before the import, later migrations' columns do not exist.
    return {(username.removeprefix("legacy-"), course_key): status
            for username, course_key, status in PokCertificate.objects.values_list("user__username", "course_key",
                                                                                  "status")}


def run_command(*args):
    out = StringIO()
    call_command("pok_import_legacy", *args, stdout=out)
    return out.getvalue()


def test_migrate_imports_the_earlier_plugins_data(legacy_db, version):
    untouched = {table: legacy.legacy_rows(connection, table) for table in legacy.LEGACY_TABLES}
    call_command("migrate", "openedx_pok", verbosity=0)

    assert legacy_db["version"] == version
    assert statuses() == EXPECTED
    emitted = credential("emitted", MAPPED)
    assert emitted.pok_credential_id == "pok-emitted"
    assert emitted.view_url == "https://app.pok.tech/credential/pok-emitted"
    assert api.public_status(emitted) == PublicStatus.EMITTED
    assert (emitted.template_id, emitted.page_id, emitted.emission_type) == ("tpl-legacy-mapped", "page-legacy", "pok")
    assert (emitted.title, emitted.emitter, emitted.tags) == ("Legacy course", "Legacy University",
                                                              ["legacy", "pok-emitted"])
    assert emitted.receiver == {"name": "legacy-emitted", "email": "legacy-emitted@example.com"}
    assert emitted.emission_date == datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
    assert emitted.attempts == 1 and emitted.status_reason == ""
    second = credential("emitted", CHAIN)
    assert (second.pok_credential_id, second.emission_type) == ("pok-second-course", "blockchain")
    assert second.view_url == "https://app.pok.tech/credential/pok-second"
    assert credential("flag-only", FLAG_ONLY).template_id == ""  # the course used the default template
    for label, course in (("emitted-no-url", MAPPED), ("unsafe-url", CHAIN), ("foreign-host", CHAIN)):
        row = credential(label, course)
        assert (row.pok_state, row.view_url) == ("emitted", ""), label
        assert "web page" in row.status_reason
    assert credential("waiting", CHAIN).pok_state == "waitingForApproval"
    assert credential("processing", MAPPED).pok_state == "processing"
    assert credential("unknown-state", FLAG_ONLY).pok_state == "someFutureState"
    aborted = credential("aborted", CHAIN)
    assert aborted.pok_credential_id == "pok-aborted" and "aborted" in aborted.status_reason
    for label, course in (("no-pok-id", MAPPED), ("no-pok-id-chain", CHAIN)):
        pending = credential(label, course)
        assert pending.pok_credential_id is None and pending.attempts == 0 and pending.status_reason
    assert not PokCertificate.objects.filter(user__username__in=["legacy-duplicate-pok-id", "legacy-invalid-course"])

    mappings = {(m.organization, str(m.course_key or "")): (m.template_id, m.emission_type, m.page_id, m.enabled)
                for m in CertificateTemplate.objects.all()}
    assert mappings == {
        ("LegacyX", str(MAPPED)): ("tpl-legacy-mapped", "pok", "page-legacy", True),
        ("LegacyX", str(CHAIN)): ("tpl-legacy-chain", "blockchain", "", True),
        ("OtherU", str(NO_CREDENTIALS)): ("tpl-legacy-other", "pok", "", False),  # forced off by the flag
        ("OtherU", ""): ("", "pok", "", True),  # the flag's organization override
    }
    assert [api.is_pok_enabled(key) for key in (MAPPED, CHAIN, FLAG_ONLY, NO_CREDENTIALS)] == [True] * 3 + [False]
    assert {table: legacy.legacy_rows(connection, table) for table in legacy.LEGACY_TABLES} == untouched

    # Backwards is a no-op, and forwards again imports nothing twice.
    call_command("migrate", "openedx_pok", BEFORE, verbosity=0)
    assert statuses() == EXPECTED
    call_command("migrate", "openedx_pok", verbosity=0)
    assert statuses() == EXPECTED and CertificateTemplate.objects.count() == 4


@pytest.fixture
def migrated_with_legacy_data(transactional_db, version):
    """``one_version`` for each published version."""
    set_flag(**FLAG)
    call_command("migrate", "openedx_pok", verbosity=0)
    dump = legacy.load(connection, version)
    yield dump
    legacy.unload(connection, dump)


def test_command_counts_every_row_and_a_second_run_imports_nothing(migrated_with_legacy_data):
    first = run_command()
    assert "Course mappings, from 4 legacy templates:" in first
    assert "imported: 2 enabled, 1 disabled" in first
    assert "skipped: 1 (the course key is not valid: 1)" in first
    assert "1 organization defaults, 0 courses on, 0 courses off" in first
    assert f"Credentials, from {LEGACY_ROWS} legacy rows:" in first
    assert "  imported: 15\n" in first
    for label, count in (("Emitted", 4), ("In progress", 6), ("Failed", 2), ("Revoked", 1), ("Pending", 2)):
        assert f"    {label}: {count}\n" in first
    assert "the next reconcile sends them): 2" in first
    assert ("skipped: 2 (another credential already has this POK credential id: 1; "
            "the course key is not valid: 1)") in first
    assert "Every legacy row is accounted for" in first
    assert statuses() == EXPECTED

    second = run_command()
    assert "  imported: 15\n" not in second and "  imported: 0\n" in second
    assert "  already present: 15\n" in second and "imported: 0 enabled, 0 disabled" in second
    assert statuses() == EXPECTED and CertificateTemplate.objects.count() == 4


def test_rows_already_there_are_kept_adopted_or_protected(one_version):
    user_model = get_user_model()
    processing = user_model.objects.get(username="legacy-processing")
    waiting = user_model.objects.get(username="legacy-waiting")
    CertificateTemplate.objects.create(course_key=MAPPED, template_id="tpl-chosen-since")
    # Already imported earlier (same POK id), a credential of ours never sent, a POK id another learner holds.
    PokCertificate.objects.create(user=processing, course_key=MAPPED, pok_credential_id="pok-processing",
                                  status=CredentialStatus.EMITTED, view_url="https://app.pok.tech/c/1")
    unsent = PokCertificate.objects.create(user=waiting, course_key=CHAIN, status=CredentialStatus.PENDING)
    PokCertificate.objects.create(user=UserFactory(), course_key=CHAIN, pok_credential_id="pok-aborted")

    report = api.import_legacy()
    assert report.accounted()
    assert report.mappings["present"] == 1 and report.mappings["imported"] == 1
    assert CertificateTemplate.objects.get(course_key=MAPPED).template_id == "tpl-chosen-since"
    assert (report.present, report.adopted, sum(report.imported.values())) == (1, 1, 12)
    assert report.credential_skips == {"duplicate_pok_id": 2, "invalid_course_key": 1}
    assert credential("processing", MAPPED).status == CredentialStatus.EMITTED  # ours, untouched
    unsent.refresh_from_db()
    assert (unsent.status, unsent.pok_credential_id, unsent.pok_state) == (
        CredentialStatus.IN_PROGRESS, "pok-waiting", "waitingForApproval")  # will not be sent a second time
    assert credential("aborted", CHAIN) is None
    rows = PokCertificate.objects.count()

    again = api.import_legacy()
    assert (sum(again.imported.values()), again.adopted, again.present) == (0, 0, 14)
    assert again.credential_skips == report.credential_skips and again.accounted()
    assert PokCertificate.objects.count() == rows


def test_dry_run_writes_nothing_and_counts_like_a_real_run(one_version):
    out = run_command("--dry-run")
    assert out.startswith("Dry run: nothing was written")
    assert "  imported: 15\n" in out
    assert PokCertificate.objects.count() == 0 and CertificateTemplate.objects.count() == 0

    dry = api.import_legacy(dry_run=True)
    real = api.import_legacy(batch_size=4)  # pages of 4: keyset paging gives the same result
    assert (dry.imported, dry.present, dry.credential_skips, dry.mappings, dry.mapping_skips) == (
        real.imported, real.present, real.credential_skips, real.mappings, real.mapping_skips)
    assert real.batches == 5 and real.accounted()
    assert statuses() == EXPECTED


@pytest.mark.parametrize("dry_run, on_ours", [(True, 2), (False, 4)])
def test_queries_per_batch_do_not_grow_with_the_rows(one_version, dry_run, on_ours):
    """
    A page of legacy rows costs its keyset read, one lookup of the learners and of their legacy rows and, on this
    plugin's credential table, two set-based lookups (same learner and course, same POK id), plus one INSERT and one
    read-back when writing.
    """
    with CaptureQueriesContext(connection) as captured:
        report = api.import_legacy(dry_run=dry_run, batch_size=3)
    assert report.batches == 6  # 17 rows by 3

    def count(table, condition=""):
        quoted = connection.ops.quote_name(table)
        return sum(1 for q in captured.captured_queries
                   if f"FROM {quoted}{condition}" in q["sql"] or f"INTO {quoted}" in q["sql"])

    # One keyset read per page of the legacy table, plus the empty page that ends the paging.
    assert count("openedx_pok_pokcertificate", f" WHERE {connection.ops.quote_name('id')} >") == report.batches + 1
    assert count("openedx_pok_pokcertificate", f" WHERE {connection.ops.quote_name('user_id')} IN") == report.batches
    assert count("auth_user") == report.batches
    assert count("openedx_pok_credential") == on_ours * report.batches


def test_a_learner_gone_from_the_lms_is_skipped_with_the_reason(one_version):
    gone = get_user_model().objects.get(username="legacy-user-gone")
    with connection.constraint_checks_disabled(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM auth_user WHERE id = %s", [gone.id])
    out = run_command("-v", "2")
    assert "the learner does not exist in Open edX: 1" in out
    legacy_id = next(row[0] for row in one_version["tables"]["openedx_pok_pokcertificate"]["rows"]
                     if row[one_version["tables"]["openedx_pok_pokcertificate"]["columns"].index("user_id")] == gone.id)
    assert f"openedx_pok_pokcertificate {legacy_id}: the learner does not exist in Open edX" in out
    assert "  imported: 14\n" in out and "Every legacy row is accounted for" in out


@pytest.mark.parametrize("everyone", [True, None])
def test_the_flag_for_everyone_or_for_some_users(one_version, everyone):
    WaffleFlagCourseOverrideModel.objects.all().delete()
    WaffleFlagOrgOverrideModel.objects.all().delete()
    set_flag(everyone, percent=None if everyone else 50)  # None: rolled out to half of the users
    report = api.import_legacy()
    enabled = dict(CertificateTemplate.objects.values_list("template_id", "enabled"))
    if everyone:
        # On for everyone: every course that had a template, and a default for each organization seen.
        assert enabled == {"tpl-legacy-mapped": True, "tpl-legacy-chain": True, "tpl-legacy-other": True, "": True}
        assert report.mappings["flag_organization"] == 2
        assert api.is_pok_enabled(FLAG_ONLY) and api.is_pok_enabled(CourseKey.from_string("course-v1:LegacyX+N+1"))
    else:
        # A rollout to some users cannot be a course decision: nothing is switched on, and the report says why.
        assert report.flag_partial and set(enabled.values()) == {False}
        assert not api.is_pok_enabled(MAPPED)
    assert statuses() == EXPECTED


def test_a_fresh_install_is_a_no_op(transactional_db):
    assert "openedx_pok_pokcertificate" not in connection.introspection.table_names()
    assert not api.import_legacy().found
    assert "nothing to import" in run_command()
    call_command("migrate", "openedx_pok", BEFORE, verbosity=0)
    call_command("migrate", "openedx_pok", verbosity=0)
    assert PokCertificate.objects.count() == 0 and CertificateTemplate.objects.count() == 0


def test_values_longer_than_our_columns_are_skipped_not_truncated(one_version):
    """INSERT IGNORE on MySQL would cut a 300-character template id (the legacy column) to 255 without a word."""
    with connection.cursor() as cursor:
        cursor.execute("UPDATE openedx_pok_certificatetemplate SET template_id = %s WHERE course_id = %s",
                       ["t" * 300, str(CHAIN)])
        cursor.execute("UPDATE openedx_pok_pokcertificate SET title = %s WHERE pok_certificate_id = %s",
                       ["x" * 255, "pok-rejected"])
    report = api.import_legacy()
    assert report.mapping_skips == {"invalid_course_key": 1, "value_too_long": 1}
    assert not CertificateTemplate.objects.filter(course_key=CHAIN).exists()
    assert credential("emitted", CHAIN).template_id == ""  # informational only; issuance uses the mapping
    assert credential("rejected", CHAIN).title == "x" * 255 and report.accounted()


@pytest.mark.mysql
def test_mariadb_runs_the_import_on_the_legacy_innodb_tables(legacy_db):
    """On MariaDB the legacy tables are the package's InnoDB tables, foreign keys to auth_user included."""
    assert connection.vendor == "mysql", "run with POK_TEST_DB=mysql (needs MariaDB on 127.0.0.1:3306)"
    assert legacy_db["engine"] == "mysql"
    with connection.cursor() as cursor:
        cursor.execute("SHOW CREATE TABLE openedx_pok_pokcertificate")
        ddl = cursor.fetchone()[1]
    assert "ENGINE=InnoDB" in ddl and "REFERENCES `auth_user` (`id`)" in ddl
    call_command("migrate", "openedx_pok", verbosity=0)
    assert statuses() == EXPECTED


@pytest.mark.parametrize("version", legacy.VERSIONS)
def test_the_fixtures_are_what_the_published_packages_produce(version, tmp_path):
    """
    Regenerate this engine's dump with the published package (its venv is cached under var/legacy/, built with pip on
    the first run) and compare: the committed fixture is the package's output, not a hand-edited imitation.
    """
    engine = "mysql" if connection.vendor == "mysql" else "sqlite"
    committed = legacy.fixture(version, connection.vendor)
    build.generate(version, engine, tmp_path / "dump.json")
    fresh = json.loads((tmp_path / "dump.json").read_text(encoding="utf-8"))
    assert (fresh["version"], fresh["engine"], fresh["django"]) == (version, committed["engine"], committed["django"])
    assert fresh["tables"] == committed["tables"] and fresh["migrations"] == committed["migrations"]
    if fresh["database"] == committed["database"]:  # the DDL text is the server's own: compare on the same server
        assert fresh["schema"] == committed["schema"]


class FakeRows:
    """Stand-in for the queries compat makes on the LMS's waffle models: filter, order_by, values_list, slices."""

    def __init__(self, rows, broken=False):
        self.rows, self.broken = rows, broken

    def filter(self, **equal):
        if self.broken:
            raise DatabaseError("no such table")
        return FakeRows([row for row in self.rows if all(row[k] == v for k, v in equal.items())])

    def order_by(self, *keys):
        rows = list(self.rows)
        for key in reversed(keys):
            rows.sort(key=operator.itemgetter(key.lstrip("-")), reverse=key.startswith("-"))
        return FakeRows(rows)

    def values_list(self, *names):
        return [tuple(row[name] for name in names) for row in self.rows]

    def __getitem__(self, index):
        return [types.SimpleNamespace(**row) for row in self.rows][index]


def fake_model(table, rows, broken=False):
    return type(table, (), {"objects": FakeRows(rows, broken), "_meta": types.SimpleNamespace(db_table=table)})


def override(key_field, key, choice, enabled, when, flag="module_pok.enable"):
    return {"waffle_flag": flag, key_field: key, "override_choice": choice, "enabled": enabled, "change_date": when,
            "id": when}


def install_waffle(monkeypatch, flag_rows, course_rows, org_rows=None, broken_courses=False):
    """The LMS modules the platform backend imports, as stand-ins (the only platform code stubbed)."""
    for name in ("openedx", "openedx.core", "openedx.core.djangoapps", "openedx.core.djangoapps.waffle_utils"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    models = types.ModuleType("openedx.core.djangoapps.waffle_utils.models")
    models.WaffleFlagCourseOverrideModel = fake_model("waffle_utils_waffleflagcourseoverridemodel", course_rows,
                                                      broken_courses)
    if org_rows is not None:  # the organization overrides exist on newer platforms only
        models.WaffleFlagOrgOverrideModel = fake_model("waffle_utils_waffleflagorgoverridemodel", org_rows)
    sys.modules["openedx.core.djangoapps.waffle_utils"].models = models
    monkeypatch.setitem(sys.modules, "openedx.core.djangoapps.waffle_utils.models", models)
    waffle = types.ModuleType("waffle")
    waffle.get_waffle_flag_model = lambda: fake_model("waffle_flag", flag_rows)
    monkeypatch.setitem(sys.modules, "waffle", waffle)


def flag_row(everyone, percent=None):
    nobody = types.SimpleNamespace(exists=lambda: False)
    return {"name": "module_pok.enable", "everyone": everyone, "percent": percent, "staff": False,
            "authenticated": False, "testing": False, "rollout": False, "languages": "", "superusers": True,
            "users": nobody, "groups": nobody}


@pytest.mark.django_db
def test_the_platform_backend_reads_the_flag_like_course_waffle_flag(monkeypatch, settings):
    settings.POK_COMPAT_BACKEND = compat.DEFAULT_BACKEND
    install_waffle(monkeypatch, [flag_row(None)], [
        override("course_id", MAPPED, "on", True, 1), override("course_id", MAPPED, "off", True, 2),  # latest: off
        override("course_id", CHAIN, "on", True, 1), override("course_id", CHAIN, "on", False, 2),  # latest disabled
        override("course_id", FLAG_ONLY, "on", True, 3),
        override("course_id", NO_CREDENTIALS, "on", True, 4, flag="another.flag"),
    ], [override("org", "OtherU", "on", True, 1)])
    state = compat.get_course_flag_state("module_pok.enable")
    assert state.everyone is False  # "unknown" with no rollout at all (superusers is waffle's default)
    assert dict(state.course_overrides) == {str(MAPPED): False, str(FLAG_ONLY): True}
    assert state.org_overrides == (("OtherU", True),)

    install_waffle(monkeypatch, [flag_row(None, percent=50)], [], org_rows=None)
    assert compat.get_course_flag_state("module_pok.enable") == lms_tables.CourseFlagState(everyone=None)

    install_waffle(monkeypatch, [flag_row(True)], [], org_rows=[], broken_courses=True)
    assert compat.get_course_flag_state("module_pok.enable") == lms_tables.CourseFlagState(everyone=True)
    install_waffle(monkeypatch, [], [], org_rows=[])
    assert compat.get_course_flag_state("module_pok.enable") == lms_tables.CourseFlagState(everyone=False)


@contextmanager
def permissive_dates():
    """
    A session that may write dates MariaDB refuses by default (``0000-00-00``, ``2025-02-30``), as an LMS database
    created under a permissive ``sql_mode`` holds them; SQLite stores any text in a datetime column.
    """
    with connection.cursor() as cursor:
        if connection.vendor != "mysql":
            yield cursor
            return
        cursor.execute("SELECT @@SESSION.sql_mode")
        mode = cursor.fetchone()[0]
        cursor.execute("SET SESSION sql_mode = 'ALLOW_INVALID_DATES'")
        try:
            yield cursor
        finally:
            cursor.execute("SET SESSION sql_mode = %s", [mode])


def set_legacy(pok_id, **values):
    with permissive_dates() as cursor:
        for column, value in values.items():
            cursor.execute(f"UPDATE openedx_pok_pokcertificate SET {column} = %s "  # noqa: S608
                           "WHERE pok_certificate_id = %s", [value, pok_id])


def add_legacy_credential(label, course, **values):
    """One more legacy row: a copy of learner ``label``'s row for ``course``, with ``values`` changed."""
    user_id = get_user_model().objects.get(username=f"legacy-{label}").id
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM openedx_pok_pokcertificate WHERE user_id = %s AND course_id = %s",
                       [user_id, str(course)])
        row = dict(zip([column[0] for column in cursor.description], cursor.fetchone(), strict=True))
        del row["id"]
        row.update(values)
        cursor.execute(f"INSERT INTO openedx_pok_pokcertificate ({', '.join(map(quote, row))}) "  # noqa: S608
                       f"VALUES ({', '.join(['%s'] * len(row))})", list(row.values()))


def test_a_row_whose_created_date_is_not_a_date_is_imported_not_lost(one_version):
    """SQLite keeps any text in a datetime column, MariaDB a zero date: the row is imported with its other date."""
    set_legacy("pok-emitted", created="not a date" if connection.vendor == "sqlite" else "0000-00-00 00:00:00")
    out = run_command()
    assert "  imported: 15\n" in out and "Every legacy row is accounted for" in out
    assert "with a legacy date that is not a date (imported with its other date or the import time): 1" in out
    emitted = credential("emitted", MAPPED)
    assert emitted.status == CredentialStatus.EMITTED and emitted.pok_credential_id == "pok-emitted"
    assert emitted.created == emitted.modified == datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
    assert statuses() == EXPECTED


def test_zero_and_impossible_dates_never_stop_migrate(legacy_db):
    """docs/decisions/0006: the earlier plugin's data never leaves an LMS upgrade stuck."""
    set_legacy("pok-emitted", created="0000-00-00 00:00:00", modified="2025-02-30 10:00:00",
               emission_date="0000-00-00 00:00:00")
    set_legacy("pok-processing", modified="0000-00-00 00:00:00", emission_date="2025-02-30 12:00:00")
    set_legacy("pok-revoked", created="2025-02-30 08:00:00")
    before = timezone.now()

    call_command("migrate", "openedx_pok", verbosity=0)

    assert statuses() == EXPECTED
    emitted = credential("emitted", MAPPED)
    assert emitted.created >= before - timedelta(seconds=1) and emitted.emission_date is None  # the import time
    processing = credential("processing", MAPPED)
    assert processing.modified == processing.created and processing.emission_date is None
    revoked = credential("revoked", MAPPED)
    assert revoked.created == revoked.modified and revoked.created.year == 2025


def test_of_one_learner_and_course_twice_the_row_that_went_furthest_wins(one_version):
    """
    The legacy unique index sees two course ids (one with a space) where the course key is one: the emitted
    credential is imported, whichever row comes first and whatever the page size; the pending one is reported.
    """
    spaced = f"{MAPPED} " if connection.vendor == "sqlite" else f" {MAPPED}"  # MariaDB pads: a trailing one is equal
    add_legacy_credential("no-pok-id", MAPPED, course_id=spaced, pok_certificate_id="pok-late", state="emitted",
                          view_url="https://app.pok.tech/credential/pok-late")
    dry = api.import_legacy(dry_run=True, batch_size=1)
    out = run_command("-v", "2")
    assert "another legacy credential of the same learner and course is imported instead: 1" in out
    assert "  imported: 15\n" in out and "Every legacy row is accounted for" in out
    late = credential("no-pok-id", MAPPED)
    assert (late.status, late.pok_credential_id) == (CredentialStatus.EMITTED, "pok-late")
    again = api.import_legacy(batch_size=2)
    assert dry.credential_skips == again.credential_skips == {
        "duplicate_course": 1, "duplicate_pok_id": 1, "invalid_course_key": 1}
    assert statuses() == EXPECTED | {("no-pok-id", MAPPED): CredentialStatus.EMITTED}


def test_a_second_run_never_undoes_what_the_plugin_did_since(one_version):
    """
    A staff re-issue whose POST failed leaves the row unsent with no POK id: the legacy credential it replaced must
    not come back on the next ``pok_import_legacy``. What a run does change (an adoption) has its history line.
    """
    api.import_legacy()
    row = credential("emitted", MAPPED)
    assert transition(row.id, CredentialStatus.EMITTED, **new_issuance_fields(row, "Re-issued"))
    assert transition(row.id, CredentialStatus.PENDING, status=CredentialStatus.FAILED, status_reason="POK refused")
    lines = CredentialEvent.objects.filter(credential_id=row.id).count()
    waiting = get_user_model().objects.get(username="legacy-waiting")
    PokCertificate.objects.filter(user=waiting).delete()
    unsent = PokCertificate.objects.create(user=waiting, course_key=CHAIN, status=CredentialStatus.PENDING)

    report = api.import_legacy()

    row.refresh_from_db()
    assert (row.status, row.pok_credential_id, row.previous_credential_ids) == (
        CredentialStatus.FAILED, None, ["pok-emitted"])
    assert CredentialEvent.objects.filter(credential_id=row.id).count() == lines
    assert report.adopted == 1 and report.accounted()
    unsent.refresh_from_db()
    assert (unsent.status, unsent.pok_credential_id) == (CredentialStatus.IN_PROGRESS, "pok-waiting")
    line = CredentialEvent.objects.get(credential_id=unsent.id)
    assert (line.from_status, line.to_status, line.pok_id) == (
        CredentialStatus.PENDING, CredentialStatus.IN_PROGRESS, "pok-waiting")
    assert "earlier openedx-pok" in line.reason


def test_learners_retired_before_the_upgrade_are_imported_without_their_data(one_version):
    """
    The LMS retired them (or they asked to be) before this plugin was installed: no retirement signal will come for
    them again, so the import leaves nothing of them, and their unsent credential is never sent.
    """
    set_legacy("pok-emitted", custom_parameters=json.dumps({"student": "legacy-emitted", "course": "Legacy 101"}))
    emitted, pending = (get_user_model().objects.get(username=f"legacy-{label}") for label in ("emitted", "no-pok-id"))
    lms_retirement.deactivate_account(emitted)
    assert lms_retirement.retire_account(emitted) == 204  # fully retired: username and e-mail replaced
    lms_retirement.deactivate_account(pending)  # asked to be: the e-mail replaced at once

    out = run_command()

    assert "of learners the LMS has retired (imported without their name and e-mail; unsent ones held): 3" in out
    rows = PokCertificate.objects.filter(user__in=[emitted, pending])
    assert {row.course_key: row.status for row in rows.filter(user=emitted)} == {
        MAPPED: CredentialStatus.EMITTED, CHAIN: CredentialStatus.EMITTED}
    assert all(row.receiver == retirement.RETIRED_RECEIVER for row in rows) and rows.count() == 3
    assert rows.get(user=emitted, course_key=MAPPED).custom_parameters == {"student": "", "course": "Legacy 101"}
    held = rows.get(user=pending)
    assert (held.status, held.status_reason) == (CredentialStatus.HELD, retirement.retired_reason())
    stored = json.dumps([list(row.values()) for row in rows.values()], default=str)
    for personal in ("legacy-emitted", "legacy-no-pok-id"):
        assert personal not in stored
