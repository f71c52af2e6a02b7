"""
Databases of the earlier openedx-pok (PyPI 21.0.1, 22.0.0), as its published packages left them.

``fixtures/openedx-pok-<version>-<engine>.json`` were written by ``generate.py`` running inside a virtualenv that
holds the published package (``make legacy-fixtures`` rebuilds them): the DDL is what SQLite / MariaDB reported after
the package's own migrations ran, the rows are what its own code stored. :func:`load` recreates that state next to
this plugin's tables in the current test database (the one an LMS has after ``pip install`` of this plugin over the
earlier one, before ``migrate``); :func:`unload` takes it away again.
"""
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
VERSIONS = ("21.0.1", "22.0.0")
LEGACY_TABLES = ("openedx_pok_pokcertificate", "openedx_pok_certificatetemplate", "course_overviews_courseoverview")
# Rows first of the tables others reference.
LOAD_ORDER = ("auth_user", "course_overviews_courseoverview", "openedx_pok_certificatetemplate",
              "openedx_pok_pokcertificate")


def fixture(version, vendor):
    """The dump of ``version`` made on the database engine of ``vendor`` (``connection.vendor``)."""
    engine = "mysql" if vendor == "mysql" else "sqlite"
    return json.loads((HERE / "fixtures" / f"openedx-pok-{version}-{engine}.json").read_text(encoding="utf-8"))


def create_schema(connection, dump):
    """The legacy tables, exactly as the earlier package's migrations created them, and its migration records."""
    with connection.cursor() as cursor:
        for statement in dump["schema"]:
            cursor.execute(statement)
        for app, name in dump["migrations"]:
            cursor.execute(
                "INSERT INTO django_migrations (app, name, applied) VALUES (%s, %s, CURRENT_TIMESTAMP)", [app, name],
            )


def insert_rows(connection, dump, tables=LOAD_ORDER):
    """The dump's rows, with their ids (the learners too: they are the LMS's users the rows belong to)."""
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        for table in tables:
            columns, rows = dump["tables"][table]["columns"], dump["tables"][table]["rows"]
            if rows:
                cursor.executemany(
                    f"INSERT INTO {quote(table)} ({', '.join(quote(c) for c in columns)}) "  # noqa: S608
                    f"VALUES ({', '.join(['%s'] * len(columns))})",
                    rows,
                )


def load(connection, version):
    """The earlier plugin's schema and rows of ``version`` in this database; returns the dump."""
    dump = fixture(version, connection.vendor)
    create_schema(connection, dump)
    insert_rows(connection, dump)
    return dump


def unload(connection, dump):
    """Drop the legacy tables and forget their migration records (the learners go with the test's flush)."""
    existing = set(connection.introspection.table_names())
    with connection.cursor() as cursor:
        for table in LEGACY_TABLES:
            if table in existing:
                cursor.execute(f"DROP TABLE {connection.ops.quote_name(table)}")
        for app, name in dump["migrations"]:
            cursor.execute("DELETE FROM django_migrations WHERE app = %s AND name = %s", [app, name])


def legacy_rows(connection, table):
    """Every row of a legacy table, in id order: what "left untouched" is checked against."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)} ORDER BY 1")  # noqa: S608
        return [tuple(row) for row in cursor.fetchall()]
