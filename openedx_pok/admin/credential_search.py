"""
The credential admin's search: each word of the search box routed to the lookups it can be, never ``LIKE '%word%'``
over the credentials or a join of the users table.

Digits are a learner id; a word with ``@`` an e-mail; a course key (or the beginning of one) a course; a UUID or 32
hex digits a reference, a certificate verify_uuid or a POK id. Any other word is a POK id, the beginning of a
username, a part of a learner's full name, or a course number (``POK101`` of ``course-v1:DemoX+POK101+2026``, also
written ``DemoX+POK101``). Learners and courses are looked up first, each in one statement (auth_user's username
index; the profiles' names; the course keys of the credentials, one entry per course through their index), so the
credential query itself filters on its own indexes. Words are combined with AND, as in Django's own search.
"""
import uuid
from functools import reduce
from operator import or_

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.utils.text import smart_split, unescape_string_literal
from django.utils.translation import gettext as _

from openedx_pok.admin.credential_filters import COURSE_KEY_PREFIXES, as_id
from openedx_pok.issuance import staff_actions
from openedx_pok.keys import parse_course_key
from openedx_pok.models import PokCertificate

#: Learners one search word may stand for (by username, by name); past it the first ones are shown, and staff told.
LEARNER_LOOKUP_LIMIT = 200
#: Courses one word may stand for by its number (a number shared by many runs and organizations).
COURSE_LOOKUP_LIMIT = 500


def search_terms(search_term):
    """The words of a search, as Django's own search splits them (quotes keep a phrase together)."""
    for bit in smart_split(search_term):
        if len(bit) > 1 and bit[0] in "\"'" and bit[0] == bit[-1]:
            bit = unescape_string_literal(bit)
        if bit.strip():
            yield bit.strip()


def _as_uuid(term):
    try:
        return uuid.UUID(term)
    except ValueError:
        return None


def _course_number_parts(key):
    """(org, number, run) of a stored course key: ``course-v1:Org+Number+Run``, ``ccx-v1:...``, ``Org/Number/Run``."""
    rest = key.split(":", 1)[1] if ":" in key else key
    parts = rest.replace("/", "+").split("+")
    return parts[:3] if len(parts) >= 3 else None  # org, number, run (a CCX has more after them)


def courses_numbered(term):
    """The course keys (``CourseKey``) of credentials whose course number is ``term`` (or ``Org+Number``, ...)."""
    wanted = term.lower()
    # One index entry per course (MariaDB reads the index "for group-by"): a few hundred entries, not the rows.
    keys = PokCertificate.objects.order_by().values_list("course_key", flat=True).distinct()
    found = []
    for key in keys:
        parts = _course_number_parts(str(key))
        if parts and wanted in (parts[1].lower(), f"{parts[0]}+{parts[1]}".lower(), "+".join(parts).lower()):
            found.append(key)
            if len(found) >= COURSE_LOOKUP_LIMIT:
                break
    return found


def _learners(model_admin, request, term):
    """Ids of the learners whose username starts with ``term`` or whose full name contains it (two statements)."""
    by_username = list(get_user_model().objects.filter(username__istartswith=term).order_by("username")
                       .values_list("id", flat=True)[:LEARNER_LOOKUP_LIMIT + 1])
    by_name = staff_actions.learners_named(term, LEARNER_LOOKUP_LIMIT + 1)
    if len(by_username) > LEARNER_LOOKUP_LIMIT or len(by_name) > LEARNER_LOOKUP_LIMIT:
        model_admin.message_user(request, _(
            "More than %(limit)d learners have a username starting with, or a name containing, \"%(term)s\": showing "
            "the credentials of the first %(limit)d of each. Type more of the username or name to see the others."
        ) % {"limit": LEARNER_LOOKUP_LIMIT, "term": term}, messages.WARNING)
    return sorted(set(by_username[:LEARNER_LOOKUP_LIMIT]) | set(by_name[:LEARNER_LOOKUP_LIMIT]))


def condition(model_admin, request, term):
    """The filter one search word stands for (see the module's docstring)."""
    if as_id(term) is not None:
        return Q(user_id=as_id(term))
    if "@" in term:
        matches = get_user_model().objects.filter(email__iexact=term).values_list("id", flat=True)
        return Q(user_id__in=list(matches[:LEARNER_LOOKUP_LIMIT]))
    course_key = parse_course_key(term)
    if course_key is not None:
        return Q(course_key=course_key)
    if term.lower().startswith(COURSE_KEY_PREFIXES):
        return Q(course_key__istartswith=term)
    reference = _as_uuid(term)
    if reference is not None:
        return (Q(uuid=reference) | Q(verify_uuid=reference.hex)
                | Q(pok_credential_id__in=sorted({term, str(reference)})))
    # Only what the word found goes into the credential query: ``a = x OR b IN (...) OR c IN (...)`` over three
    # indexes is an index merge that reads and sorts every matching row for a page of 100 (1.5 s for a course of
    # 10,000 credentials among a million), where one alternative is a range of its own index, in id order.
    found = [Q(user_id__in=learners)] if (learners := _learners(model_admin, request, term)) else []
    found += [Q(course_key__in=courses)] if (courses := courses_numbered(term)) else []
    if not found or PokCertificate.objects.filter(pok_credential_id=term).exists():
        found.append(Q(pok_credential_id=term))
    return reduce(or_, found)
