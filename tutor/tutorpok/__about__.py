"""
The plugin's version: the same as the openedx-pok release it installs by default.
"""
__version__ = "23.0.0"
