"""
Import of the data the earlier openedx-pok (PyPI 21.x, 22.0.0; same app label) left in the LMS database.

It left ``openedx_pok_certificatetemplate`` (course -> POK template) and ``openedx_pok_pokcertificate`` (a credential
per learner and course); this plugin's tables have other names (docs/decisions/0002). The data migration
``import_legacy_openedx_pok`` and ``manage.py lms pok_import_legacy`` both run :func:`import_legacy`, passing the
model classes they have (historical ones inside the migration), so one piece of code serves both. Why it is built
this way (docs/decisions/0006-legacy-import.rst):

* **Fast**: keyset pages of the legacy ids, a fixed handful of queries and one multi-row ``INSERT`` per page, never
  a save per row; each page commits on its own, so an interrupted import simply resumes on the next run.
* **Idempotent**: a credential of ours for the same learner and course, or with the same POK id, is counted and
  never written twice; the unique constraints back that up (``ignore_conflicts``) and a read-back of the new rows'
  references counts what a concurrent writer won.
* **Nothing lost, nothing touched**: every legacy row ends imported, already present or skipped with a reason; the
  legacy tables are only read, so going back to the earlier plugin still finds its data. A date that is not one
  (``0000-00-00``) never stops an upgrade; of two rows of one learner and course the one that went furthest wins; a
  row the plugin changed since (a re-issue) is never overwritten; a retired learner's row comes without their data.
* **Same courses issue**: the earlier plugin issued only where its course waffle flag ``module_pok.enable`` was on;
  mappings are created enabled exactly there (the flag is read through ``compat``).
"""
import json
import logging
import uuid
from datetime import UTC, datetime
from functools import lru_cache

from django.apps import apps
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models.constants import OnConflict
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from opaque_keys.edx.django.models import CourseKeyField

from openedx_pok import compat
from openedx_pok.issuance import history, retirement
from openedx_pok.issuance.states import (
    EMITTED_STATE,
    FAILED_STATES,
    REVOKED_STATE,
    CredentialStatus,
    is_allowed_view_url,
    local_status_for,
)
from openedx_pok.keys import parse_course_key
from openedx_pok.legacy.report import CREDENTIALS_TABLE, TEMPLATES_TABLE, ImportReport

log = logging.getLogger(__name__)

LEGACY_FLAG = "module_pok.enable"
BATCH_SIZE = 2000
EMISSION_TYPES = ("pok", "blockchain")
# Columns every release since the table renames has; the rest are read when present (later additions).
REQUIRED_COLUMNS = {
    CREDENTIALS_TABLE: ("id", "user_id", "course_id", "pok_certificate_id", "state", "view_url", "created", "modified"),
    TEMPLATES_TABLE: ("id", "course_id", "template_id"),
}
# Read as text: the database's own conversion fails on a zero or impossible date (0000-00-00, 2025-02-30).
DATE_COLUMNS = ("created", "modified", "emission_date")
OPTIONAL_COLUMNS = {
    CREDENTIALS_TABLE: ("emission_date", "emission_type", "title", "emitter", "tags", "custom_parameters", "page",
                        "receiver_email", "receiver_name"),
    TEMPLATES_TABLE: ("emission_type", "page_id"),
}
# A row of ours in one of these statuses never reached POK: a legacy credential of the same learner and course
# takes its place (compare-and-set), so the learner does not get a second credential.
UNSENT = (CredentialStatus.PENDING, CredentialStatus.HELD, CredentialStatus.FAILED)
def import_legacy(mapping_model, credential_model, using="default", dry_run=False, batch_size=BATCH_SIZE):
    """
    Import the earlier plugin's mappings and credentials into ``mapping_model`` / ``credential_model``.

    Returns an :class:`ImportReport`. ``dry_run`` reads and classifies everything exactly as a real run would
    (same counts) and writes nothing.
    """
    connection = connections[using]
    report = ImportReport(dry_run=dry_run)
    tables = set(connection.introspection.table_names())
    if CREDENTIALS_TABLE not in tables:
        return report
    report.found = True
    columns = {}
    with connection.cursor() as cursor:
        for table in (CREDENTIALS_TABLE, TEMPLATES_TABLE):
            present = {c.name for c in connection.introspection.get_table_description(cursor, table)} \
                if table in tables else set()
            missing = [c for c in REQUIRED_COLUMNS[table] if c not in present]
            if table in tables and missing:
                report.error = _("The table {table} has no column {columns}: not a schema this import reads.").format(
                    table=table, columns=", ".join(missing))
                log.error("POK legacy import: %s lacks %s; nothing imported", table, missing)
                return report
            columns[table] = [c for c in (*REQUIRED_COLUMNS[table], *OPTIONAL_COLUMNS[table]) if c in present]
    run = _Run(connection, mapping_model, credential_model, report, columns)
    # What a run changes on a row of ours gets a history line; the migration's historical models have no history yet.
    run.history = using == DEFAULT_DB_ALIAS and credential_model._meta.apps is apps and \
        apps.get_model("openedx_pok", "CredentialEvent")._meta.db_table in tables
    templates = run.select(TEMPLATES_TABLE) if columns[TEMPLATES_TABLE] else []
    run.import_mappings(templates)
    run.import_credentials({row["course_id"]: row["template_id"] or "" for row in templates}, batch_size)
    log.info("POK legacy import%s: %s mappings %s, %s credentials imported %s, adopted %s, present %s, skipped %s",
             " (dry run)" if dry_run else "", report.templates, dict(report.mappings), report.credentials,
             dict(report.imported), report.adopted, report.present, dict(report.credential_skips))
    return report


def _when(value):
    """A legacy timestamp (its text, naive UTC) as an aware datetime; None when it is not a readable date."""
    if isinstance(value, bytes | bytearray):
        value = value.decode(errors="replace")
    if isinstance(value, str):
        try:
            value = parse_datetime(value.strip())
        except ValueError:  # well formed but impossible: 0000-00-00, 2025-02-30
            value = None
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=UTC) if timezone.is_naive(value) else value


def _rank(row):
    """How far a legacy credential got on POK, to choose between two rows of one learner and course."""
    if not str(row["pok_certificate_id"] or "").strip():
        return 0
    state = str(row["state"] or "").strip()
    return {EMITTED_STATE: 4, REVOKED_STATE: 3}.get(state, 1 if state in FAILED_STATES else 2)


def _json(value, kind):
    """A legacy JSON column as ``kind`` (list or dict); anything unreadable becomes an empty one."""
    if isinstance(value, bytes | bytearray):
        value = value.decode()
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return kind()
    return value if isinstance(value, kind) else kind()


# Cached: a batch holds thousands of rows of the same few courses.
_course_key = lru_cache(maxsize=4096)(parse_course_key)


def _emission(value):
    value = str(value or "").strip().lower()
    return value if value in EMISSION_TYPES else None


class _Run:
    """One import: the connection, the target models, the report and what this run has written so far."""

    def __init__(self, connection, mapping_model, credential_model, report, columns):
        self.connection, self.report, self.columns = connection, report, columns
        self.mappings = mapping_model.objects.db_manager(connection.alias)
        self.credentials = credential_model.objects.db_manager(connection.alias)
        self.credential_model = credential_model
        self.users = credential_model._meta.get_field("user").related_model.objects.db_manager(
            connection.alias)
        self.max_length = {f.name: f.max_length for f in credential_model._meta.fields if f.max_length}
        self.mapping_max_length = {f.name: f.max_length for f in mapping_model._meta.fields if f.max_length}
        self.default_emission = credential_model._meta.get_field("emission_type").get_default()
        # (user id, course key string) and POK ids taken by this run: what a dry run must remember to count right.
        self.pairs, self.pok_ids = set(), set()
        self.history = False

    def select(self, table, after=None, limit=None):
        quote = self.connection.ops.quote_name
        text = "CHAR" if self.connection.vendor == "mysql" else "TEXT"
        names = [f"CAST({quote(c)} AS {text})" if table == CREDENTIALS_TABLE and c in DATE_COLUMNS else quote(c)
                 for c in self.columns[table]]
        sql = f"SELECT {', '.join(names)} FROM {quote(table)}"  # noqa: S608
        params = []
        if after is not None:
            sql += f" WHERE {quote('id')} > %s"
            params.append(after)
        sql += f" ORDER BY {quote('id')}"
        if limit:
            sql += " LIMIT %s"
            params.append(limit)
        with self.connection.cursor() as cursor:
            cursor.execute(sql, params)
            return [dict(zip(self.columns[table], row, strict=True)) for row in cursor.fetchall()]

    # Mappings ---------------------------------------------------------------------------------------------------

    def import_mappings(self, templates):
        """Legacy templates -> course mappings, enabled where the flag was on; flag overrides -> the rest."""
        report = self.report
        report.templates = len(templates)
        flag = compat.get_course_flag_state(LEGACY_FLAG)
        report.flag_partial = flag.everyone is None
        courses, orgs = dict(flag.course_overrides), dict(flag.org_overrides)

        def org_on(org):
            return orgs.get(org, flag.everyone is True)

        def course_on(key):
            return courses.get(str(key), org_on(key.org))

        existing = set(self.mappings.values_list("organization", "course_key"))
        existing = {(org, str(key or "")) for org, key in existing}
        planned = []  # (source, fields)
        templated = set()
        for row in templates:
            key = _course_key(row["course_id"])
            if key is None:
                report.skip(TEMPLATES_TABLE, row["id"], "invalid_course_key")
                continue
            templated.add(str(key))  # a flag override must not map it to the default template instead
            if len(row["template_id"] or "") > self.mapping_max_length["template_id"] or len(
                    row.get("page_id") or "") > self.mapping_max_length["page_id"]:
                report.skip(TEMPLATES_TABLE, row["id"], "value_too_long")
                continue
            fields = {"template_id": row["template_id"] or "", "page_id": row.get("page_id") or "",
                      "enabled": course_on(key)}
            if _emission(row.get("emission_type")):
                fields["emission_type"] = _emission(row.get("emission_type"))
            planned.append(("imported" if fields["enabled"] else "imported_disabled", key, fields))
        default_orgs = {org for org, on in orgs.items() if on}
        if flag.everyone is True:  # a default for every organization the earlier plugin had anything of
            seen = {_course_key(k).org for k in templated} | {k.org for k in map(_course_key, courses) if k}
            default_orgs |= {org for org in seen | self._credential_orgs() if orgs.get(org, True)}
        for org in sorted(default_orgs):
            planned.append(("flag_organization", org, {"template_id": "", "enabled": True}))
        for course, on in sorted(courses.items()):
            key = _course_key(course)
            # Only where it changes the outcome: the organization's default (or its absence) covers the rest.
            if key is not None and course not in templated and on != (key.org in default_orgs):
                planned.append(("flag_course_on" if on else "flag_course_off", key, {"template_id": "",
                                                                                      "enabled": on}))
        new = []
        for source, scope, fields in planned:
            org, key = (scope, "") if isinstance(scope, str) else (scope.org, str(scope))
            if (org, key) in existing:
                report.mappings["present" if source.startswith("imported") else "flag_present"] += 1
                continue
            existing.add((org, key))
            report.mappings[source] += 1
            new.append(self.mappings.model(organization=org, course_key=scope if key else CourseKeyField.Empty,
                                           **fields))
        if new and not report.dry_run:
            with transaction.atomic(using=self.connection.alias):
                self.mappings.bulk_create(new, ignore_conflicts=True)

    def _credential_orgs(self):
        """Organizations of the courses that have legacy credentials (where an "on for everyone" flag mattered)."""
        quote = self.connection.ops.quote_name
        with self.connection.cursor() as cursor:
            cursor.execute(f"SELECT DISTINCT {quote('course_id')} FROM {quote(CREDENTIALS_TABLE)}")  # noqa: S608
            return {key.org for key in (_course_key(row[0]) for row in cursor.fetchall()) if key}

    # Credentials ------------------------------------------------------------------------------------------------

    def import_credentials(self, template_ids, batch_size):
        """Keyset pages of the legacy credentials, each classified, inserted and committed on its own."""
        after = 0
        while True:
            rows = self.select(CREDENTIALS_TABLE, after=after, limit=batch_size)
            if not rows:
                return
            after = rows[-1]["id"]
            self.report.credentials += len(rows)
            self.report.batches += 1
            if self.report.dry_run:
                self._import_batch(rows, template_ids)
                continue
            with transaction.atomic(using=self.connection.alias):
                self._import_batch(rows, template_ids)

    def _winners(self, user_ids):
        """
        {(learner, course key): legacy id to import} over all the legacy rows of these learners (other pages too):
        the row that went furthest on POK, the lowest id of equals, so a course id written twice (a trailing space)
        gives the same result whatever the page size.
        """
        if not user_ids:
            return {}
        quote = self.connection.ops.quote_name
        columns = ("id", "user_id", "course_id", "pok_certificate_id", "state")
        sql = (f"SELECT {', '.join(quote(c) for c in columns)} FROM {quote(CREDENTIALS_TABLE)} "  # noqa: S608
               f"WHERE {quote('user_id')} IN ({', '.join(['%s'] * len(user_ids))})")
        best = {}
        with self.connection.cursor() as cursor:
            cursor.execute(sql, list(user_ids))
            for values in cursor.fetchall():
                row = dict(zip(columns, values, strict=True))
                key = _course_key(row["course_id"])
                if key is not None:
                    pair, candidate = (row["user_id"], str(key)), (_rank(row), -row["id"])
                    best[pair] = max(best.get(pair, candidate), candidate)
        return {pair: -negative_id for pair, (_rank_, negative_id) in best.items()}

    def _import_batch(self, rows, template_ids):
        report = self.report
        keys = {row["id"]: _course_key(row["course_id"]) for row in rows}
        pok_ids = {row["id"]: (str(row["pok_certificate_id"] or "").strip() or None) for row in rows}
        learners = list(self.users.filter(id__in={row["user_id"] for row in rows}).only("id", "email"))
        users = {user.id for user in learners}
        retired = {user.id for user in learners if compat.is_retiring(user)}  # the LMS's retired e-mail
        winners = self._winners(users)
        ours = {}
        for row_id, user_id, course_key, status, pok_id, issuance, receiver in self.credentials.filter(
            user_id__in=users, course_key__in={key for key in keys.values() if key},
        ).values_list("id", "user_id", "course_key", "status", "pok_credential_id", "issuance", "receiver"):
            # Only a row that never reached POK, on its first issuance, of a learner not retired, adopts a legacy
            # credential: one the plugin has changed since (a re-issue, a re-award) is never overwritten.
            adoptable = status in UNSENT and not pok_id and issuance == 1 and not retirement.is_retired(receiver)
            ours[(user_id, str(course_key))] = (row_id, status, pok_id, adoptable)
        held = set(self.credentials.filter(pok_credential_id__in={p for p in pok_ids.values() if p}).values_list(
            "pok_credential_id", flat=True))
        new, adopt = [], []
        for row in rows:
            key, pok_id = keys[row["id"]], pok_ids[row["id"]]
            pair = (row["user_id"], str(key))
            if row["user_id"] not in users:
                report.skip(CREDENTIALS_TABLE, row["id"], "unknown_user")
            elif key is None:
                report.skip(CREDENTIALS_TABLE, row["id"], "invalid_course_key")
            elif winners.get(pair) != row["id"]:
                report.skip(CREDENTIALS_TABLE, row["id"], "duplicate_course")
            elif pair in ours and ours[pair][2] == pok_id:
                report.present += 1
            elif pok_id and (pok_id in held or pok_id in self.pok_ids):
                report.skip(CREDENTIALS_TABLE, row["id"], "duplicate_pok_id")
            elif (pair in ours or pair in self.pairs) and not (pok_id and pair in ours and ours[pair][3]):
                report.present += 1
            elif (fields := self._fields(row, key, pok_id, template_ids, row["user_id"] in retired)) is None:
                report.skip(CREDENTIALS_TABLE, row["id"], "value_too_long")
            else:
                if pair in ours:
                    adopt.append((ours[pair][0], ours[pair][1], fields))
                    ours[pair] = (ours[pair][0], fields["status"], pok_id, False)  # adopted: not unsent any more
                else:
                    new.append((row["id"], fields))
                self.pairs.add(pair)
                if pok_id:
                    self.pok_ids.add(pok_id)
        self._write(new, adopt)

    def _write(self, new, adopt):
        """Insert the new rows (counting what really went in) and let unsent rows of ours adopt theirs."""
        report = self.report
        if report.dry_run:
            report.imported.update(fields["status"] for _legacy_id, fields in new)
            report.adopted += len(adopt)
            return
        if new:
            self._insert([fields for _legacy_id, fields in new])
            written = set(self.credentials.filter(uuid__in=[f["uuid"] for _id, f in new]).values_list("uuid",
                                                                                                   flat=True))
            missed = [(legacy_id, fields) for legacy_id, fields in new if fields["uuid"] not in written]
            report.imported.update(fields["status"] for _legacy_id, fields in new if fields["uuid"] in written)
            if missed:
                # A concurrent writer created the same learner and course first; else the database dropped the row
                # (SQLite's INSERT OR IGNORE drops a row a constraint refuses): never counted as present.
                there = {(user_id, str(key)) for user_id, key in self.credentials.filter(
                    user_id__in={f["user_id"] for _id, f in missed},
                    course_key__in={f["course_key"] for _id, f in missed},
                ).values_list("user_id", "course_key")}
                for legacy_id, fields in missed:
                    if (fields["user_id"], str(fields["course_key"])) in there:
                        report.present += 1
                    else:
                        report.skip(CREDENTIALS_TABLE, legacy_id, "not_written")
        for row_id, status, fields in adopt:
            for name in ("uuid", "user_id", "course_key", "created", "modified"):
                fields.pop(name)
            stamp = timezone.now()
            # The same compare-and-set as states.transition, on the model given (historical in the migration).
            if self.credentials.filter(id=row_id, status__in=UNSENT, pok_credential_id__isnull=True,
                                       issuance=1).update(modified=stamp, **fields):
                report.adopted += 1
                if self.history:
                    history.record([row_id], status, {**fields, "status_reason": _(
                        "Took over the credential that the earlier openedx-pok had obtained from POK.")}, stamp)
            else:
                report.present += 1

    def _insert(self, new):
        """
        One multi-row ``INSERT`` that skips conflicts: the statement ``bulk_create(ignore_conflicts=True)`` sends,
        values prepared by the model's own fields, without first building 2,000 model instances (half a batch's time).
        """
        ops, quote = self.connection.ops, self.connection.ops.quote_name
        fields = [f for f in self.credential_model._meta.concrete_fields if not f.primary_key]
        given = new[0].keys()
        constant = {f.attname: f.get_db_prep_save(f.get_default(), self.connection) for f in fields
                    if f.attname not in given}
        sql = (f"{ops.insert_statement(on_conflict=OnConflict.IGNORE)} {quote(self.credential_model._meta.db_table)} "
               f"({', '.join(quote(f.column) for f in fields)}) VALUES ({', '.join(['%s'] * len(fields))}) "
               f"{ops.on_conflict_suffix_sql(fields, OnConflict.IGNORE, None, None)}").strip()
        params = [[constant[f.attname] if f.attname in constant else f.get_db_prep_save(row[f.attname], self.connection)
                   for f in fields] for row in new]
        with self.connection.cursor() as cursor:
            cursor.executemany(sql, params)

    def _fields(self, row, key, pok_id, template_ids, retired=False):
        """Our credential row for a legacy one, or None when a value does not fit our columns."""
        state = str(row["state"] or "").strip()
        view_url = str(row["view_url"] or "").strip()
        reason = ""
        if pok_id is None:
            status = CredentialStatus.PENDING
            reason = _("Imported from the earlier openedx-pok, which never obtained a POK credential for it: the next "
                       "reconcile sends it.")
        else:
            status = local_status_for(state, view_url) if state else CredentialStatus.IN_PROGRESS
            if status == CredentialStatus.FAILED:
                reason = _("Imported from the earlier openedx-pok: POK reported the state {state}.").format(
                    state=state)
            elif state == "emitted" and status != CredentialStatus.EMITTED:
                reason = _("Imported from the earlier openedx-pok as emitted, without a usable web page: the next "
                           "refresh asks POK for it.")
        # A date that is not one (0000-00-00, text) takes the other one, else the import time: the row is imported.
        created, modified = _when(row["created"]), _when(row["modified"])
        undated = created is None or modified is None
        created = created or modified or timezone.now()
        modified = modified or created
        # An emitted status already proves the page is allowed; other states check it once (a URL parse per row).
        keep_url = status == CredentialStatus.EMITTED or (
            bool(view_url) and state != "emitted" and is_allowed_view_url(view_url))
        fields = {
            "uuid": uuid.uuid4(), "user_id": row["user_id"], "course_key": key, "status": status,
            "status_reason": reason, "template_id": template_ids.get(row["course_id"], ""),
            "page_id": str(row.get("page") or ""), "title": str(row.get("title") or ""),
            "emitter": str(row.get("emitter") or ""), "tags": _json(row.get("tags"), list),
            "receiver": {k: v for k, v in (("name", row.get("receiver_name")), ("email", row.get("receiver_email")))
                         if v},
            "custom_parameters": _json(row.get("custom_parameters"), dict),
            "emission_date": _when(row.get("emission_date")), "pok_credential_id": pok_id, "pok_state": state,
            "view_url": view_url if keep_url else "", "emission_type": _emission(row.get("emission_type"))
            or self.default_emission,
            "attempts": 1 if pok_id else 0, "requested_at": created if pok_id else None,
            "created": created, "modified": modified,
        }
        if retired:
            # Retired before the upgrade: no retirement signal will come again for it.
            fields.update(retirement.anonymized(status, reason, fields["receiver"], fields["custom_parameters"]))
            if status in retirement.NOT_SENT:
                fields.update(status=CredentialStatus.HELD, status_reason=retirement.retired_reason())
        if len(fields["template_id"]) > self.max_length["template_id"]:
            fields["template_id"] = ""  # informational on the row; issuance takes the mapping's template
        for name, value in fields.items():
            if isinstance(value, str) and name in self.max_length and len(value) > self.max_length[name]:
                return None
        self.report.undated += undated
        self.report.retired += retired
        return fields
