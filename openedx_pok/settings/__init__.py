"""
Settings modules applied by the Open edX plugin framework (``plugin_app['settings_config']``).
"""
