"""
Where a template parameter takes its value from: the registry of sources a course mapping can choose.

A course mapping's ``parameter_sources`` is ``{parameter id: spec}``, a spec being ``{"source": "learner.first_name"}``,
``{"source": "fixed", "value": "..."}`` or ``{"source": "custom.<name>"}`` for an operator's own function registered
in ``POK_PARAMETER_SOURCES`` (``{"<name>": "dotted.path.to.function"}`` or ``{"<name>": {"function": ...,
"label": ...}}``; the function takes the issuance context and returns text). A parameter without a spec keeps the
automatic resolution by id, then label (``payload.builtin_parameter_values``).

The values themselves are computed by ``payload.source_values`` (which owns the name, date and grade rules); this
module only names the sources, checks specs and picks the value, so the admin form, the doctor and the payload
agree on one list.
"""
import logging
import re

from django.conf import settings
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

log = logging.getLogger(__name__)

FIXED = "fixed"
CUSTOM_PREFIX = "custom."
# Signatories offered in pickers; any number is accepted in a spec.
PICKER_SIGNATORIES = 3

BUILTIN_SOURCES = {
    "learner.full_name": gettext_lazy("Learner: full name"),
    "learner.first_name": gettext_lazy("Learner: first name"),
    "learner.last_name": gettext_lazy("Learner: last name"),
    "learner.username": gettext_lazy("Learner: username"),
    "learner.email": gettext_lazy("Learner: email"),
    "grade.percent": gettext_lazy("Grade: percentage"),
    "grade.letter": gettext_lazy("Grade: as the LMS gives it on the certificate"),
    "course.title": gettext_lazy("Course: title"),
    "course.number": gettext_lazy("Course: number"),
    "course.organization": gettext_lazy("Course: organization name"),
    "course.start": gettext_lazy("Course: start date"),
    "course.end": gettext_lazy("Course: end date"),
    "course.language": gettext_lazy("Course: language"),
    "course.key": gettext_lazy("Course: course key"),
    "certificate.date": gettext_lazy("Certificate: date"),
    "certificate.mode": gettext_lazy("Certificate: mode"),
    "certificate.verify_url": gettext_lazy("Certificate: verification URL"),
    "platform.name": gettext_lazy("Platform name"),
}
_SIGNATORY = re.compile(r"^signatory\.([1-9][0-9]?)\.(name|title|organization)$")
_SIGNATORY_FIELDS = {"name": gettext_lazy("name"), "title": gettext_lazy("title"),
                     "organization": gettext_lazy("organization")}


def custom_sources():
    """{"custom.<name>": (dotted path, label)} from ``POK_PARAMETER_SOURCES``; malformed entries are skipped here
    (the doctor reports them, see :func:`settings_problems`)."""
    found = {}
    configured = getattr(settings, "POK_PARAMETER_SOURCES", None) or {}
    if not isinstance(configured, dict):
        return found
    for name, entry in configured.items():
        path, label = (entry, None) if isinstance(entry, str) else (
            (entry.get("function"), entry.get("label")) if isinstance(entry, dict) else (None, None))
        if isinstance(path, str) and path:
            found[f"{CUSTOM_PREFIX}{name}"] = (path, label or name)
    return found


def settings_problems():
    """Messages about a malformed ``POK_PARAMETER_SOURCES`` (not a dict, an entry without a function path)."""
    configured = getattr(settings, "POK_PARAMETER_SOURCES", None) or {}
    if not isinstance(configured, dict):
        return [_("POK_PARAMETER_SOURCES must be a dictionary of name -> dotted path of a function.")]
    problems = []
    for name in configured:
        if f"{CUSTOM_PREFIX}{name}" not in custom_sources():
            problems.append(_("POK_PARAMETER_SOURCES entry '{name}' needs the dotted path of a function.").format(
                name=name))
    return problems


def choices():
    """(source id, label) of every source a mapping may pick, in the order the admin shows them."""
    options = [(source, str(label)) for source, label in BUILTIN_SOURCES.items()]
    for number in range(1, PICKER_SIGNATORIES + 1):
        for field_name, field_label in _SIGNATORY_FIELDS.items():
            options.append((f"signatory.{number}.{field_name}",
                            _("Signatory {number}: {field}").format(number=number, field=field_label)))
    options.append((FIXED, _("Fixed text")))
    options += [(source, _("Custom: {label}").format(label=label)) for source, (_path, label) in
                custom_sources().items()]
    return options


def spec_error(spec):
    """Why ``spec`` is not a usable source (a message), or None."""
    if not isinstance(spec, dict) or not isinstance(spec.get("source"), str):
        return _("a source must be an object like {\"source\": \"learner.first_name\"}")
    source = spec["source"]
    if source == FIXED:
        value = spec.get("value")
        return None if isinstance(value, str) and value.strip() else _("a fixed text must not be empty")
    if source in BUILTIN_SOURCES or _SIGNATORY.match(source) or source in custom_sources():
        return None
    return _("unknown source '{source}'").format(source=source)


def describe(spec):
    """The source of a spec in words for reasons and messages (a fixed text is not repeated)."""
    if isinstance(spec, dict) and spec.get("source") == FIXED:
        return _("fixed text")
    return str(spec.get("source")) if isinstance(spec, dict) else str(spec)


def resolve(spec, values, context):
    """
    The text ``spec`` gives for this issuance ("" when it gives nothing, which holds the credential).

    ``values`` are ``payload.source_values(context)``. An operator's function that fails gives "" (logged with
    its name and the exception type), so the credential is held with a reason instead of failing the task.
    """
    if spec_error(spec):
        return ""
    source = spec["source"]
    if source == FIXED:
        return spec["value"]
    if source == "certificate.verify_url":
        uuid = values.get("certificate.verify_uuid") or ""
        root = str(getattr(settings, "LMS_ROOT_URL", "") or "").rstrip("/")
        return f"{root}/certificates/{uuid}" if uuid and root else ""
    if source.startswith(CUSTOM_PREFIX):
        path, _label = custom_sources()[source]
        try:
            value = import_string(path)(context)
        except Exception as exc:  # noqa: BLE001 - an operator's code: any failure holds the credential with a reason
            log.warning("POK: parameter source %s failed (%s)", source, type(exc).__name__)
            return ""
        return "" if value is None else str(value)
    return str(values.get(source) or "")
