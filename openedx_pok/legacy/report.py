"""
What one legacy import found and did (:class:`ImportReport`): every legacy row in exactly one count, skipped ones
with the reason staff read (``pok_import_legacy`` prints it; ``-v 2`` lists the rows by id).
"""
import logging
from collections import Counter
from dataclasses import dataclass, field

from django.utils.translation import gettext_lazy

log = logging.getLogger(__name__)

CREDENTIALS_TABLE = "openedx_pok_pokcertificate"
TEMPLATES_TABLE = "openedx_pok_certificatetemplate"
SKIP_REASONS = {
    "unknown_user": gettext_lazy("the learner does not exist in Open edX"),
    "invalid_course_key": gettext_lazy("the course key is not valid"),
    "duplicate_pok_id": gettext_lazy("another credential already has this POK credential id"),
    "value_too_long": gettext_lazy("a value is longer than this plugin stores"),
    "duplicate_course": gettext_lazy("another legacy credential of the same learner and course is imported instead"),
    "not_written": gettext_lazy("the database did not store it; run the import again"),
}
# Per reason, this many skipped rows are logged one by one (ids only); the rest are in the counts.
LOGGED_SKIPS = 20


@dataclass
class ImportReport:
    """What one run found and did; every legacy row is in exactly one count."""

    dry_run: bool = False
    found: bool = False                                    # the legacy credential table exists
    error: str = ""                                        # the legacy schema is not one this import reads
    templates: int = 0                                     # legacy template rows read
    mappings: Counter = field(default_factory=Counter)     # imported / imported_disabled / present, and flag_*
    mapping_skips: Counter = field(default_factory=Counter)
    credentials: int = 0                                   # legacy credential rows read
    imported: Counter = field(default_factory=Counter)     # new credential rows by local status
    adopted: int = 0                                       # unsent rows of ours that took the legacy credential
    present: int = 0                                       # already there: same learner and course
    credential_skips: Counter = field(default_factory=Counter)
    skipped_rows: list = field(default_factory=list)       # (table, legacy id, reason)
    flag_partial: bool = False                             # the flag was on for some users only
    undated: int = 0                                       # imported rows whose legacy date was not readable
    retired: int = 0                                       # imported rows of retired learners, without their data
    batches: int = 0

    def accounted(self):
        """Whether every legacy row is counted once (the command says so; a test checks it)."""
        template_rows = sum(self.mappings[key] for key in ("imported", "imported_disabled", "present"))
        credential_rows = sum(self.imported.values()) + self.adopted + self.present
        return (template_rows + sum(self.mapping_skips.values()) == self.templates
                and credential_rows + sum(self.credential_skips.values()) == self.credentials)

    @staticmethod
    def label(reason):
        """The words staff read for a skip reason."""
        return SKIP_REASONS.get(reason, reason)

    def skip(self, table, legacy_id, reason):
        counts = self.mapping_skips if table == TEMPLATES_TABLE else self.credential_skips
        counts[reason] += 1
        self.skipped_rows.append((table, legacy_id, reason))
        if counts[reason] <= LOGGED_SKIPS:
            log.warning("POK legacy import: %s row %s skipped: %s", table, legacy_id, reason)
