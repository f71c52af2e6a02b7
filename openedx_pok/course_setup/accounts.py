"""
The POK accounts this LMS issues with: a name for each POK organization, its API URL and its API key.

An LMS may serve several POK organizations (usually one per Open edX organization). ``POK_ACCOUNTS`` maps an account
name to ``{"url": ..., "key": ...}``; the account ``default`` is ``POK_API_URL`` / ``POK_API_KEY`` unless
``POK_ACCOUNTS`` names it itself, so a single-account install configures nothing new. Course mappings store the
account *name* only: keys live in settings and nowhere else (no table, no admin field, no log line, no message).

A malformed entry is refused here with a message that names the account and the setting, never the key, so that the
issuance path holds a credential with that reason and the doctor (``checks.py``) reports the same text.
"""
import re
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import urlsplit

from django.conf import settings
from django.utils.translation import gettext as _

from openedx_pok.exceptions import PokConfigurationError

DEFAULT_ACCOUNT = "default"
# Longest account name a course mapping or a credential row can store.
MAX_ACCOUNT_NAME_LENGTH = 64
_URL_KEYS = ("url", "api_url")
_KEY_KEYS = ("key", "api_key")
# What an API key is made of once its outer whitespace is stripped: printable ASCII. A space, a line break or a
# control character inside (a bad copy and paste) makes every request fail, so it is refused here, where it is named.
_KEY_CHARACTERS = re.compile(r"[\x21-\x7e]+")
# Whitespace or control characters inside a URL: urlsplit drops some of them, requests refuses the URL.
_URL_BAD_CHARACTERS = re.compile(r"[\s\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Account:
    """One POK organization as this LMS reaches it. The key is kept out of ``repr`` (tracebacks, debug pages)."""

    name: str
    api_url: str
    api_key: str = field(repr=False)

    @property
    def host(self):
        return urlsplit(self.api_url).hostname or ""

    @property
    def has_key(self):
        return bool(self.api_key.strip())


def _raw_accounts():
    """``POK_ACCOUNTS`` as configured; None or empty means "no extra accounts"."""
    value = getattr(settings, "POK_ACCOUNTS", None)
    return {} if value in (None, "") else value


def _first(entry, keys):
    for key in keys:
        if key in entry:
            return entry[key]
    return None


def _checked_url(name, url):
    text = str(url or "").strip() if isinstance(url, str) or url is None else None
    if text is None:
        raise PokConfigurationError(
            _("The URL of POK account '{name}' in POK_ACCOUNTS must be a string.").format(name=name))
    if not text:
        raise PokConfigurationError(_("POK account '{name}' has no API URL: set \"url\" in its POK_ACCOUNTS entry "
                                      "(or POK_API_URL for the default account).").format(name=name))
    try:
        parts = urlsplit(text)
        port = parts.port  # raises for a port that is not a number from 0 to 65535 ("https://api.pok.tech:443x")
    except ValueError:
        parts, port = None, None
    if parts is None or port == 0 or _URL_BAD_CHARACTERS.search(text):
        raise PokConfigurationError(_("The API URL of POK account '{name}' is not a valid URL (check its port, a "
                                      "number from 1 to 65535, and that it has no spaces), e.g. "
                                      "https://api.pok.tech.").format(name=name))
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise PokConfigurationError(_("The API URL of POK account '{name}' must be an absolute https:// URL "
                                      "without query or fragment, e.g. https://api.pok.tech.").format(name=name))
    return text


def _checked_key(name, key, setting):
    """The key without its outer whitespace; PokConfigurationError (naming the account, never the key) otherwise."""
    if not isinstance(key, str) or not key.strip():
        return None
    key = key.strip()
    if not _KEY_CHARACTERS.fullmatch(key):
        raise PokConfigurationError(_("The API key of POK account '{name}' contains spaces, line breaks or other "
                                      "characters an API key cannot have: copy it again from POK into "
                                      "{setting}.").format(name=name, setting=setting))
    return key


def account_names():
    """Every configured account name, ``default`` first; names of malformed entries are included (and refused)."""
    names = [DEFAULT_ACCOUNT]
    raw = _raw_accounts()
    if isinstance(raw, dict):
        names += sorted(str(name) for name in raw if str(name) != DEFAULT_ACCOUNT)
    return names


def get_account(name=None):
    """The :class:`Account` called ``name`` (None: ``default``); PokConfigurationError saying what to fix."""
    name = DEFAULT_ACCOUNT if not name else str(name)
    raw = _raw_accounts()
    if not isinstance(raw, dict):
        if name == DEFAULT_ACCOUNT:
            return _default_account()
        raise PokConfigurationError(_("POK_ACCOUNTS must be a dictionary of account name -> {{\"url\": ..., "
                                      "\"key\": ...}}; POK account '{name}' cannot be used.").format(name=name))
    if name not in raw:
        if name == DEFAULT_ACCOUNT:
            return _default_account()
        raise PokConfigurationError(_("POK account '{name}' is not configured: add it to POK_ACCOUNTS, or choose "
                                      "another account on the course mapping.").format(name=name))
    entry = raw[name]
    if not isinstance(entry, dict):
        raise PokConfigurationError(_("The POK_ACCOUNTS entry of account '{name}' must be a dictionary with \"url\" "
                                      "and \"key\".").format(name=name))
    return _checked_account(name, _first(entry, _URL_KEYS), _first(entry, _KEY_KEYS), in_accounts=True)


def _default_account():
    return _checked_account(DEFAULT_ACCOUNT, settings.POK_API_URL, settings.POK_API_KEY, in_accounts=False)


def _checked_account(name, url, key, in_accounts):
    """The :class:`Account` of these settings values (``in_accounts``: an entry of POK_ACCOUNTS); checked once per
    values when they are strings (the issuance of one credential asks for its account half a dozen times)."""
    if isinstance(url, str) and isinstance(key, str):
        return _remembered_account(name, url, key, in_accounts)
    return _account(name, url, key, in_accounts)


def _account(name, url, key, in_accounts):
    if not in_accounts:
        checked_key = _checked_key(name, key, "POK_API_KEY")
        if checked_key is None:
            raise PokConfigurationError(_("The default POK account has no API key: set POK_API_KEY (or \"key\" of "
                                          "the 'default' entry of POK_ACCOUNTS)."))
    else:
        checked_key = _checked_key(name, key, _("its POK_ACCOUNTS entry"))
        if checked_key is None:
            raise PokConfigurationError(_("POK account '{name}' has no API key: set \"key\" in its POK_ACCOUNTS "
                                          "entry.").format(name=name))
    return Account(name=name, api_url=_checked_url(name, url), api_key=checked_key)


_remembered_account = lru_cache(maxsize=64)(_account)


def is_set(name):
    """Whether the settings configure account ``name``: its POK_ACCOUNTS entry (POK_API_KEY for the default)."""
    raw = _raw_accounts()
    if isinstance(raw, dict) and name in raw:
        return True
    return name == DEFAULT_ACCOUNT and bool(str(settings.POK_API_KEY or "").strip())


def problems():
    """[(account name or None, message)] of everything wrong with the account settings, for the doctor."""
    found = []
    if not isinstance(_raw_accounts(), dict):
        found.append((None, _("POK_ACCOUNTS must be a dictionary of account name -> {\"url\": ..., \"key\": ...}.")))
    for name in account_names():
        if len(name) > MAX_ACCOUNT_NAME_LENGTH:
            found.append((name, _("The POK account name '{name}' is longer than {limit} characters.").format(
                name=name[:MAX_ACCOUNT_NAME_LENGTH], limit=MAX_ACCOUNT_NAME_LENGTH)))
            continue
        try:
            get_account(name)
        except PokConfigurationError as exc:
            found.append((name, str(exc)))
    return found


def api_hosts():
    """The API hosts of every usable account (images and credential pages may come from them)."""
    hosts = []
    for name in account_names():
        try:
            hosts.append(get_account(name).host)
        except PokConfigurationError:
            continue
    return [host for host in hosts if host]
