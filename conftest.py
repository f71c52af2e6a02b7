"""
Root pytest configuration: registers the plugin's shipped test fixtures (the POK simulator).
"""
pytest_plugins = ["openedx_pok.testing.fixtures"]
