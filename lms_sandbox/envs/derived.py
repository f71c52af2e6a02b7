"""
Settings computed from other settings at the end of a settings module: the sandbox's ``openedx.core.lib.derived``.

Written after the behaviour of ``openedx/core/lib/derived.py`` (openedx-platform Teak and later: a ``Derived``
value is replaced by ``calculate_value(settings)`` when the settings module calls ``derive_settings``, inside lists,
dicts and tuples too) and of its predecessor (Sumac and earlier: a plain function assigned to the setting and
registered with ``derived(name)``, called by ``derive_settings`` only if the setting is *still* callable then, so a
plugin that replaced it by a list made the platform lose its own value). Until ``derive_settings`` runs, code that
reads such a setting sees the placeholder, not a list: that is what the plugins' ``common`` phase gets.
"""
import re
import sys

_SETTING_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
_registered = []  # the old API's derived setting names, in registration order


class Derived:
    """A setting whose value is ``calculate_value(settings)``, computed when the settings module is derived."""

    def __init__(self, calculate_value):
        self.calculate_value = calculate_value

    def __repr__(self):
        return f"Derived({getattr(self.calculate_value, '__name__', self.calculate_value)!r})"


def derived(*names):
    """The pre-Teak API: the named settings hold functions of the settings, to be called by ``derive_settings``."""
    _registered.extend(names)


def _derive(settings, value):
    if isinstance(value, Derived):
        return value.calculate_value(settings)
    if isinstance(value, dict):
        for key, item in value.items():
            value[key] = _derive(settings, item)
        return value
    if isinstance(value, list):
        value[:] = [_derive(settings, item) for item in value]
        return value
    if isinstance(value, tuple):
        return tuple(_derive(settings, item) for item in value)
    return value


def derive_settings(module_name):
    """Replace the placeholders of the settings module ``module_name`` by their values (both APIs)."""
    module = sys.modules[module_name]
    for name in _registered:
        value = getattr(module, name, None)
        if callable(value):
            setattr(module, name, value(module))
    for name, value in list(vars(module).items()):
        if _SETTING_NAME.match(name):
            setattr(module, name, _derive(module, value))
