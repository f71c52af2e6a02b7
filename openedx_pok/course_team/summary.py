"""
What the course team's POK tab shows of one course: the credentials per status, and the held and failed ones with
their reason and what to do about it.

Two queries whatever the course's size: the counts per status (the course's rows through its index) and the newest
:data:`PROBLEMS_SHOWN` held or failed credentials as plain values with the learner's username (one join). The rest
are in the course's CSV.
"""
from dataclasses import dataclass

from django.db.models import Count
from django.utils.translation import gettext as _

from openedx_pok.issuance.states import RETRIABLE_BY_STAFF, CredentialStatus
from openedx_pok.models import PokCertificate

#: Held and failed credentials listed on the page (the newest first); the CSV has every one.
PROBLEMS_SHOWN = 50


@dataclass(frozen=True)
class Problem:
    """A held or failed credential as the course team sees it."""

    reference: str
    user_id: int
    username: str
    status: str
    status_label: str
    reason: str
    advice: str
    attempts: int
    modified: object


@dataclass(frozen=True)
class CourseSummary:
    """The course's credentials: ``counts`` as (status, label, number) in life-cycle order, and the problems."""

    counts: tuple
    total: int
    problems: tuple
    problems_total: int

    @property
    def problems_not_shown(self):
        return max(0, self.problems_total - len(self.problems))


def advice(status, retryable, possible_duplicate):
    """What the course team can do about a held or failed credential, in a sentence."""
    if possible_duplicate:
        return _("POK may have received this credential twice: check on POK that the learner has only one before "
                 "you retry it.")
    if status == CredentialStatus.HELD:
        return _("Fix what the reason names (for example the learner's full name in their account, or the course's "
                 "POK set-up), then retry.")
    if retryable:
        return _("POK could not be reached or was busy. It is sent again automatically; Retry sends it now.")
    return _("POK refused it. Fix what the reason names, then retry; if it fails again, give the reference to your "
             "platform's POK administrator.")


def course_summary(course_key, shown=PROBLEMS_SHOWN):
    """The :class:`CourseSummary` of the course (two queries)."""
    found = dict(PokCertificate.objects.filter(course_key=course_key).order_by().values_list("status")
                 .annotate(Count("id")))
    counts = tuple((status.value, status.label, found[status.value]) for status in CredentialStatus
                   if found.get(status.value))
    labels = dict(CredentialStatus.choices)
    rows = (PokCertificate.objects.filter(course_key=course_key, status__in=RETRIABLE_BY_STAFF)
            .order_by("-modified", "-id")
            .values("uuid", "user_id", "user__username", "status", "status_reason", "retryable", "possible_duplicate",
                    "attempts", "modified")[:shown])
    problems = tuple(
        Problem(reference=str(row["uuid"]), user_id=row["user_id"], username=row["user__username"] or "",
                status=row["status"], status_label=labels.get(row["status"], row["status"]),
                reason=row["status_reason"] or _("No reason recorded."),
                advice=advice(row["status"], row["retryable"], row["possible_duplicate"]),
                attempts=row["attempts"], modified=row["modified"])
        for row in rows
    )
    return CourseSummary(counts=counts, total=sum(found.values()), problems=problems,
                         problems_total=sum(found.get(status, 0) for status in RETRIABLE_BY_STAFF))
