"""
How a POK credential state maps onto the plugin's local status.

POK publishes no list of states; this follows docs in ``shared/pok-api.md``. An unknown state is kept verbatim on
the row, treated as in progress (so reconcile keeps polling it) and logged once per process as a warning.
"""
import logging

from openedx_pok.models import CredentialStatus

log = logging.getLogger(__name__)

IN_PROGRESS_STATES = frozenset({"pending", "processing"})
WAITING_STATES = frozenset({"waitingForApproval", "draft", "requestingSignature", "requestingChange", "deferred"})
FAILED_STATES = frozenset({"signatureRejected", "aborted"})

_warned_unknown = set()


def local_status_for(pok_state):
    """The local status for a POK state (emitted, failed, revoked, otherwise in progress)."""
    if pok_state == "emitted":
        return CredentialStatus.EMITTED
    if pok_state == "revoked":
        return CredentialStatus.REVOKED
    if pok_state in FAILED_STATES:
        return CredentialStatus.FAILED
    if pok_state not in IN_PROGRESS_STATES and pok_state not in WAITING_STATES and pok_state not in _warned_unknown:
        _warned_unknown.add(pok_state)
        log.warning("POK returned an unknown credential state %r; treating it as in progress", pok_state)
    return CredentialStatus.IN_PROGRESS
