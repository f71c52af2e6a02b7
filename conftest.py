"""
Root pytest configuration: registers the POK simulator's fixtures (test tooling, outside the installed package).
"""
pytest_plugins = ["test_utils.pok_fixtures"]


def _uses_the_database(item):
    """Whether a test reads or writes the test database (or needs MariaDB itself), as pytest-django marks it."""
    database_fixtures = {"db", "transactional_db", "django_db_reset_sequences", "django_db_serialized_rollback",
                         "live_server", "admin_client", "django_user_model", "admin_user"}
    return (item.get_closest_marker("django_db") is not None or item.get_closest_marker("mysql") is not None
            or bool(database_fixtures & set(getattr(item, "fixturenames", ()))))


def pytest_collection_modifyitems(config, items):
    """
    ``POK_TEST_DATABASE_ONLY=1`` (the MariaDB run of ``make test``, after the SQLite run): only the tests that use
    the database run again; the others (the simulator, the client, Tutor, packaging, settings phases ...) do the same
    on any database and already ran.
    """
    import os  # noqa: PLC0415 - only this hook needs it

    if os.environ.get("POK_TEST_DATABASE_ONLY") != "1":
        return
    kept = [item for item in items if _uses_the_database(item)]
    config.hook.pytest_deselected(items=[item for item in items if item not in kept])
    items[:] = kept
