"""
Builds the body of ``POST /credential`` from Open edX data, or explains why it cannot.

Nothing here talks to POK or writes to the database: the issuance task gathers the inputs (through ``compat``),
calls :func:`build_credential_payload` and either sends the result or holds the credential with the reason of the
:class:`~openedx_pok.exceptions.LearnerDataError` (``PayloadError`` here). The rules follow the POK contract: every
declared template parameter present and non-empty, an emission date with an explicit UTC offset, and never an empty
or "undefined" receiver name.
"""
import math
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.utils.translation import gettext as _

from openedx_pok.course_setup import parameters
from openedx_pok.exceptions import LearnerDataError

# Literal values that broken front-ends store instead of a name; never send them as a person's name.
PLACEHOLDER_NAMES = {"undefined", "null", "none", "nan", "n/a", "-", "."}

DATE_FORMATS = {"dd/MM/yyyy": "%d/%m/%Y", "MM/dd/yyyy": "%m/%d/%Y"}
# Course titles and organization names may be longer in Open edX than POK shows or the credential row keeps.
MAX_TEXT_LENGTH = 255

_BCP47 = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


# The payload's own error: the learner's data (or the template's parameters) cannot make a valid credential.
PayloadError = LearnerDataError


@dataclass(frozen=True)
class IssuanceContext:
    """Everything the payload is built from, gathered by the issuance task."""

    course: object                 # compat.CourseInfo
    certificate: object            # compat.CertificateInfo
    template: object               # client.Template (its declared parameters)
    email: str
    profile_name: str | None
    language: str | None
    platform_name: str
    emission_type: str
    date_format: str
    skip_acceptance: bool
    page_id: str = ""
    grade: float | None = None
    tags: tuple = field(default_factory=tuple)
    username: str = ""
    parameter_sources: dict = field(default_factory=dict)  # the mapping's {parameter id: source spec}


def clean_text(value):
    """Collapse whitespace and drop control characters so a name or title prints as one clean line."""
    value = str(value or "")
    if not (value.isascii() and value.isprintable()):
        # Printable ASCII has no control character to drop: only other text is read character by character (a
        # payload cleans a score of values, this was most of its time).
        value = "".join(ch for ch in value if unicodedata.category(ch)[0] != "C" or ch in " \t\n")
    return " ".join(value.split())


def split_name(full_name):
    """
    Split a certificate name into (first name, last name) without dropping a word.

    "Last, First" (one comma) is read as written; otherwise the first half of the words (rounded down, at least
    one) is the first name. One word gives an empty last name, which POK accepts. Returns None when there is no
    usable name, so the caller holds the credential instead of sending an empty or placeholder name.
    """
    name = clean_text(full_name)
    if not name or name.lower() in PLACEHOLDER_NAMES or not any(ch.isalnum() for ch in name):
        return None
    if name.count(",") == 1:
        last, first = (clean_text(part) for part in name.split(","))
        if first and last:
            return first, last
    # Commas that do not separate "Last, First" are punctuation, not words.
    name = clean_text(name.replace(",", " "))
    words = name.split(" ")
    cut = max(1, len(words) // 2)
    return " ".join(words[:cut]), " ".join(words[cut:])


def language_tag(preference):
    """Turn an Open edX language code ("pt-br", "zh_HANS", "es-419") into a BCP-47 tag, or None if unusable."""
    value = (preference or "").strip()
    if not value or not _BCP47.match(value):
        return None
    parts = re.split(r"[-_]", value)
    tag = [parts[0].lower()]
    for part in parts[1:]:
        if len(part) == 4 and part.isalpha():
            tag.append(part.title())        # script, e.g. Hans
        elif len(part) == 2 and part.isalpha():
            tag.append(part.upper())        # region, e.g. BR
        else:
            tag.append(part.lower())        # numeric region (419) or variant
    return "-".join(tag)


def iso_datetime(value):
    """ISO 8601 with an explicit UTC offset; naive datetimes are taken as UTC, as the LMS stores them."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="seconds")


def format_date(value, date_format):
    """A date as POK prints it (the configured dateFormat), for parameters that carry dates."""
    if value is None:
        return ""
    return value.strftime(DATE_FORMATS.get(date_format, "%d/%m/%Y"))


def usable_grade(value):
    """A grade as a float in [0, 1], or None when it is not one (``"nan"``, ``inf``, ``1.7``, ``-0.5``, ``"A+"``)."""
    try:
        grade = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return grade if math.isfinite(grade) and 0.0 <= grade <= 1.0 else None


def grade_percent(context):
    """
    The grade as a whole percentage, from the LMS CourseGrade when usable, else the certificate's grade.

    "" when neither is a number in [0, 1]: a template parameter that needs the grade then holds the credential
    with a reason instead of printing "170%" or "nan%" on it.
    """
    grade = usable_grade(context.grade)
    if grade is None:
        grade = usable_grade(context.certificate.grade)
    if grade is None:
        return ""
    return f"{round(grade * 100)}%"


def fit(text, limit=MAX_TEXT_LENGTH):
    """``text`` cut to ``limit`` characters (with an ellipsis): what POK prints and the credential row stores."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


GRADE_PARAMETERS = frozenset({"grade", "score"})


def _normalize(key):
    return re.sub(r"[^a-z0-9]", "", str(key or "").lower())


def builtin_parameter_values(context):
    """
    Values of the parameters a template commonly declares, keyed by normalized name.

    A parameter is matched by its id first and then by its label, each lower-cased without punctuation, so
    "course_name", "Course name" and "courseName" all find the course name.
    """
    course, certificate = context.course, context.certificate
    signatories = course.signatories or ()
    first_signatory = signatories[0] if signatories else None
    # Each value once, under all its names.
    grade, title, emitter = grade_percent(context), course_title(course), emitter_name(course)
    start, end = format_date(course.start, context.date_format), format_date(course.end, context.date_format)
    issued = format_date(certificate.created, context.date_format)
    values = {
        "grade": grade,
        "score": grade,
        "platform": context.platform_name,
        "platformname": context.platform_name,
        "course": title,
        "coursename": title,
        "coursetitle": title,
        "title": title,
        "courseid": str(course.course_key),
        "coursekey": str(course.course_key),
        "organization": emitter,
        "org": emitter,
        "emitter": emitter,
        "institution": emitter,
        "startdate": start,
        "coursestart": start,
        "enddate": end,
        "courseend": end,
        "date": issued,
        "issuedate": issued,
        "certificatedate": issued,
        "certificateid": certificate.verify_uuid,
        "verifyuuid": certificate.verify_uuid,
        "mode": certificate.mode,
        "signatory": first_signatory.name if first_signatory else "",
        "signatoryname": first_signatory.name if first_signatory else "",
        "signatorytitle": first_signatory.title if first_signatory else "",
        "signatoryorganization": first_signatory.organization if first_signatory else "",
        "signatories": ", ".join(s.name for s in signatories),
    }
    for index, signatory in enumerate(signatories, start=1):
        values[f"signatory{index}"] = signatory.name
        values[f"signatory{index}name"] = signatory.name
        values[f"signatory{index}title"] = signatory.title
    return values


# Normalized names the automatic resolution knows (the keys of builtin_parameter_values, signatory<n>... aside).
AUTOMATIC_NAMES = frozenset({
    "grade", "score", "platform", "platformname", "course", "coursename", "coursetitle", "title", "courseid",
    "coursekey", "organization", "org", "emitter", "institution", "startdate", "coursestart", "enddate", "courseend",
    "date", "issuedate", "certificatedate", "certificateid", "verifyuuid", "mode", "signatory", "signatoryname",
    "signatorytitle", "signatoryorganization", "signatories",
})
_AUTOMATIC_SIGNATORY = re.compile(r"^signatory[0-9]+(name|title)?$")


def has_automatic_source(parameter_id, label=""):
    """Whether the automatic resolution (by id, then label) knows what to put in this parameter."""
    return any(name in AUTOMATIC_NAMES or _AUTOMATIC_SIGNATORY.match(name)
               for name in (_normalize(parameter_id), _normalize(label)) if name)


def source_values(context):
    """The value of every built-in source of ``parameters.BUILTIN_SOURCES`` (and the signatories) for an issuance."""
    course, certificate = context.course, context.certificate
    names = split_name(context.profile_name) or ("", "")
    values = {
        "learner.full_name": clean_text(context.profile_name) if split_name(context.profile_name) else "",
        "learner.first_name": names[0],
        "learner.last_name": names[1],
        "learner.username": context.username,
        "learner.email": (context.email or "").strip(),
        "grade.percent": grade_percent(context),
        "grade.letter": clean_text(certificate.grade),
        "course.title": course_title(course),
        "course.number": getattr(course.course_key, "course", "") or "",
        "course.organization": emitter_name(course),
        "course.start": format_date(course.start, context.date_format),
        "course.end": format_date(course.end, context.date_format),
        "course.language": course.language or "",
        "course.key": str(course.course_key),
        "certificate.date": format_date(certificate.created or certificate.modified, context.date_format),
        "certificate.mode": certificate.mode,
        "certificate.verify_uuid": certificate.verify_uuid,
        "platform.name": context.platform_name,
    }
    for index, signatory in enumerate(course.signatories or (), start=1):
        values[f"signatory.{index}.name"] = signatory.name
        values[f"signatory.{index}.title"] = signatory.title
        values[f"signatory.{index}.organization"] = signatory.organization
    return values


def resolve_custom_parameters(context):
    """Every parameter the template declares, resolved and non-empty; PayloadError names the ones that are not."""
    values = builtin_parameter_values(context)
    sources, chosen = context.parameter_sources or {}, None
    resolved, missing, missing_grade, empty_sources = {}, [], [], []
    for parameter in context.template.custom_parameters:
        spec = sources.get(parameter.id)
        if spec:
            chosen = source_values(context) if chosen is None else chosen
            value = clean_text(parameters.resolve(spec, chosen, context))
            if value:
                resolved[parameter.id] = value
            else:
                empty_sources.append(_("{parameter} (source: {source})").format(
                    parameter=parameter.id, source=parameters.describe(spec)))
            continue
        value = values.get(_normalize(parameter.id)) or values.get(_normalize(parameter.label))
        value = clean_text(value)
        if value:
            resolved[parameter.id] = value
        else:
            missing.append(parameter.id)
            if {_normalize(parameter.id), _normalize(parameter.label)} & GRADE_PARAMETERS:
                missing_grade.append(parameter.id)
    if empty_sources:
        raise PayloadError(
            _("Template {template}: the source chosen for these parameters gives no value for this learner: "
              "{names}.").format(template=context.template.id, names=", ".join(empty_sources))
        )
    if missing_grade and len(missing_grade) == len(missing):
        raise PayloadError(
            _("Template {template} prints the grade ({names}), but the grade the LMS gave is not a number between 0 "
              "and 1.").format(template=context.template.id, names=", ".join(missing_grade))
        )
    if missing:
        raise PayloadError(
            _("Template {template} declares parameters that have no value for this course: {names}.").format(
                template=context.template.id, names=", ".join(missing)
            )
        )
    return resolved


def course_title(course):
    """The title printed on the credential: the certificate configuration's course title, else the course name."""
    return clean_text(course.certificate_title) or clean_text(course.display_name) or str(course.course_key)


def emitter_name(course):
    """Who issues the credential: the organization's long name, else its display name or short name."""
    return clean_text(course.org_name) or clean_text(course.org)


class LearnerFix:
    """What a learner must fix in their account before a credential can be made for them (a held credential)."""

    NAME = "name"    # no usable full name in the profile
    EMAIL = "email"  # no valid e-mail address


def learner_fix(profile_name, email):
    """The :class:`LearnerFix` the learner's data needs first, or "" when it can make a credential."""
    if split_name(profile_name) is None:
        return LearnerFix.NAME
    if not _EMAIL.match((email or "").strip()):
        return LearnerFix.EMAIL
    return ""


def build_receiver(context):
    """The receiver block; PayloadError when the learner has no usable name or email."""
    fix = learner_fix(context.profile_name, context.email)
    if fix == LearnerFix.NAME:
        raise PayloadError(_("The learner has no usable full name in their profile; ask them to set it."))
    if fix == LearnerFix.EMAIL:
        raise PayloadError(_("The learner has no valid email address."))
    names, email = split_name(context.profile_name), context.email.strip()
    receiver = {"firstName": names[0], "lastName": names[1], "email": email}
    tag = language_tag(context.language)
    if tag:
        receiver["languageTag"] = tag
    return receiver


def build_credential_payload(context):
    """The full ``POST /credential`` body; raises PayloadError with the reason when it cannot be built."""
    certificate = context.certificate
    emission_date = certificate.created or certificate.modified or datetime.now(UTC)
    customization = {
        "template": {"id": context.template.id, "customParameters": resolve_custom_parameters(context)},
    }
    if context.page_id:
        customization["page"] = context.page_id
    return {
        "credential": {
            "emissionType": context.emission_type,
            "dateFormat": context.date_format if context.date_format in DATE_FORMATS else "dd/MM/yyyy",
            "emissionDate": iso_datetime(emission_date),
            "title": fit(course_title(context.course)),
            "emitter": fit(emitter_name(context.course)),
            "tags": list(context.tags),
            "skipAcceptance": bool(context.skip_acceptance),
        },
        "receiver": build_receiver(context),
        "customization": customization,
    }


def build_preview_payload(context):
    """
    The ``POST /template/preview`` body for a staff preview: the course's real title, emitter and parameters, with a
    sample learner. Raises PayloadError (naming the parameters) when the template cannot be filled.
    """
    full = build_credential_payload(context)
    credential = {key: value for key, value in full["credential"].items() if key not in ("tags", "skipAcceptance")}
    receiver = {key: value for key, value in full["receiver"].items() if key in ("firstName", "lastName",
                                                                                  "languageTag")}
    return {"credential": credential, "receiver": receiver,
            "customization": {"template": full["customization"]["template"]}}
