"""
The sandbox's ``lms/envs/test.py`` order: the plugins' ``test`` phase runs *before* ``derive_settings``, so it meets
the same ``Derived`` placeholders as the ``common`` phase.
"""
from lms_sandbox.envs.derived import derive_settings
from lms_sandbox.envs.lms_common import *  # noqa: F403 - as the LMS's test.py
from lms_sandbox.envs.lms_common import add_plugins

add_plugins(__name__, "lms.djangoapp", "test")
derive_settings(__name__)
