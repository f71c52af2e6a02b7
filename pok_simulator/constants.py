"""
Names and defaults shared by every module of the POK simulator.

Kept apart so the value types, the validation, the endpoint handlers and the command line agree on one set of
defaults (the default organization, its key, templates and pages) without importing one another.
"""
from __future__ import annotations

#: The key the simulator accepts unless told otherwise; UUID-shaped like real POK keys. Not a secret.
DEFAULT_API_KEY = "5e3c7a1d-0b8f-4c2e-9a6d-7f1e2b3c4d5e"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_CLI_PORT = 8765
#: What a list returns when the caller sends no ``limit``: small on purpose, so a client that forgets to ask for a
#: large limit sees truncated lists in tests instead of in production.
DEFAULT_LIST_LIMIT = 10
#: Request bodies above this are refused; no POK payload comes near it.
MAX_BODY_BYTES = 1024 * 1024

#: Endpoint names: used to target faults and to count requests.
ENDPOINTS = frozenset({
    "get_organization",
    "list_templates",
    "get_template",
    "preview_template",
    "list_pages",
    "issue_credential",
    "get_credential",
    "get_credential_image",
    "view_page",
    "image_file",
})
#: Endpoint name recorded for requests that match no route (or the wrong method); they are counted, never faulted.
UNKNOWN_ENDPOINT = "unknown"

EMISSION_MODES = ("sync", "async")
EMISSION_TYPES = ("pok", "blockchain")
DATE_FORMATS = ("dd/MM/yyyy", "MM/dd/yyyy")
#: States in which a credential has no public page yet, so ``viewUrl`` is removed when one of them is forced.
NOT_YET_EMITTED_STATES = frozenset({
    "pending",
    "processing",
    "waitingForApproval",
    "draft",
    "requestingSignature",
    "requestingChange",
    "deferred",
})

DEFAULT_ORGANIZATION_NAME = "Simulated Org"
DEFAULT_WALLET = "0xsim"
DEFAULT_AVAILABLE_CREDITS = 10
DEFAULT_POLLS_UNTIL_EMITTED = 2
DEFAULT_TEMPLATES: tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...] = (
    ("tpl-basic", "Basic certificate", ()),
    ("tpl-grade", "Certificate with grade", (("grade", "Grade"), ("platform", "Platform"))),
)
DEFAULT_PAGES: tuple[tuple[str, str], ...] = (("page-1", "Default page"),)
