"""
The sandbox LMS's and CMS's settings, loaded in the phases and the order of the real platform's.

The plugin's settings code runs inside the platform's settings modules, while they are still being built, so it
meets the platform's settings in whatever shape they have at that moment. These modules reproduce that, each naming
the real file it stands for (openedx/openedx-platform, Verawood and master; the differences of older releases are
selectable, see ``openedx_common``):

- ``openedx_common``: the settings shared by the LMS and the CMS, with ``Derived`` placeholders (``LOCALE_PATHS``)
  that are only computed at the end (``openedx/envs/common.py``);
- ``lms_common`` / ``cms_common``: each project's own settings, then the plugins' ``common`` phase part-way through
  (``lms/envs/common.py``, ``cms/envs/common.py``);
- ``lms_production`` / ``cms_production``: the operator's YAML (``LMS_CFG`` / ``CMS_CFG``) replacing whole keys, then
  ``derive_settings``, then the plugins' ``production`` phase (``lms/envs/production.py``, ``cms/envs/production.py``);
- ``lms_test``: the plugins' ``test`` phase, which the LMS runs *before* ``derive_settings`` (``lms/envs/test.py``);
- ``lms_build``: what Tutor's image build loads for ``compilemessages`` and ``collectstatic`` (``tutor.i18n`` /
  ``tutor.assets``): the common settings only, derived, with no YAML and no production phase.

The test suite, the demo and the benchmarks import ``lms_production`` and then set their own values, as Tutor's
settings (``lms/envs/tutor/production.py``) do after ``from lms.envs.production import *``.
"""
