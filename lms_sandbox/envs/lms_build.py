"""
What Tutor's image build loads: the sandbox's ``lms/envs/tutor/i18n.py`` and ``assets.py`` (Tutor 19 to 22,
``tutor/templates/build/openedx/settings/partials/``), used for ``compilemessages`` and ``collectstatic``.

Only the common settings, the plugins' ``common`` phase included, then ``derive_settings``: no YAML and no
``production`` phase. A plugin whose ``common`` phase fails stops ``tutor images build``.
"""
from lms_sandbox.envs.derived import derive_settings
from lms_sandbox.envs.lms_common import *  # noqa: F403 - as Tutor's build settings

SECRET_KEY = "build-only"  # noqa: S105 - as Tutor's build settings: never a running platform
derive_settings(__name__)
