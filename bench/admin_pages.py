"""
The credential admin's list page on a big table: SQL time, statements and what they do, per page, filter and search.

Each *case* is one changelist URL a staff member opens: the default page, a later and the last page, each filter,
each kind of search term (user id, email, username, a learner's surname, course key, course number, POK id,
reference, verify_uuid, a term that matches nothing), and the sortable columns. Every case runs against two admins in
the same run, on the same data:

``baseline``
    :class:`BaselineCredentialAdmin`, the credential admin as it was before issue 12 (commit 88ac1ec): the user
    joined into the page query, ``LIKE '%term%'`` search over four columns across that join, the full count.
``plugin``
    The admin the plugin registers (``openedx_pok.admin.PokCertificateAdmin``).

The view is called as Django's admin URL would call it (``changelist_view`` on a ``RequestFactory`` request of a
superuser, the template response rendered, which is when the page's rows are fetched), so the statements counted are
the page's own: no session, no login. Each statement is timed with a ``connection.execute_wrapper`` (the wall time of
``cursor.execute``, which with mysqlclient includes fetching the rows); its ``EXPLAIN`` is taken once, outside the
timing. Rows examined by the server come from ``SHOW SESSION STATUS LIKE 'Handler_read%'`` around the request.
"""
import re
import statistics
import time
from dataclasses import dataclass, field, replace
from datetime import timedelta

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.messages.storage.cookie import CookieStorage
from django.db import connection
from django.test import RequestFactory

from bench import data
from lms_sandbox.models import UserProfile
from openedx_pok.admin.credentials import LIST_DEPTH
from openedx_pok.issuance import staff_actions
from openedx_pok.models import PokCertificate


class BaselineCredentialAdmin(admin.ModelAdmin):
    """The list configuration of the credential admin before issue 12, kept to measure against in the same run."""

    list_display = ("id", "user", "course_key", "status", "pok_state", "attempts", "ambiguous_attempts", "modified")
    list_filter = ("status", "retryable", "emission_type")
    search_fields = ("=user__id", "user__username", "course_key", "pok_credential_id", "=uuid", "verify_uuid")
    list_select_related = ("user",)


@dataclass(frozen=True)
class Case:
    """One changelist URL; ``expect`` is the result count that proves the page shows what was asked (None: any)."""

    key: str
    label: str
    params: dict
    expect: int | None = None
    sort: str | None = None  # a list_display name: the URL's ``o`` is its position in each admin's list_display
    # The same question in the baseline admin's URL, where it has no such filter (a plain field lookup).
    baseline_params: dict | None = None

    def params_for(self, key):
        return dict(self.baseline_params if key == "baseline" and self.baseline_params is not None else self.params)


def give_learners_names():
    """
    A profile with a full name (``Ada Lovelace<n>``, from the learner's first and last names) for every learner
    without one, as every LMS account has: the search by name reads the profiles. One statement; nothing on a
    second call.
    """
    table, users = (connection.ops.quote_name(model._meta.db_table) for model in (UserProfile, get_user_model()))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (user_id, name) SELECT u.id, CONCAT(u.first_name, ' ', u.last_name) "  # noqa: S608
            f"FROM {users} u LEFT JOIN {table} p ON p.user_id = u.id WHERE p.id IS NULL")
        cursor.execute(f"ANALYZE TABLE {table}")
        cursor.fetchall()


def cases(size, users=data.USERS):
    """The cases for the load data of ``size`` credentials, with search terms taken from real rows."""
    # A learner in the middle whose first credential exists at every size (learner n has credential n, n <= size).
    number = min(size, users) // 2 + 7
    target = PokCertificate.objects.filter(user__username=data.USERNAME.format(n=number)).order_by("id").first()
    sent = PokCertificate.objects.filter(pok_credential_id__isnull=False, id__gte=size // 3).order_by("id").first()
    per_learner = PokCertificate.objects.filter(user_id=target.user_id).count()
    per_course = PokCertificate.objects.filter(course_key=target.course_key).count()
    surname = target.user.last_name  # Lovelace<n>: the learner's profile name is "Ada Lovelace<n>"
    named = PokCertificate.objects.filter(user__profile__name__icontains=surname).count()
    total = PokCertificate.objects.count()  # the load data and the LMS paths' own credentials
    newest = PokCertificate.objects.filter(emission_date__isnull=False).order_by("-emission_date").first()
    # As the admin's own date filter writes it in its links: midnight, with the time zone.
    month_ago = (newest.emission_date - timedelta(days=30)).replace(hour=0, minute=0, second=0, microsecond=0)
    # The plugin's list counts (and pages through) up to its depth: the deepest page it offers is the case.
    last_page = -(-min(total, LIST_DEPTH) // 100)
    cases = [
        Case("default", "default page (newest first)", {}, total),
        Case("page_2", "page 2", {"p": 2}, total),
        Case("last_page", f"deepest page (page {last_page})", {"p": last_page}, total),
        Case("status_failed", "filter status = failed", {"status__exact": "failed"},
             PokCertificate.objects.filter(status="failed").count()),
        Case("status_emitted", "filter status = emitted", {"status__exact": "emitted"},
             PokCertificate.objects.filter(status="emitted").count()),
        Case("retryable", "filter retryable = yes", {"retryable__exact": 1},
             PokCertificate.objects.filter(retryable=True).count()),
        Case("failed_retryable", "filter failed + retryable", {"status__exact": "failed", "retryable__exact": 1},
             PokCertificate.objects.filter(status="failed", retryable=True).count()),
        Case("blockchain", "filter emission type = blockchain", {"emission_type__exact": "blockchain"},
             PokCertificate.objects.filter(emission_type="blockchain").count()),
        Case("possible_duplicate", "filter possible duplicate = yes", {"possible_duplicate__exact": 1},
             PokCertificate.objects.filter(possible_duplicate=True).count()),
        # The filters of issue 10 (the baseline admin has none of them: the same lookups as plain URL parameters).
        Case("pok_state", "filter POK state = processing", {"pok_state": "processing"},
             PokCertificate.objects.filter(pok_state="processing").count(),
             baseline_params={"pok_state__exact": "processing"}),
        Case("course", "filter course", {"course": str(target.course_key)}, per_course,
             baseline_params={"course_key__exact": str(target.course_key)}),
        Case("organization", f"filter organization = {data.ORG}", {"org": data.ORG},
             PokCertificate.objects.filter(course_key__startswith=f"course-v1:{data.ORG}+").count(),
             baseline_params={"course_key__startswith": f"course-v1:{data.ORG}+"}),
        Case("account", f"filter POK account = {data.OTHER_ACCOUNT}", {"account": data.OTHER_ACCOUNT},
             PokCertificate.objects.filter(account=data.OTHER_ACCOUNT).count(),
             baseline_params={"account__exact": data.OTHER_ACCOUNT}),
        Case("emitted_last_month", "filter emission date: past 30 days", {"emission_date__gte": str(month_ago)},
             PokCertificate.objects.filter(emission_date__gte=month_ago).count()),
        Case("search_user_id", "search user id", {"q": str(target.user_id)}, per_learner),
        Case("search_email", "search email", {"q": target.user.email}, per_learner),
        Case("search_username", "search username", {"q": target.user.username}, per_learner),
        Case("search_username_prefix", "search username prefix (learner1…)", {"q": "learner1"}),
        Case("search_surname", "search a learner's surname", {"q": surname}, named),
        Case("search_course", "search course key", {"q": str(target.course_key)}, per_course),
        Case("search_course_number", "search course number", {"q": target.course_key.course}, per_course),
        Case("search_pok_id", "search POK credential id", {"q": sent.pok_credential_id}, 1),
        Case("search_reference", "search reference (UUID)", {"q": str(target.uuid)}, 1),
        Case("search_verify_uuid", "search certificate verify_uuid", {"q": target.verify_uuid}, 1),
        Case("search_nothing", "search that matches nothing", {"q": "no-such-learner"}, 0),
        Case("sort_modified", "sorted by modified, newest first", {}, total, sort="-modified"),
        Case("sort_course", "sorted by course", {}, total, sort="course_key"),
        Case("sort_status", "sorted by status", {}, total, sort="status"),
    ]
    # What the plugin's list shows as its count: the matching rows, up to its depth.
    return [replace(case, expect=None if case.expect is None else min(case.expect, LIST_DEPTH)) for case in cases]


class StatementTimer:
    """A ``connection.execute_wrapper`` that keeps each statement with its wall time."""

    def __init__(self):
        self.statements = []

    def __call__(self, execute, sql, params, many, context):
        start = time.perf_counter_ns()
        try:
            return execute(sql, params, many, context)
        finally:
            self.statements.append((sql, params, time.perf_counter_ns() - start))


def _order_param(model_admin, request, sort):
    """The changelist's ``o`` value for ``sort`` ("-modified": a model field), or None if the admin cannot sort so."""
    wanted = sort.lstrip("-")
    sortable = model_admin.get_sortable_by(request)
    columns = list(model_admin.get_list_display(request))
    # The changelist counts its columns with the action checkbox first, when the admin has actions.
    offset = 1 if model_admin.get_actions(request) else 0
    for position, name in enumerate(columns):
        column = getattr(model_admin, name, None)
        field_name = getattr(column, "admin_order_field", None) if callable(column) else name
        if field_name == wanted and name in sortable:
            return f"{'-' if sort.startswith('-') else ''}{position + offset}"
    return None


def _handler_reads():
    """InnoDB row reads of this session so far (index and table), to count what a request examined."""
    with connection.cursor() as cursor:
        cursor.execute("SHOW SESSION STATUS LIKE 'Handler_read%%'")
        return sum(int(value) for _name, value in cursor.fetchall())


def _explain(sql, params):
    """MariaDB's plan of one SELECT: per table, the access type, the index and the estimated rows."""
    if not sql.lstrip().upper().startswith("SELECT"):
        return []
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {sql}", params)
        columns = [column[0] for column in cursor.description]
        return [{key: row[columns.index(key)] for key in ("table", "type", "key", "rows", "Extra")}
                for row in cursor.fetchall()]


_AUTH_USER_JOIN = re.compile(r"\bJOIN\s+`?auth_user`?", re.IGNORECASE)


@dataclass
class CaseResult:
    label: str
    params: dict
    wall_ns: list = field(default_factory=list)
    sql_ns: list = field(default_factory=list)
    queries: int = 0
    result_count: int | None = None
    rows_read: int = 0
    sql: list = field(default_factory=list)

    def summary(self):
        return {
            "label": self.label,
            "params": self.params,
            "n": len(self.wall_ns),
            "wall_median_ms": _ms(statistics.median(self.wall_ns)),
            "sql_median_ms": _ms(statistics.median(self.sql_ns)),
            "sql_max_ms": _ms(max(self.sql_ns)),
            "queries": self.queries,
            "result_count": self.result_count,
            "rows_read": self.rows_read,
            "joins_auth_user": any(_AUTH_USER_JOIN.search(statement["sql"]) for statement in self.sql),
            "sql": self.sql,
        }


def _ms(nanoseconds):
    return round(nanoseconds / 1e6, 3)


class ChangelistBench:
    """Opens the credential changelist of one ``ModelAdmin`` as a superuser and measures each case."""

    def __init__(self, model_admin, superuser):
        self.model_admin = model_admin
        self.superuser = superuser
        self.factory = RequestFactory()

    def staff_request(self, params):
        request = self.factory.get("/admin/openedx_pok/pokcertificate/", params)
        request.user = self.superuser
        # The admin may tell staff something (a broad username prefix); this is how the messages middleware attaches
        # its storage to a request.
        request._messages = CookieStorage(request)  # noqa: SLF001
        return request

    def request(self, params):
        request = self.staff_request(params)
        response = self.model_admin.changelist_view(request)
        if response.status_code != 200:
            raise RuntimeError(f"{type(self.model_admin).__name__} {params}: HTTP {response.status_code}")
        response.render()
        return response

    def measure(self, case, repeats, key="plugin"):
        """``repeats`` timed requests after one untimed one; None when this admin has no such URL (a sort)."""
        params = case.params_for(key)
        if case.sort:
            order = _order_param(self.model_admin, self.staff_request({}), case.sort)
            if order is None:
                return None
            params["o"] = order
        result = CaseResult(case.label, params)
        self.request(params)  # warm: the buffer pool, the query cache of the optimizer, Python's imports
        for index in range(repeats):
            # The page as most views see it, the counts per status cached (they are measured on their own below):
            # on a slow machine their 30 s could otherwise run out between two repeats and add a statement.
            staff_actions.status_counts()
            timer = StatementTimer()
            reads = _handler_reads() if index == 0 else None
            start = time.perf_counter_ns()
            with connection.execute_wrapper(timer):
                response = self.request(params)
            result.wall_ns.append(time.perf_counter_ns() - start)
            result.sql_ns.append(sum(ns for _sql, _params, ns in timer.statements))
            if index == 0:
                result.rows_read = _handler_reads() - reads
                result.queries = len(timer.statements)
                result.result_count = response.context_data["cl"].result_count
                result.sql = [{"sql": sql, "ms": _ms(ns), "explain": _explain(sql, sql_params)}
                              for sql, sql_params, ns in timer.statements]
            elif len(timer.statements) != result.queries:
                raise RuntimeError(f"{case.key}: {len(timer.statements)} statements, then {result.queries}")
        return result.summary()


def admins(baseline=True):
    """(key, ModelAdmin) of the baseline (unless ``baseline`` is false) and the plugin's registered credential admin."""
    plugin = ("plugin", admin.site.get_model_admin(PokCertificate))
    return (("baseline", BaselineCredentialAdmin(PokCertificate, admin.site)), plugin) if baseline else (plugin,)


def superuser():
    User = get_user_model()
    user = User.objects.filter(username="bench-admin").first()
    return user or User.objects.create_superuser("bench-admin", "bench-admin@example.com", None)


def measure_admin_pages(size, repeats, users=data.USERS, check=True, baseline=True):
    """
    Every case against both admins, interleaved per case so that both see the same state of the server; the plugin's
    only with ``baseline=False`` (the former admin takes minutes at a million credentials: full joins and counts).
    """
    staff = superuser()
    give_learners_names()
    benches = [(key, ChangelistBench(model_admin, staff)) for key, model_admin in admins(baseline)]
    results = {}
    for case in cases(size, users):
        results[case.key] = {"label": case.label, "expect": case.expect, "baseline": None}
        for key, bench in benches:
            results[case.key][key] = summary = bench.measure(case, repeats, key)
            # The plugin's admin must find exactly what was asked; the baseline's misses are part of its figures.
            if key == "plugin" and check and summary is not None and case.expect is not None \
                    and summary["result_count"] != case.expect:
                raise RuntimeError(f"{case.key}: {summary['result_count']} results, expected {case.expect}")
    results["status_counts"] = {"label": "counts per status (uncached)", "expect": None, "baseline": None,
                                "plugin": measure_status_counts(repeats)}
    return results


def measure_status_counts(repeats):
    """The counts per status above the list, uncached (the list counts them once per STATUS_COUNTS_TTL)."""
    result = CaseResult("counts per status", {})
    staff_actions.status_counts()  # warm
    for index in range(repeats):
        staff_actions.forget_status_counts()
        timer = StatementTimer()
        reads = _handler_reads() if index == 0 else None
        start = time.perf_counter_ns()
        with connection.execute_wrapper(timer):
            counts = staff_actions.status_counts()
        result.wall_ns.append(time.perf_counter_ns() - start)
        result.sql_ns.append(sum(ns for _sql, _params, ns in timer.statements))
        if index == 0:
            result.rows_read = _handler_reads() - reads
            result.queries = len(timer.statements)
            result.result_count = sum(counts.values())
            result.sql = [{"sql": sql, "ms": _ms(ns), "explain": _explain(sql, sql_params)}
                          for sql, sql_params, ns in timer.statements]
    return result.summary()
