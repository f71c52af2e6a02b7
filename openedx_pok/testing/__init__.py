"""
Test support shipped with the plugin: the POK simulator and its pytest fixtures.

Shipped in the package (not only in ``tests/``) so operators and the demo sandbox can run the simulator too.
"""
