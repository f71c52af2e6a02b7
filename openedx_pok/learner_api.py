"""
The learner API the MFEs call: ``GET /pok/api/v1/learner/credentials[?course_id=<course key>]``.

The Learning MFE's progress page (slot ``org.openedx.frontend.learning.progress_certificate_status.v1``) and the
learner dashboard (slot ``org.openedx.frontend.learner_dashboard.widget_sidebar.v1``) show the requesting learner
where their credentials stand and what they can do next. Answers only for ``request.user``, newest first, at most
:data:`LIMIT` of them with their total, from the database only: two indexed statements (one for one course), a third
(the learner's profile) only when a credential is held, and no POK call. The answer also carries the widgets' own
few words (``labels``), translated here like the rest. An entry point: it calls ``api`` and the
services (the public status, the status payload with its share links, the learner's fix of a held credential).

Authenticated as the LMS's own MFE APIs are: the JWT the MFEs send (the ``edx-jwt-cookie-header-payload`` and
``edx-jwt-cookie-signature`` cookies, joined by the LMS's ``JwtAuthCookieMiddleware``, or ``Authorization: JWT``)
through edx-drf-extensions' ``JwtAuthentication``, then the session. The LMS always has edx-drf-extensions; where it
is missing (the plugin's own tox environments), the session alone. It is imported at the first request, never when
the LMS loads its URLs: it reads the LMS's settings as it is imported (``SECRET_KEY``), which some settings phases of
an image build do not have yet, and nothing of the plugin may stop the LMS from starting.
"""
from functools import cache

from django.conf import settings
from django.utils.translation import gettext as _
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from openedx_pok import api
from openedx_pok.course_setup.configuration import mapping_for
from openedx_pok.course_setup.payload import LearnerFix
from openedx_pok.issuance import staff_actions
from openedx_pok.issuance.states import CredentialStatus, PublicStatus
from openedx_pok.keys import parse_course_key
from openedx_pok.models import PokCertificate

#: Credentials one answer lists at most (``count`` says how many there are).
LIMIT = 100
#: POK's state of a credential that waits for its receiver to accept it from POK's e-mail (docs/pok-api.rst).
WAITING_FOR_THE_LEARNER = "waitingForApproval"
#: What the widgets read nothing from and a learner has no use for; the rest of the row is read.
_UNREAD = ("pok_response", "custom_parameters", "tags")


class NextStep:
    """What the learner can do next, for the widgets to choose an icon or a button (``title``/``message`` say it)."""

    NONE = "none"                        # on its way, or staff's side (delayed), or revoked: nothing to do
    SET_FULL_NAME = "set_full_name"      # held for their full name: their account settings (``action.url``)
    UPDATE_EMAIL = "update_email"        # held for their e-mail address: their account settings
    ACCEPT_BY_EMAIL = "accept_by_email"  # POK e-mailed them the credential to accept
    WAIT_UNTIL_DATE = "wait_until_date"  # scheduled: issued on ``available_date`` (null: a date not known yet)
    VIEW = "view"                        # emitted: its page on POK (``view_url``) and share links


def account_settings_url(request):
    """
    The learner's account settings as an absolute address (the widgets run on the MFEs' host): the Account MFE where
    the LMS has one, else the LMS's ``/account/settings``, as the held notice links it (``pages.render``) from
    ``lms/envs/common.py`` (``ACCOUNT_MICROFRONTEND_URL``) and ``lms/urls.py``.
    """
    return getattr(settings, "ACCOUNT_MICROFRONTEND_URL", None) or request.build_absolute_uri("/account/settings")


def _wording(row, state, payload, account_url):
    """(next step, title, one-line message, action {label, url} or None) of a credential, in the request's language."""
    if state == PublicStatus.EMITTED:
        return (NextStep.VIEW, _("Your credential is ready"),
                _("Your verifiable credential is on POK: view it and share it."),
                {"label": _("View your credential"), "url": payload["view_url"]})
    if state == PublicStatus.REVOKED:
        return (NextStep.NONE, _("Your credential was revoked"),
                _("The certificate of this course was revoked, and its credential is no longer valid."), None)
    if state == PublicStatus.SCHEDULED:
        # The status endpoint's sentence: the course's certificate release date, or that it has none yet.
        return NextStep.WAIT_UNTIL_DATE, _("Your credential is scheduled"), payload["message"], None
    if state == PublicStatus.DELAYED:
        # Held for the learner's own data (read from their account as it is now): what to fix, and where.
        fix = staff_actions.learner_fix_for(row) if row.status == CredentialStatus.HELD else ""
        if fix == LearnerFix.NAME:
            return (NextStep.SET_FULL_NAME, _("Your credential is being prepared"),
                    _("Your credential needs your full name, as it should appear on it: set it, and the credential is "
                      "then issued by itself."),
                    {"label": _("Set your full name in your account settings"), "url": account_url})
        if fix == LearnerFix.EMAIL:
            return (NextStep.UPDATE_EMAIL, _("Your credential is being prepared"),
                    _("Your credential is sent by e-mail, and the address in your account cannot receive it: update "
                      "it, and the credential is then issued by itself."),
                    {"label": _("Update your e-mail address in your account settings"), "url": account_url})
        # Staff's side: the reason stays with them; the reference is what support asks for.
        return (NextStep.NONE, _("Your credential is being prepared"),
                _("Your credential needs a little more time. If you contact support, please mention its reference: "
                  "{reference}.").format(reference=payload["reference"]), None)
    if row.pok_state == WAITING_FOR_THE_LEARNER:
        return (NextStep.ACCEPT_BY_EMAIL, _("Accept your credential"),
                _("POK sent you an e-mail to accept your credential: accept it there to receive it."), None)
    return (NextStep.NONE, _("Your credential is being issued"),
            _("It is being issued as a verifiable credential on POK, which usually takes a few moments."), None)


def credential_item(row, account_url):
    """One credential as the widgets read it: the status endpoint's payload, with the words and the next step."""
    payload = api.status_payload(row)
    state = PublicStatus(payload["status"])
    step, title, message, action = _wording(row, state, payload, account_url)
    return {
        "course_id": payload["course_id"],
        # The course's name as the credential carries it (its certificate title or display name), once prepared.
        "course_name": row.title or None,
        "reference": payload["reference"],
        "status": payload["status"],
        "status_label": str(state.label),
        "title": title,
        "message": message,
        "next_step": step,
        "action": action,
        "available_date": payload.get("available_date"),
        "emitted": payload["emitted"],
        "view_url": payload["view_url"],
        "share": payload["share"],
        "linkedin_url": next((link["url"] for link in payload["share"] if link["id"] == "linkedin"), None),
    }


def widget_labels():
    """
    The few words of the MFE widgets themselves (the credentials' own words are in each item), in the request's
    language: the widgets are built into the MFEs from the Tutor plugin, without a message catalog of their own.
    """
    return {
        "heading": _("My credentials"),
        "status": _("Status"),
        "open": _("Open"),
        "share_linkedin": _("Share on LinkedIn"),
        "loading": _("Checking for updates…"),
        "error": _("Your credential's status could not be updated. Reload the page to try again."),
    }


def learner_credentials(user, course_key=None):
    """
    (rows newest first, at most :data:`LIMIT`; their total) of the learner's credentials of mapped courses, or of
    ``course_key`` only. A course whose mapping was removed is left out, as its certificate page is the Open edX one.
    """
    credentials = PokCertificate.objects.filter(user_id=user.id)
    if course_key is not None:
        if mapping_for(course_key) is None:  # cached: no query
            return [], 0
        row = credentials.defer(*_UNREAD).filter(course_key=course_key).one()
        return ([row], 1) if row is not None else ([], 0)
    # The learner's courses first: an index-only read of (user, course) that also gives the total.
    course_keys = list(credentials.values_list("course_key", flat=True))
    unmapped = [key for key in course_keys if mapping_for(key) is None]
    total = len(course_keys) - len(unmapped)
    if not total:
        return [], 0
    if unmapped:
        credentials = credentials.exclude(course_key__in=unmapped)
    return list(credentials.defer(*_UNREAD).order_by("-created", "-id")[:LIMIT]), total


@cache
def authentication_classes():
    """The LMS's MFE API authentication: edx-drf-extensions' JWT, then the session; the session alone without it."""
    try:
        # At the first request, not at import: see the module's docstring.
        from edx_rest_framework_extensions.auth.jwt.authentication import JwtAuthentication  # noqa: PLC0415
    except ImportError:  # not in the LMS, which always has it: the session alone, and nothing to log about it
        return (SessionAuthentication,)
    return (JwtAuthentication, SessionAuthentication)


class LearnerCredentialsView(APIView):
    """``GET /pok/api/v1/learner/credentials``: the requesting learner's credentials, or a course's (``course_id``)."""

    permission_classes = [IsAuthenticated]
    renderer_classes = [JSONRenderer]

    def get_authenticators(self):
        return [authentication() for authentication in authentication_classes()]

    def get(self, request):
        course_key = None
        if "course_id" in request.query_params:
            course_key = parse_course_key(request.query_params["course_id"])
            if course_key is None:
                return Response({"detail": _("The course_id parameter is not a course key.")}, status=400)
        rows, total = learner_credentials(request.user, course_key)
        account_url = account_settings_url(request)
        for row in rows:
            row.user = request.user  # the learner read already: their held credential's fix costs no query for it
        response = Response({"count": total, "limit": LIMIT, "labels": widget_labels(),
                             "results": [credential_item(row, account_url) for row in rows]})
        # The state moves as the credential progresses: never let a browser or a proxy keep an old answer.
        response["Cache-Control"] = "no-store"
        return response
