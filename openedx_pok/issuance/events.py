"""
Analytics tracking events of the credential life cycle: ``edx.pok.credential.requested / emitted / failed / revoked``.

Emitted through the LMS's event tracker (``eventtracking``, reached through ``compat``) where it is installed, and
nowhere else. The data are ids and the status only (user id, course id, the credential's reference, its POK id),
never an email or a name: analytics pipelines keep events for years and copy them widely. Emitting never raises:
an analytics outage must not fail an issuance, a revocation or the LMS request that caused it.
"""
import logging

from openedx_pok import compat

log = logging.getLogger(__name__)

REQUESTED = "edx.pok.credential.requested"
EMITTED = "edx.pok.credential.emitted"
FAILED = "edx.pok.credential.failed"
REVOKED = "edx.pok.credential.revoked"

#: The event a stored POK answer sends, by the local status it led to (other outcomes send none).
OUTCOME_EVENTS = {"emitted": EMITTED, "failed": FAILED}


def event_data(row, **values):
    """The event's data: ids and the status of credential ``row``; ``values`` (e.g. a newer status) win."""
    data = {
        "user_id": row.user_id,
        "course_id": str(row.course_key),
        "reference": str(row.uuid),
        "pok_id": row.pok_credential_id or "",
        "status": str(row.status),
    }
    data.update({key: ("" if value is None else str(value)) for key, value in values.items()})
    return data


def emit(name, row, **values):
    """Emit tracking event ``name`` for credential ``row``; returns whether a tracker took it."""
    try:
        return compat.emit_tracking_event(name, event_data(row, **values))
    except Exception:
        log.warning("POK: could not emit tracking event %s for credential %s", name, row.id, exc_info=True)
        return False


def emit_outcome(row, status, **values):
    """After POK's answer was stored: ``emitted`` or ``failed`` for those statuses, nothing for the others."""
    name = OUTCOME_EVENTS.get(str(status))
    return emit(name, row, status=status, **values) if name else False
