"""
Root pytest configuration: registers the POK simulator's fixtures (test tooling, outside the installed package).
"""
pytest_plugins = ["test_utils.pok_fixtures"]
