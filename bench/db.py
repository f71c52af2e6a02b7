"""
The MariaDB server of the benchmark, without Django: the driver choice, scratch databases, and the cost of a connect.

Kept free of Django imports because ``bench.settings`` calls :func:`install_driver` while Django reads the settings,
and ``bench.mysql`` creates its scratch database before Django connects to it.

The driver matters for what the benchmark shows: the LMS runs mysqlclient (the C client library), while PyMySQL,
pure Python, spends milliseconds per connect on building a TLS context and decodes every row in Python. With Django's
default ``CONN_MAX_AGE = 0`` (the LMS's too) every request connects once, so PyMySQL's connect cost would sit in
every page view and hide what the plugin itself costs.
"""
import os
import statistics
import sys
import time

DRIVERS = ("mysqlclient", "pymysql")


def server_settings():
    """Host, port, user and password of the MariaDB the test settings use (``POK_TEST_MYSQL_*`` override)."""
    return {
        "host": os.environ.get("POK_TEST_MYSQL_HOST", "127.0.0.1"),
        "port": int(os.environ.get("POK_TEST_MYSQL_PORT", "3306")),
        "user": os.environ.get("POK_TEST_MYSQL_USER", "root"),
        "password": os.environ.get("POK_TEST_MYSQL_PASSWORD", ""),
    }


def install_driver(name):
    """
    Make ``name`` the module Django's MySQL backend imports (``MySQLdb``) and return "<driver> <version>".

    mysqlclient is ``MySQLdb`` itself; PyMySQL must register itself under that name. An unknown name or a driver
    that is not installed is an error, never a silent fall back to the other driver: the numbers would lie.
    """
    # Imported here, not at the top: each driver is optional, and importing one must not register the other.
    if name == "pymysql":
        import pymysql  # noqa: PLC0415

        pymysql.install_as_MySQLdb()
        return f"PyMySQL {pymysql.VERSION_STRING}"  # its __version__ is the mysqlclient version it poses as
    if name != "mysqlclient":
        raise ValueError(f"unknown MySQL driver {name!r}; choose one of {', '.join(DRIVERS)}")
    import MySQLdb  # noqa: PLC0415

    return "mysqlclient " + ".".join(str(part) for part in MySQLdb.version_info[:3])


def connect(driver="mysqlclient", database=None):
    """A new autocommit connection to the server (and ``database``, if given) with ``driver``."""
    server = server_settings()
    if driver == "pymysql":
        import pymysql  # noqa: PLC0415

        return pymysql.connect(database=database, charset="utf8mb4", autocommit=True, **server)
    import MySQLdb  # noqa: PLC0415

    if MySQLdb.__name__ != "MySQLdb":
        raise RuntimeError("PyMySQL is registered as MySQLdb in this process: mysqlclient cannot be measured here")
    return MySQLdb.connect(database=database or "", charset="utf8mb4", autocommit=True, **server)


def _process_driver():
    """The driver Django uses in this process: PyMySQL if it was registered under the name MySQLdb."""
    module = sys.modules.get("MySQLdb")
    return "pymysql" if module is not None and module.__name__ == "pymysql" else "mysqlclient"


def create_database(name):
    with connect(_process_driver()) as server:
        server.cursor().execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")


def drop_database(name):
    with connect(_process_driver()) as server:
        server.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")


def connect_cost(driver, database, samples=20):
    """Median and max ms of a connect + ``SELECT 1`` + close with ``driver``: what a request pays at CONN_MAX_AGE 0."""
    times = []
    for _index in range(samples + 2):
        start = time.perf_counter_ns()
        connection = connect(driver, database)
        cursor = connection.cursor()
        cursor.execute("SELECT 1")
        cursor.fetchall()
        connection.close()
        times.append(time.perf_counter_ns() - start)
    times = times[2:]  # the first connects load modules and warm the server's thread cache
    return {"median_ms": round(statistics.median(times) / 1e6, 3), "max_ms": round(max(times) / 1e6, 3),
            "n": len(times)}
