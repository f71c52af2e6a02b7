"""
Test helpers shared by the plugin's test suite: factories of the plugin's models and small look-ups.

Importable from the repository root (``pytest.ini`` sets ``pythonpath = .``), as in the Open edX cookiecutter layout.
"""
from test_utils.helpers import celery_conf, credential_of

__all__ = ["celery_conf", "credential_of"]
