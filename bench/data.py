"""
The load data of the MariaDB benchmark: learners, courses, certificates and credentials made set-based in seconds.

Issuing 100,000 credentials through the plugin would take hours and measure the issuance, not the admin. Instead each
table is filled with one ``INSERT ... SELECT`` over MariaDB's sequence engine (``seq_<a>_to_<b>``), with the values a
real install has: most credentials emitted, a few percent in progress, pending, failed (half of them retryable), held
and revoked, 1 % flagged as possible duplicates, 10 % of the courses on blockchain emission; a reason on every row
that needs one. Learner ``n`` is user ``learner<n>`` (``learner<n>@example.com``); credential ``s`` belongs to
learner ``1 + (s - 1) % users`` in course ``1 + ((s - 1) % users + (s - 1) // users) % courses``, so every
(learner, course) pair is unique, and :func:`extend` can grow the same data set from 10,000 to 100,000 rows.

Columns this module does not know (a field added later) get the model field's default, so the builder keeps working
as the model grows; a column without a default makes the build fail loudly.

``auth_user.email`` gets the unique index the LMS has (edx-platform's student app adds it; Django does not), so an
email lookup costs what it costs in the LMS.
"""
import time

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import NOT_PROVIDED

from lms_sandbox.models import CourseOverview, GeneratedCertificate
from openedx_pok.models import CredentialStatus, EmissionType, PokCertificate

ORG = "LoadX"
OTHER_ACCOUNT = "partner"
COURSES = 100
USERS = 20000
USERNAME = "learner{n}"
EMAIL_INDEX = "pok_bench_auth_user_email"


def course_key(number):
    """The course run of course ``number`` (1-based) of the load data."""
    return f"course-v1:{ORG}+C{number}+2026"


# Per 100 credentials (s % 100): which status, and what the plugin would have written on the way there.
_BUCKET = "(s.seq % 100)"
STATUS_SQL = (
    f"CASE WHEN {_BUCKET} < 80 OR {_BUCKET} >= 97 THEN '{CredentialStatus.EMITTED}' "
    f"WHEN {_BUCKET} < 85 THEN '{CredentialStatus.IN_PROGRESS}' "
    f"WHEN {_BUCKET} < 88 THEN '{CredentialStatus.PENDING}' "
    f"WHEN {_BUCKET} < 92 THEN '{CredentialStatus.FAILED}' "
    f"WHEN {_BUCKET} < 94 THEN '{CredentialStatus.HELD}' "
    f"ELSE '{CredentialStatus.REVOKED}' END"
)
SENT = f"({_BUCKET} < 85 OR {_BUCKET} >= 94)"  # rows POK accepted: they have a POK id
REASON_SQL = (
    f"CASE WHEN {_BUCKET} IN (88, 89) THEN 'POK was unavailable (HTTP 503). The reconcile run retries it.' "
    f"WHEN {_BUCKET} IN (90, 91) THEN CONCAT('POK refused the credential: template parameter \"grade\" is "
    "missing (HTTP 400). Fix the course mapping, then retry.') "
    f"WHEN {_BUCKET} IN (92, 93) THEN 'The learner has no usable name for the credential: ask them to set a full "
    "name in their account settings, then retry.' "
    f"WHEN {_BUCKET} IN (94, 95, 96) THEN 'The Open edX certificate was revoked (invalidated by an instructor).' "
    "ELSE '' END"
)


def _user_number(seq="s.seq", users="@users"):
    return f"(1 + ({seq} - 1) % {users})"


def _course_number(seq="s.seq", users="@users", courses=COURSES):
    return f"(1 + (({seq} - 1) % {users} + ({seq} - 1) DIV {users}) % {courses})"


def _credential_columns(users):
    """Column -> SQL expression of one credential row ``s.seq`` (user ``@base + n``)."""
    user = _user_number(users=users)
    course = _course_number(users=users)
    digest = "MD5(CONCAT('pok', s.seq))"
    # UUID-shaped, as the POK ids the simulator hands out.
    pok_id = (f"IF({SENT}, CONCAT_WS('-', SUBSTR({digest}, 1, 8), SUBSTR({digest}, 9, 4), SUBSTR({digest}, 13, 4), "
              f"SUBSTR({digest}, 17, 4), SUBSTR({digest}, 21, 12)), NULL)")
    created = "(@start + INTERVAL s.seq * 5 MINUTE)"  # 100,000 rows span a year, in id order
    return {
        "created": created,
        "modified": f"({created} + INTERVAL 3 MINUTE)",
        "uuid": "UUID()",
        "user_id": f"(@base + {user})",
        "course_key": f"CONCAT('course-v1:{ORG}+C', {course}, '+2026')",
        "status": STATUS_SQL,
        "status_reason": REASON_SQL,
        "template_id": f"CONCAT('tpl-', {course})",
        "page_id": "''",
        "emission_type": f"IF({course} % 10 = 0, '{EmissionType.BLOCKCHAIN}', '{EmissionType.POK}')",
        "title": f"CONCAT('Load course ', {course})",
        "emitter": "'Load University'",
        "tags": f"JSON_ARRAY(CONCAT('course-v1:{ORG}+C', {course}, '+2026'))",
        "receiver": f"JSON_OBJECT('firstName', 'Ada', 'lastName', CONCAT('Lovelace', {user}), "
                    f"'email', CONCAT('learner', {user}, '@example.com'))",
        "custom_parameters": "JSON_OBJECT()",
        "emission_date": f"IF({SENT}, {created}, NULL)",
        "grade": "0.9",
        "pok_credential_id": pok_id,
        "pok_state": f"CASE WHEN {_BUCKET} < 80 OR {_BUCKET} >= 97 THEN 'emitted' "
                     f"WHEN {_BUCKET} < 85 THEN 'processing' WHEN {_BUCKET} >= 94 THEN 'emitted' ELSE '' END",
        "view_url": f"IF({_BUCKET} < 80 OR {_BUCKET} >= 97, CONCAT('https://pok.tech/view/', {pok_id}), '')",
        "verify_uuid": "MD5(CONCAT('verify', s.seq))",
        "issuance": "1",
        "attempts": f"IF({SENT} OR {_BUCKET} IN (88, 89, 90, 91), 1, 0)",
        "ambiguous_attempts": f"IF({_BUCKET} = 97, 1, 0)",
        "previous_credential_ids": "JSON_ARRAY()",
        "retryable": f"IF({_BUCKET} IN (88, 89), 1, 0)",
        "possible_duplicate": f"IF({_BUCKET} = 97, 1, 0)",
        "tries": f"IF({_BUCKET} IN (88, 89), 3, 0)",
        "not_before": f"IF({_BUCKET} IN (88, 89), NOW(6) + INTERVAL 10 MINUTE, NULL)",
        "pok_response": "''",
        # Every fifth course issues with a second POK account (the credential admin's account filter).
        "account": f"IF({course} % 5 = 0, '{OTHER_ACCOUNT}', 'default')",
        "requested_at": f"IF({SENT}, {created}, NULL)",
        "last_synced_at": f"IF({SENT}, {created} + INTERVAL 1 MINUTE, NULL)",
    }


def _defaults_for_unknown(model, known):
    """SQL placeholders and values for the concrete columns of ``model`` missing from ``known``."""
    columns, params = [], []
    for model_field in model._meta.concrete_fields:
        if model_field.column in known or model_field.primary_key:
            continue
        if model_field.default is NOT_PROVIDED and not model_field.null:
            raise RuntimeError(f"bench.data does not know how to fill {model._meta.db_table}.{model_field.column}")
        columns.append(model_field.column)
        value = model_field.get_default() if model_field.default is not NOT_PROVIDED else None
        params.append(model_field.get_db_prep_save(value, connection))
    return columns, params


def _insert_select(model, columns, start, end):
    """One ``INSERT INTO <table> (...) SELECT ... FROM seq_<start>_to_<end> s``; returns the rows written."""
    extra_columns, params = _defaults_for_unknown(model, columns)
    names = [*columns, *extra_columns]
    # The expressions use SQL's modulo; the driver formats parameters with %, so theirs are doubled.
    expressions = [*(value.replace("%", "%%") for value in columns.values()), *(["%s"] * len(extra_columns))]
    sql = (
        f"INSERT INTO {connection.ops.quote_name(model._meta.db_table)} "  # noqa: S608 - fixed names and numbers
        f"({', '.join(connection.ops.quote_name(name) for name in names)}) "
        f"SELECT {', '.join(expressions)} FROM seq_{start}_to_{end} s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def build(rows, users=USERS):
    """
    Grow the load data to ``rows`` credentials over ``users`` learners (made on the first call); returns timings.

    The first call makes the learners, the courses and the email index; every call adds the credentials (and their
    Open edX certificates) from the load learners' current count up to ``rows``; credentials of other learners
    (the LMS paths' own) are not counted. ``rows`` may not exceed ``users * COURSES``.
    """
    if connection.vendor != "mysql":
        raise RuntimeError("the load data is built with MariaDB's sequence engine: run it on MariaDB")
    if rows > users * COURSES:
        raise ValueError(f"at most {users * COURSES} credentials fit {users} learners in {COURSES} courses")
    timings = {}
    User = get_user_model()
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SET @users = %s, @start = NOW(6) - INTERVAL 1 YEAR", [users])
        cursor.execute("SELECT COALESCE(MIN(id), 0) - 1 FROM auth_user WHERE username = 'learner1'")
        base = cursor.fetchone()[0]
    if base < 0:
        with connection.cursor() as cursor:
            cursor.execute("SELECT COALESCE(MAX(id), 0) FROM auth_user")
            base = cursor.fetchone()[0]
        _insert_select(User, {
            "id": f"{base} + s.seq",
            "password": "'!'",  # an unusable password, as for learners who log in through SSO
            "is_superuser": "0",
            "username": "CONCAT('learner', s.seq)",
            "first_name": "'Ada'",
            "last_name": "CONCAT('Lovelace', s.seq)",
            "email": "CONCAT('learner', s.seq, '@example.com')",
            "is_staff": "0",
            "is_active": "1",
            "date_joined": "NOW(6) - INTERVAL 2 YEAR + INTERVAL s.seq MINUTE",
        }, 1, users)
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE UNIQUE INDEX {EMAIL_INDEX} ON auth_user (email)")
        _insert_select(CourseOverview, {
            "id": f"CONCAT('course-v1:{ORG}+C', s.seq, '+2026')",
            "display_name": "CONCAT('Load course ', s.seq)",
            "org": f"'{ORG}'",
            "display_org_with_default": f"'{ORG}'",
            "language": "'en'",
            "cert_html_view_enabled": "1",
            # Certificates shown as soon as earned, so the load's credentials are issued, not scheduled.
            "self_paced": "0",
            "certificates_display_behavior": "'early_no_info'",
            "certificates_show_before_end": "0",
            "certificate_title": "''",
            "signatories": "JSON_ARRAY()",
        }, 1, COURSES)
        timings["learners_s"] = round(time.perf_counter() - started, 2)
    with connection.cursor() as cursor:
        cursor.execute("SET @base = %s", [base])
    # Only the load learners' rows count: other parts of the benchmark add credentials of their own learners.
    start = PokCertificate.objects.filter(user_id__gt=base, user_id__lte=base + users).count() + 1
    if rows >= start:
        began = time.perf_counter()
        columns = _credential_columns("@users")
        _insert_select(PokCertificate, columns, start, rows)
        timings["credentials_s"] = round(time.perf_counter() - began, 2)
        began = time.perf_counter()
        _insert_select(GeneratedCertificate, {
            "user_id": columns["user_id"],
            "course_id": columns["course_key"],
            "verify_uuid": columns["verify_uuid"],
            "status": "IF(s.seq % 100 BETWEEN 94 AND 96, 'unavailable', 'downloadable')",
            "mode": "'verified'",
            "grade": "'0.9'",
            "name": f"CONCAT('Ada Lovelace', {_user_number(users='@users')})",
            "download_url": "''",
            "created_date": columns["created"],
            "modified_date": columns["modified"],
        }, start, rows)
        timings["certificates_s"] = round(time.perf_counter() - began, 2)
    began = time.perf_counter()
    with connection.cursor() as cursor:
        # Fresh statistics, as a table that grew slowly would have: the optimizer's choices depend on them.
        for model in (PokCertificate, User, GeneratedCertificate):
            cursor.execute(f"ANALYZE TABLE {connection.ops.quote_name(model._meta.db_table)}")
            cursor.fetchall()
    timings["analyze_s"] = round(time.perf_counter() - began, 2)
    timings["total_s"] = round(time.perf_counter() - started, 2)
    return timings
