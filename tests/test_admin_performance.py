"""
The credential admin list stays cheap on a big table: pinned statements per page, no join over the users table, a
search that goes to indexed lookups, pages fetched by id, sorts an index can serve.

The times themselves are measured by ``make bench`` on MariaDB with 100,000 credentials (docs/benchmarks.rst); here
the *shape* of the SQL is asserted, on SQLite and on MariaDB, from the statements the page really runs
(``CaptureQueriesContext``). ``tests/test_bench.py`` checks on MariaDB that the searches read a handful of rows.
The one ``LIKE '%word%'`` is a learner's name, in the profiles (issue 20): never over the credentials or auth_user.
"""
import re
import uuid

import pytest
from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.html import escape
from django.utils.text import Truncator

from lms_sandbox.factories import UserFactory
from openedx_pok.admin import credential_search
from openedx_pok.admin import credentials as pok_admin
from openedx_pok.issuance import staff_actions
from openedx_pok.issuance.states import CredentialStatus
from openedx_pok.models import PokCertificate
from test_utils.factories import CourseMappingFactory, CredentialFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:openedx_pok_pokcertificate_changelist"
# Two statements of every admin request: the session and the logged-in staff member.
SESSION_AND_STAFF = 2
# The choices of two filters: POK states (from their index) and the mapped courses and organizations (mappings).
FILTER_CHOICES = 2
JOIN_AUTH_USER = re.compile(r"\bJOIN\s+[`\"]?auth_user[`\"]?", re.IGNORECASE)
LEADING_WILDCARD = re.compile(r"LIKE\s+'%", re.IGNORECASE)
# The lookups a plain search word costs: usernames (auth_user's index), names (the profiles), course numbers (one
# index entry per course of the credentials).
USERNAME_LOOKUP = re.compile(r"FROM [`\"]?auth_user[`\"]? WHERE .*(username|email)")
NAME_LOOKUP = re.compile(r"FROM [`\"]?\w*userprofile[`\"]? WHERE [`\"]?\w*userprofile[`\"]?\.[`\"]?name[`\"]? LIKE")
COURSE_LOOKUP = re.compile(r"SELECT DISTINCT [`\"]?openedx_pok_credential[`\"]?\.[`\"]?course_key[`\"]?( AS \S+)? FROM "
                           r"[`\"]?openedx_pok_credential[`\"]?$")
# The learners of the shown rows: their ids and usernames only (the lookup by id is IN or ORs, by database).
LEARNERS_OF_THE_PAGE = re.compile(
    r"SELECT [`\"]?auth_user[`\"]?\.[`\"]?id[`\"]?, [`\"]?auth_user[`\"]?\.[`\"]?username[`\"]? "
    r"FROM [`\"]?auth_user[`\"]? WHERE .*[`\"]?id[`\"]?"
)
# Columns of the changelist (its ``o`` parameter): the action checkbox, then PokCertificateAdmin.list_display.
STATUS, COURSE, MODIFIED = 3, 4, 5


@pytest.fixture
def staff_client(client):
    client.force_login(get_user_model().objects.create_superuser("boss", "boss@example.com", "pw"))
    return client


@pytest.fixture
def credential_admin():
    return admin.site.get_model_admin(PokCertificate)


def open_list(client, params=None):
    """
    GET the credential changelist; returns (response, statements run). The request's own transaction (the LMS's
    ATOMIC_REQUESTS: a savepoint inside a test's transaction) is not the page's work and is left out.
    """
    with CaptureQueriesContext(connection) as captured:
        response = client.get(reverse(CHANGELIST), params or {})
    assert response.status_code == 200, response.content[:500]
    return response, [query["sql"] for query in captured.captured_queries if "SAVEPOINT" not in query["sql"]]


def shown_ids(response):
    return [row.id for row in response.context["cl"].result_list]


def make_credentials(count, **kwargs):
    course = CourseMappingFactory().course_key
    return [CredentialFactory(course_key=course, **kwargs) for _index in range(count)]


def test_statements_per_page_do_not_grow_with_the_rows(staff_client, credential_admin, monkeypatch):
    make_credentials(3, emitted=True)
    open_list(staff_client)  # counts the credentials per status (kept for STATUS_COUNTS_TTL seconds)
    _response, few = open_list(staff_client)
    make_credentials(27, failed=True)
    response, many = open_list(staff_client)
    assert len(shown_ids(response)) == 30
    # One page: the count, the rows, the learners of the rows.
    assert len(few) == len(many) == SESSION_AND_STAFF + FILTER_CHOICES + 3, many

    monkeypatch.setattr(credential_admin, "list_per_page", 7)
    counts = set()
    for page in (1, 2, 3, 5):  # the first pages, one past the middle, the last (2 rows)
        response, statements = open_list(staff_client, {"p": page})
        assert shown_ids(response)
        counts.add(len(statements))
    # Several pages: the count, the page's ids, its rows, its learners.
    assert counts == {SESSION_AND_STAFF + FILTER_CHOICES + 4}


def test_no_statement_joins_the_users_table(staff_client, monkeypatch, credential_admin):
    rows = make_credentials(12, emitted=True) + make_credentials(3, failed_retryable=True)
    target = rows[4]
    monkeypatch.setattr(credential_admin, "list_per_page", 5)
    for params in ({}, {"p": 3}, {"status__exact": "failed"}, {"retryable__exact": "1"},
                   {"emission_type__exact": "pok"}, {"possible_duplicate__exact": "0"}, {"o": f"{STATUS}"},
                   {"o": f"-{MODIFIED}"},
                   {"q": str(target.user_id)}, {"q": target.user.email}, {"q": target.user.username},
                   {"q": target.user.profile.name.split()[-1]}, {"q": target.course_key.course},
                   {"q": str(target.course_key)}, {"q": target.pok_credential_id}, {"q": str(target.uuid)}):
        response, statements = open_list(staff_client, params)
        assert shown_ids(response), params
        assert not [sql for sql in statements if JOIN_AUTH_USER.search(sql)], params
        assert not [sql for sql in statements if LEADING_WILDCARD.search(sql) and not NAME_LOOKUP.search(sql)], params
        # The learners of the shown rows: one lookup by primary key, only the columns the list shows.
        learners = [sql for sql in statements if LEARNERS_OF_THE_PAGE.search(sql)]
        assert len(learners) == 1, (params, statements)
        assert "password" not in learners[0] and "email" not in learners[0]


def test_the_join_check_sees_a_join(staff_client, credential_admin, monkeypatch):
    """The assertion above can fail: the admin's former configuration joins auth_user into the page query."""
    make_credentials(3)
    monkeypatch.setattr(credential_admin, "list_select_related", ("user",))
    monkeypatch.setattr(credential_admin, "get_changelist", lambda _request, **_kwargs: ChangeList)
    _response, statements = open_list(staff_client)
    assert [sql for sql in statements if JOIN_AUTH_USER.search(sql)]


@pytest.fixture
def search_data():
    """
    Ada's two credentials among other learners' (one of them, adam, named like her), in two courses with numbers;
    every learner with a full name of their own (the factory's default names all share a surname).
    """
    course = CourseMappingFactory(course_key="course-v1:DemoX+POK101+2026").course_key
    other_course = CourseMappingFactory(course_key="course-v1:DemoX+POK202+2026").course_key
    ada = UserFactory(username="ada.lovelace", email="Ada.Lovelace@example.com", profile__name="Ada Lovelace")
    data = {
        "ada": ada,
        "course": course,
        "course_prefix": str(course).rsplit("+", 1)[0],  # without its run: not a course key, the start of one
        "first": CredentialFactory(user=ada, course_key=course, emitted=True),
        "second": CredentialFactory(user=ada, course_key=other_course, failed=True, verify_uuid=uuid.uuid4().hex),
        "adams": CredentialFactory(user=UserFactory(username="adam", profile__name="Adam Smith"), course_key=course,
                                   emitted=True),
        "grace": CredentialFactory(user=UserFactory(username="gh", profile__name="Grace Brewster Hopper"),
                                   course_key=other_course, emitted=True),
    }
    for key, name in (("katherine", "Katherine Johnson"), ("dorothy", "Dorothy Vaughan")):
        data[key] = CredentialFactory(user=UserFactory(profile__name=name), course_key=other_course, emitted=True)
    return data


@pytest.mark.parametrize(("term", "expected", "lookups"), [
    ("{ada.id}", ["second", "first"], (0, 0, 0)),
    ("ADA.lovelace@EXAMPLE.com", ["second", "first"], (1, 0, 0)),
    ("ada.lovelace", ["second", "first"], (1, 1, 1)),
    ("ada", ["adams", "second", "first"], (1, 1, 1)),  # a prefix: ada.lovelace and adam (and their names)
    ("lovelace", ["second", "first"], (1, 1, 1)),  # a surname: in no username
    ("BREWSTER", ["grace"], (1, 1, 1)),  # a middle name, in capitals
    ('"Ada Lovelace"', ["second", "first"], (1, 1, 1)),  # the whole name, quoted
    ("POK101", ["adams", "first"], (1, 1, 1)),  # a course number
    ("pok202", ["dorothy", "katherine", "grace", "second"], (1, 1, 1)),  # in any case
    ("DemoX+POK101", ["adams", "first"], (1, 1, 1)),  # organization and number
    ("{course}", ["adams", "first"], (0, 0, 0)),
    ("{course_prefix}", None, (0, 0, 0)),  # every run of the course
    ("{first.pok_credential_id}", ["first"], (0, 0, 0)),  # UUID-shaped, as POK's
    ("{first.uuid}", ["first"], (0, 0, 0)),
    ("{first.uuid.hex}", ["first"], (0, 0, 0)),
    ("{second.verify_uuid}", ["second"], (0, 0, 0)),
    ('"{ada.username}" {course}', ["first"], (1, 1, 1)),  # words are ANDed
    ("lovelace POK202", ["second"], (2, 2, 2)),
    ("nobody@example.com", [], (1, 0, 0)),
    ("zz-nothing", [], (1, 1, 1)),
    ("POK", [], (1, 1, 1)),  # a course number is matched whole, not by its beginning
], ids=["user id", "email", "username", "username prefix", "surname", "middle name", "full name", "course number",
        "course number in lower case", "organization and number", "course key", "course key prefix", "POK id",
        "reference", "reference as hex", "verify_uuid", "two words", "surname and course number", "unknown email",
        "unknown word", "part of a course number"])
def test_search_routes_each_term_to_an_indexed_lookup(staff_client, search_data, term, expected, lookups):
    term = term.format(**search_data)
    response, statements = open_list(staff_client, {"q": term})
    if expected is None:
        wanted = [row.id for row in PokCertificate.objects.order_by("-id") if str(row.course_key).startswith(term)]
        assert len(wanted) == 2
    else:
        wanted = sorted((search_data[name].id for name in expected), reverse=True)
    assert shown_ids(response) == wanted
    assert not [sql for sql in statements if LEADING_WILDCARD.search(sql) and not NAME_LOOKUP.search(sql)]
    assert not [sql for sql in statements if JOIN_AUTH_USER.search(sql)]
    found = tuple(len([sql for sql in statements if pattern.search(sql)])
                  for pattern in (USERNAME_LOOKUP, NAME_LOOKUP, COURSE_LOOKUP))
    assert found == lookups, statements


@pytest.mark.parametrize("term", ["lovelace", "POK101", "ada", "zz-nothing"])
def test_a_plain_word_costs_the_same_statements_whatever_it_finds(staff_client, search_data, term):
    """Three lookups (usernames, names, course numbers), then the page: as many statements for 5 or 35 learners."""
    open_list(staff_client)  # counts the credentials per status (kept for STATUS_COUNTS_TTL seconds)
    _response, plain = open_list(staff_client, {"status__exact": "emitted"})  # count, rows, learners (one page)
    _response, few = open_list(staff_client, {"q": term})
    for index in range(30):
        CredentialFactory(user=UserFactory(profile__name=f"Someone Else{index}"), course_key=search_data["course"])
    response, many = open_list(staff_client, {"q": term})
    found = len(shown_ids(response))
    # What it found: + the check that the word is not also a POK id; nothing found: no learners to fetch, and the
    # word is looked up as a POK id by the page query itself.
    assert len(few) == len(many) == len(plain) + (4 if found else 2), (term, many)


def test_a_search_that_finds_nothing_says_what_the_search_looks_at(staff_client, search_data):
    html = open_list(staff_client, {"q": "Lovelac3"})[0].content.decode()
    hint = re.search(r'<p class="help pok-search-nothing">(.*?)</p>', html, re.S).group(1)
    assert 'Nothing matches "Lovelac3".' in hint and "part of their full name" in hint
    assert "its number (e.g. POK101)" in hint
    assert 'class="help pok-search-nothing"' not in open_list(staff_client, {"q": "lovelace"})[0].content.decode()
    help_text = open_list(staff_client)[0].context["cl"].search_help_text
    for searched in ("id", "e-mail", "username", "full name", "course", "number", "POK id", "reference",
                     "verify_uuid"):
        assert searched in str(help_text), searched


def test_a_broad_username_prefix_says_it_is_cut(staff_client, monkeypatch):
    monkeypatch.setattr(credential_search, "LEARNER_LOOKUP_LIMIT", 2)
    course = CourseMappingFactory().course_key
    rows = [CredentialFactory(user=UserFactory(username=f"zed{index}", profile__name=f"Z {index}"), course_key=course)
            for index in range(3)]
    response, _statements = open_list(staff_client, {"q": "zed"})
    assert sorted(shown_ids(response)) == sorted(row.id for row in rows[:2])  # zed0, zed1: first by username
    assert "More than 2 learners have a username starting with" in response.content.decode()
    response, _statements = open_list(staff_client, {"q": "zed2"})
    assert shown_ids(response) == [rows[2].id]
    assert "More than" not in response.content.decode()


def test_a_broad_name_says_it_is_cut(staff_client, monkeypatch):
    monkeypatch.setattr(credential_search, "LEARNER_LOOKUP_LIMIT", 2)
    course = CourseMappingFactory().course_key
    rows = [CredentialFactory(user=UserFactory(profile__name=f"Ann Common{index}"), course_key=course)
            for index in range(3)]
    response, _statements = open_list(staff_client, {"q": "common"})
    assert len(shown_ids(response)) == 2 and set(shown_ids(response)) < {row.id for row in rows}
    assert "a name containing, &quot;common&quot;" in response.content.decode()


@pytest.mark.parametrize(("order", "expected_sql"), [
    (f"{COURSE}", r"ORDER BY .*course_key[`\"]? ASC, (.*[`\"]?id[`\"]?|1) ASC"),
    (f"-{COURSE}", r"ORDER BY .*course_key[`\"]? DESC, (.*[`\"]?id[`\"]?|1) DESC"),
    (f"{STATUS}", r"ORDER BY .*status[`\"]? ASC, (.*[`\"]?id[`\"]?|1) ASC"),
    (f"{MODIFIED}", r"ORDER BY .*modified[`\"]? ASC, (.*[`\"]?id[`\"]?|1) ASC"),
    (f"-{MODIFIED}", r"ORDER BY .*modified[`\"]? DESC, (.*[`\"]?id[`\"]?|1) DESC"),
])
def test_sorts_break_ties_in_their_own_direction(staff_client, credential_admin, monkeypatch, order, expected_sql):
    """``ORDER BY col ASC, id ASC`` is an index scan; Django's default tie-break ``id DESC`` would sort every row."""
    make_credentials(4)
    monkeypatch.setattr(credential_admin, "list_per_page", 2)
    _response, statements = open_list(staff_client, {"o": order})
    pages = [sql for sql in statements
             if "ORDER BY" in sql and "openedx_pok_credential" in sql and "DISTINCT" not in sql]  # not a filter's
    assert pages and all(re.search(expected_sql, sql) for sql in pages), pages


@pytest.mark.parametrize("params", [{}, {"o": f"{COURSE}"}, {"o": f"-{MODIFIED}"}, {"status__exact": "emitted"},
                                    {"q": "learner"}])
def test_every_page_shows_the_rows_of_the_plain_ordering(staff_client, credential_admin, monkeypatch, params):
    """Each page's ids first, then its rows: together the pages are exactly the whole ordered list."""
    for index in range(23):
        CredentialFactory(emitted=index % 3 != 0)
    monkeypatch.setattr(credential_admin, "list_per_page", 5)
    response, _statements = open_list(staff_client, {**params, "all": ""})  # up to list_max_show_all: one page
    everything = shown_ids(response)
    assert len(everything) > 5
    paged = []
    for page in range(1, -(-len(everything) // 5) + 1):
        response, _statements = open_list(staff_client, {**params, "p": page})
        paged += shown_ids(response)
    assert paged == everything


def test_no_full_count_and_no_facets(staff_client):
    make_credentials(3, failed=True)
    _response, statements = open_list(staff_client, {"status__exact": "failed"})
    counts = [sql for sql in statements if "COUNT(" in sql.upper()]
    assert len(counts) == 1 and "WHERE" in counts[0]  # the filtered count only, not the whole table's
    _response, with_facets = open_list(staff_client, {"status__exact": "failed", "_facets": "True"})
    assert len(with_facets) == len(statements)


def test_status_and_reason_fit_the_list(staff_client):
    reason = "POK refused the credential: " + "the template parameter 'grade' is missing. " * 4
    CredentialFactory(failed=True, status_reason=reason, attempts=2, ambiguous_attempts=1)
    CredentialFactory(in_progress=True, pok_state="waitingForApproval")
    response, _statements = open_list(staff_client)
    html = response.content.decode()
    assert html.count(escape(reason)) == 1  # whole in the tooltip only,
    assert re.search(rf'title="{re.escape(escape(reason))}"[^>]*>'
                     rf"{re.escape(escape(Truncator(reason).chars(pok_admin.REASON_LENGTH)))}</span>", html)
    assert "In progress (POK: Waiting for the learner to accept it)" in html
    assert "2 POSTs, 1 unanswered" in html


def test_the_list_counts_and_pages_no_deeper_than_its_depth(staff_client, credential_admin, monkeypatch):
    """
    Issue 23: past ``LIST_DEPTH`` rows the list stops counting (``COUNT(*)`` of a ``LIMIT``ed subquery) and says that
    more match; no page lies deeper; the counts per status say "more than" past the same limit.
    """
    monkeypatch.setattr(pok_admin, "LIST_DEPTH", 6)
    monkeypatch.setattr(staff_actions, "COUNT_LIMIT", 6)
    monkeypatch.setattr(credential_admin, "list_per_page", 4)
    staff_actions.forget_status_counts()
    ids = sorted((row.id for row in make_credentials(9, failed=True)), reverse=True)
    make_credentials(2, emitted=True)
    response, statements = open_list(staff_client)
    changelist = response.context["cl"]
    assert changelist.result_count == 6 and changelist.paginator.more and changelist.paginator.num_pages == 2
    counts = [sql for sql in statements if "COUNT(" in sql.upper()]
    assert len(counts) == 1 + len(CredentialStatus.values), counts  # the list's, one per status
    assert all(re.search(r"LIMIT 7\b", sql) for sql in counts), counts
    html = response.content.decode()
    assert "More than 6 credentials match: the list shows the first 6 in this order." in html
    assert 'data-status="failed">Failed: more than 6</a>' in html
    assert 'data-status="emitted">Emitted: 2</a>' in html
    newest_first = sorted([*ids, *PokCertificate.objects.filter(status="emitted").values_list("id", flat=True)],
                          reverse=True)
    assert shown_ids(open_list(staff_client, {"p": 2})[0]) == newest_first[4:6]
    assert staff_client.get(reverse(CHANGELIST), {"p": 3}).status_code == 302  # no page past the depth
    # A narrower filter is counted exactly, without the note.
    response, _statements = open_list(staff_client, {"status__exact": "emitted"})
    assert response.context["cl"].result_count == 2 and not response.context["cl"].paginator.more
    assert "More than" not in response.content.decode().split('id="changelist"')[1]


def test_the_organization_filter_is_a_range_of_the_course_index(staff_client):
    """``LIKE 'course-v1:Org+%'`` in the column's collation: a range, where ``LIKE BINARY`` alone walks the index."""
    CredentialFactory(course_key=CourseMappingFactory(course_key="course-v1:OrgA+C1+R").course_key)
    CredentialFactory(course_key=CourseMappingFactory(course_key="course-v1:OrgAB+C1+R").course_key)
    CredentialFactory(course_key=CourseMappingFactory(course_key="ccx-v1:OrgA+C2+R+ccx@3").course_key)
    response, statements = open_list(staff_client, {"org": "OrgA"})
    assert len(shown_ids(response)) == 2
    page = [sql for sql in statements if "COUNT(" in sql.upper() and "course_key" in sql][0]
    assert re.search(r"(?<!BINARY )LIKE 'course-v1:OrgA\+%'", page) and re.search(r"LIKE 'ccx-v1:OrgA\+%'", page), page


def test_a_plain_word_queries_only_what_it_found(staff_client, search_data):
    """
    Issue 23: ``pok_credential_id = w OR user_id IN (...) OR course_key IN (...)`` is an index merge that reads every
    match; the page query holds only the alternatives the lookups found (a POK id only if one is stored).
    """
    open_list(staff_client)  # counts the credentials per status (kept for STATUS_COUNTS_TTL seconds)

    def page_query(term):
        response, statements = open_list(staff_client, {"q": term})
        return response, next(sql for sql in statements if "COUNT(" in sql.upper() and "openedx_pok_credential" in sql)

    _response, by_course = page_query("POK101")
    assert "course_key" in by_course and "user_id" not in by_course and "pok_credential_id" not in by_course
    _response, by_learner = page_query("lovelace")
    assert "user_id" in by_learner and "course_key" not in by_learner and "pok_credential_id" not in by_learner
    _response, by_nothing = page_query("zz-nothing")
    assert "pok_credential_id" in by_nothing and "user_id" not in by_nothing
    # A stored POK id that is also the beginning of a username: both.
    CredentialFactory(emitted=True, pok_credential_id="ada")
    response, both = page_query("ada")
    assert "pok_credential_id" in both and "user_id" in both
    assert PokCertificate.objects.get(pok_credential_id="ada").id in shown_ids(response)
