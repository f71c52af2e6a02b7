"""
Translations: the catalogs in openedx_pok/locale are found by Django (an installed app's own), complete, valid,
compiled, and used by the pages the learner sees; a language without a catalog falls back to English.

The msgfmt checks need GNU gettext (``apt-get install gettext``; .ci/run installs it).
"""
import gettext as gnu_gettext
import json
import os
import pathlib
import re
import shutil
import subprocess
import types

import pytest
from django.apps import apps
from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext, ngettext

import openedx_pok
from lms_sandbox.envs.derived import Derived
from openedx_pok import api
from openedx_pok.models import CredentialStatus, PokCertificate
from openedx_pok.pages import render
from openedx_pok.settings import common, production

# Django loads an installed app's catalogs from <app>/locale: no LOCALE_PATHS entry is needed (or made).
LOCALE_DIR = pathlib.Path(openedx_pok.__file__).resolve().parent / "locale"
LANGUAGES = {"es_419": "nplurals=2; plural=(n != 1);", "pt_BR": "nplurals=2; plural=(n > 1);"}
HEADING = "Your credential is being issued"
HEADINGS = {"es-419": "Su credencial se está emitiendo", "pt-br": "Sua credencial está sendo emitida"}
READY = {"es-419": "Su credencial está lista. Abriéndola…", "pt-br": "Sua credencial está pronta. Abrindo…"}


# --- where the catalogs are found ----------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", ["derived", "function", "list", "tuple", "absent"])
@pytest.mark.parametrize("phases", [(common,), (common, production), (production,)])
def test_the_settings_phases_leave_locale_paths_alone(shape, phases):
    """Whatever the platform's LOCALE_PATHS is at that moment (a placeholder, a function, a value, absent), the
    plugin neither reads nor replaces it: in the LMS's common phase it is not a list yet."""
    values = {"derived": Derived(lambda _settings: ["/edx/app/edx-platform/conf/locale"]),
              "function": lambda _settings: ["/edx/app/edx-platform/conf/locale"],
              "list": ["/edx/app/edx-platform/conf/locale"], "tuple": ("/edx/app/edx-platform/conf/locale",)}
    module = types.ModuleType("lms_settings")
    if shape in values:
        module.LOCALE_PATHS = values[shape]
    for phase in phases:
        phase.plugin_settings(module)
    if shape == "absent":
        assert not hasattr(module, "LOCALE_PATHS")
    else:
        assert module.LOCALE_PATHS is values[shape]


def test_the_catalogs_are_the_apps_own_which_django_finds_without_a_setting():
    assert sorted(path.name for path in LOCALE_DIR.iterdir() if path.is_dir()) == sorted(LANGUAGES)
    assert all(pathlib.Path(path).resolve() != LOCALE_DIR for path in settings.LOCALE_PATHS)
    with translation.override("es-419"):
        assert gettext(HEADING) == HEADINGS["es-419"]


# --- the catalogs ---------------------------------------------------------------------------------------------------

def _unquote(text):
    return json.loads(text)  # PO string escapes (\\ \" \n \t) are a subset of JSON's


def parse_po(path):
    """The entries of a .po file as dicts: msgid, msgid_plural, msgstr (list), flags; obsolete entries skipped."""
    entries = []
    for block in path.read_text(encoding="utf-8").strip().split("\n\n"):
        entry, key = {"flags": set(), "msgstr": {}}, None
        for line in block.splitlines():
            if line.startswith("#~"):
                entry = None
                break
            if line.startswith("#,"):
                entry["flags"].update(flag.strip() for flag in line[2:].split(","))
            elif line.startswith("#"):
                continue
            elif match := re.match(r'^(msgctxt|msgid_plural|msgid|msgstr(?:\[(\d+)\])?) (".*")$', line):
                key = int(match.group(2)) if match.group(2) else match.group(1)
                if key == "msgstr":
                    key = 0
                if isinstance(key, int):
                    entry["msgstr"][key] = _unquote(match.group(3))
                else:
                    entry[key] = _unquote(match.group(3))
            elif line.startswith('"'):
                if isinstance(key, int):
                    entry["msgstr"][key] += _unquote(line)
                else:
                    entry[key] += _unquote(line)
        if entry is not None and "msgid" in entry:
            entry["msgstr"] = [entry["msgstr"][index] for index in sorted(entry["msgstr"])]
            entries.append(entry)
    return entries


def po_path(language):
    return LOCALE_DIR / language / "LC_MESSAGES" / "django.po"


def placeholders(text):
    """Python format fields, brace fields and HTML tags, which a translation must keep exactly."""
    return sorted(re.findall(r"%\(\w+\)[sd]|\{\w*\}|</?[a-z][^>]*>", text))


@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_catalog_header(language):
    header = next(entry for entry in parse_po(po_path(language)) if entry["msgid"] == "")
    fields = dict(line.split(": ", 1) for line in header["msgstr"][0].splitlines() if line)
    assert fields["Language"] == language
    assert fields["Content-Type"] == "text/plain; charset=UTF-8"
    assert fields["Plural-Forms"] == LANGUAGES[language]
    assert "fuzzy" not in header["flags"]


@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_every_message_is_translated_and_keeps_its_placeholders(language):
    entries = [entry for entry in parse_po(po_path(language)) if entry["msgid"]]
    assert len(entries) > 50
    for entry in entries:
        assert "fuzzy" not in entry["flags"], entry["msgid"]
        assert entry["msgstr"] and all(entry["msgstr"]), entry["msgid"]
        if "msgid_plural" in entry:
            assert len(entry["msgstr"]) == 2, entry["msgid"]
            sources = [entry["msgid"], entry["msgid_plural"]]
        else:
            assert len(entry["msgstr"]) == 1, entry["msgid"]
            sources = [entry["msgid"]]
        for source, translated in zip(sources, entry["msgstr"], strict=True):
            assert placeholders(translated) == placeholders(source), (source, translated)


def msgfmt():
    path = shutil.which("msgfmt")
    assert path, "GNU gettext's msgfmt is needed for this test: apt-get install gettext"
    return path


@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_msgfmt_check_reports_no_untranslated_or_fuzzy_message(language):
    result = subprocess.run(
        [msgfmt(), "--check", "--statistics", "-o", os.devnull, str(po_path(language))],
        capture_output=True, text=True, check=False, env={**os.environ, "LC_ALL": "C", "LANGUAGE": ""},
    )
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"\d+ translated messages?\.\n", result.stderr), result.stderr


def load_mo(path):
    with open(path, "rb") as handle:
        return gnu_gettext.GNUTranslations(handle)


@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_compiled_catalog_is_up_to_date(language, tmp_path):
    """The committed .mo holds exactly what compiling the .po gives (run ``make compile-translations``)."""
    fresh = tmp_path / "django.mo"
    subprocess.run([msgfmt(), "--check-format", "-o", str(fresh), str(po_path(language))],
                   check=True, capture_output=True)
    committed = load_mo(po_path(language).with_suffix(".mo"))
    expected = load_mo(fresh)
    assert committed._catalog == expected._catalog  # noqa: SLF001
    assert committed.info() == expected.info()


# --- what the learner and staff see ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("language", "expected"), [
    ("es-419", {"status": "Su credencial se está emitiendo", "model": "credencial de POK", "emitted": "Emitida",
                "app": "Credenciales de POK",
                "missing": "El curso course-v1:X+Y+Z no existe en Open edX.",
                "one": "1 credencial programada para su emisión.",
                "two": "2 credenciales programadas para su emisión.",
                "zero": "0 credenciales programadas para su emisión."}),
    ("pt-br", {"status": "Sua credencial está sendo emitida", "model": "credencial do POK", "emitted": "Emitida",
               "app": "Credenciais do POK",
               "missing": "O curso course-v1:X+Y+Z não existe no Open edX.",
               "one": "1 credencial agendada para emissão.",
               "two": "2 credenciais agendadas para emissão.",
               "zero": "0 credencial agendada para emissão."}),  # pt_BR: 0 takes the singular
])
def test_messages_are_translated(language, expected):
    def scheduled(count):
        return ngettext("%(count)d credential scheduled for issuance.",
                        "%(count)d credentials scheduled for issuance.", count) % {"count": count}

    with translation.override(language):
        assert gettext(HEADING) == expected["status"]
        assert str(PokCertificate._meta.verbose_name) == expected["model"]
        assert str(apps.get_app_config("openedx_pok").verbose_name) == expected["app"]
        assert str(CredentialStatus.EMITTED.label) == expected["emitted"]
        missing = gettext("The course {course} does not exist in Open edX.").format(course="course-v1:X+Y+Z")
        assert missing == expected["missing"]
        assert [scheduled(1), scheduled(2), scheduled(0)] == [expected["one"], expected["two"], expected["zero"]]


@pytest.fixture
def in_progress(course, learner):
    return PokCertificate.objects.create(
        user=learner, course_key=course.id, status=CredentialStatus.IN_PROGRESS, title="Verifiable Credentials 101",
    )


def render_status_page(row, language):
    """The status page as the render step returns it: the LMS renders inside translation.override(language)."""
    context = {"platform_name": "Test Academy", "accomplishment_copy_name": "Ada <b>Lovelace</b>",
               "user_language": language, "course_id": str(row.course_key)}
    with translation.override(language):
        response = render.page_response(api.page_for_credential(row), context)
    assert response.status_code == 200
    content = response.content.decode()
    config = json.loads(re.search(r'<script id="pok-poll-config" type="application/json">(.*?)</script>', content,
                                  re.S).group(1))
    return content, config


@pytest.mark.parametrize("language", sorted(HEADINGS))
def test_status_page_in_the_learners_language(in_progress, language):
    content, config = render_status_page(in_progress, language)
    assert f'<html lang="{language}"' in content
    assert f"<h1>{HEADINGS[language]}</h1>" in content
    assert f"<title>{HEADINGS[language]} | Test Academy</title>" in content
    assert HEADING not in content
    # The blocktrans variables are filled in and still escaped; the HTML of the translation is kept.
    assert "Ada &lt;b&gt;Lovelace&lt;/b&gt;" in content and "<b>Lovelace" not in content
    assert "<strong>Verifiable Credentials 101</strong>" in content
    assert f"<code>{in_progress.uuid}</code>" in content
    assert config["readyText"] == READY[language]


def test_unsupported_language_falls_back_to_english(in_progress):
    with translation.override("xx"):
        assert gettext(HEADING) == HEADING
        assert str(PokCertificate._meta.verbose_name) == "POK credential"
    content, config = render_status_page(in_progress, "xx")
    assert f"<h1>{HEADING}</h1>" in content
    assert "Ada &lt;b&gt;Lovelace&lt;/b&gt; earned a certificate for <strong>Verifiable Credentials 101</strong>" \
        in content
    assert config["readyText"] == "Your credential is ready. Opening it…"
