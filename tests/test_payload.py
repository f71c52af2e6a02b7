"""
Payload rules: names split without losing a word, BCP-47 language tags, dates with an offset, template parameters
that are all present and non-empty, and clear reasons instead of garbage for bad learner data.
"""
from datetime import UTC, datetime, timedelta, timezone

import pytest
from opaque_keys.edx.keys import CourseKey

from openedx_pok.client import Template, TemplateParameter
from openedx_pok.compat import CertificateInfo, CourseInfo, Signatory
from openedx_pok.course_setup.payload import (
    IssuanceContext,
    PayloadError,
    build_credential_payload,
    language_tag,
    split_name,
)

COURSE_KEY = CourseKey.from_string("course-v1:DemoX+POK101+2026")


@pytest.mark.parametrize("name, expected", [
    ("Ada Lovelace", ("Ada", "Lovelace")),
    ("  Ada   Lovelace  ", ("Ada", "Lovelace")),
    ("Cher", ("Cher", "")),
    ("Juan Carlos Pérez García", ("Juan Carlos", "Pérez García")),
    ("Juan Pérez García", ("Juan", "Pérez García")),
    ("Lovelace, Ada", ("Ada", "Lovelace")),
    ("Lovelace, Ada King", ("Ada King", "Lovelace")),
    ("a, b, c", ("a", "b c")),
    ("毛泽东", ("毛泽东", "")),
    ("Сергей Петрович Иванов", ("Сергей", "Петрович Иванов")),
    ("<script>alert(1)</script> Smith", ("<script>alert(1)</script>", "Smith")),
    ("O'Brien-Smith\tJr.", ("O'Brien-Smith", "Jr.")),
    ("Name\x00With\x07Controls", ("NameWithControls", "")),
])
def test_split_name_keeps_every_word(name, expected):
    assert split_name(name) == expected


def test_very_long_name_is_not_truncated():
    words = [f"Word{i}" for i in range(60)]
    first, last = split_name(" ".join(words))
    assert f"{first} {last}".split() == words


@pytest.mark.parametrize("name", [None, "", "   ", "undefined", "NULL", "None", "-", ",", "...", "\x00\x01"])
def test_no_usable_name(name):
    assert split_name(name) is None


@pytest.mark.parametrize("preference, expected", [
    ("en", "en"), ("es-419", "es-419"), ("pt-br", "pt-BR"), ("pt_BR", "pt-BR"), ("zh-hans", "zh-Hans"),
    ("ZH_HANT_TW", "zh-Hant-TW"), ("", None), (None, None), ("not a language", None), ("e", None),
])
def test_language_tag(preference, expected):
    assert language_tag(preference) == expected


def make_context(**overrides):
    values = {
        "course": CourseInfo(
            course_key=COURSE_KEY, display_name="Intro to POK", org="DemoX", org_name="Demo University",
            start=datetime(2026, 1, 5, tzinfo=UTC), end=datetime(2026, 6, 30, tzinfo=UTC),
            certificate_title="", signatories=(Signatory("Grace Hopper", "Dean", "Demo University"),),
        ),
        "certificate": CertificateInfo(
            status="downloadable", verify_uuid="a" * 32, mode="verified", grade="0.87",
            created=datetime(2026, 7, 1, 12, 30, tzinfo=timezone(timedelta(hours=-3))),
        ),
        "template": Template(id="tpl-basic", name="Basic", version=None, custom_parameters=()),
        "email": "ada@example.com",
        "profile_name": "Ada Lovelace",
        "language": "es-419",
        "platform_name": "Demo Academy",
        "emission_type": "pok",
        "date_format": "dd/MM/yyyy",
        "skip_acceptance": True,
        "grade": 0.91,
        "tags": ("openedx", str(COURSE_KEY)),
    }
    values.update(overrides)
    return IssuanceContext(**values)


def test_full_payload():
    payload = build_credential_payload(make_context(page_id="page-1"))
    assert payload == {
        "credential": {
            "emissionType": "pok",
            "dateFormat": "dd/MM/yyyy",
            "emissionDate": "2026-07-01T15:30:00+00:00",
            "title": "Intro to POK",
            "emitter": "Demo University",
            "tags": ["openedx", str(COURSE_KEY)],
            "skipAcceptance": True,
        },
        "receiver": {"firstName": "Ada", "lastName": "Lovelace", "email": "ada@example.com", "languageTag": "es-419"},
        "customization": {"template": {"id": "tpl-basic", "customParameters": {}}, "page": "page-1"},
    }


def test_certificate_title_wins_and_page_is_omitted_when_empty():
    context = make_context()
    context = make_context(course=CourseInfo(**{**context.course.__dict__, "certificate_title": "POK Fundamentals"}))
    payload = build_credential_payload(context)
    assert payload["credential"]["title"] == "POK Fundamentals"
    assert "page" not in payload["customization"]


def test_naive_emission_date_is_taken_as_utc():
    context = make_context(certificate=CertificateInfo(status="downloadable", created=datetime(2026, 2, 3, 4, 5)))
    assert build_credential_payload(context)["credential"]["emissionDate"] == "2026-02-03T04:05:00+00:00"


def test_template_parameters_resolved_by_id_then_label():
    template = Template(id="tpl-grade", name="Grade", version=1, custom_parameters=(
        TemplateParameter(id="grade", label="Grade"),
        TemplateParameter(id="p2", label="Platform name"),
        TemplateParameter(id="courseStart", label="x"),
        TemplateParameter(id="signatory_title", label="y"),
    ))
    params = build_credential_payload(make_context(template=template))["customization"]["template"]["customParameters"]
    assert params == {"grade": "91%", "p2": "Demo Academy", "courseStart": "05/01/2026", "signatory_title": "Dean"}


def test_grade_falls_back_to_the_certificate_grade():
    template = Template(id="t", name="t", version=None, custom_parameters=(TemplateParameter("grade", "Grade"),))
    payload = build_credential_payload(make_context(template=template, grade=None))
    assert payload["customization"]["template"]["customParameters"] == {"grade": "87%"}


def test_unresolvable_parameters_are_named():
    template = Template(id="tpl-x", name="x", version=None, custom_parameters=(
        TemplateParameter("grade", "Grade"), TemplateParameter("favourite_colour", "Colour"),
        TemplateParameter("signatory2", "Second signatory"),
    ))
    with pytest.raises(PayloadError) as error:
        build_credential_payload(make_context(template=template))
    assert "favourite_colour" in error.value.reason and "signatory2" in error.value.reason
    assert "grade" not in error.value.reason.split(":")[-1]


@pytest.mark.parametrize("email", ["", None, "not-an-email", "a@b", " @example.com"])
def test_bad_email_holds(email):
    with pytest.raises(PayloadError, match="email"):
        build_credential_payload(make_context(email=email))


@pytest.mark.parametrize("name", ["", "undefined", None])
def test_no_name_holds(name):
    with pytest.raises(PayloadError, match="name"):
        build_credential_payload(make_context(profile_name=name))


def test_unknown_language_is_omitted():
    payload = build_credential_payload(make_context(language="??"))
    assert "languageTag" not in payload["receiver"]


def test_us_date_format_and_unknown_format():
    template = Template(id="t", name="t", version=None, custom_parameters=(TemplateParameter("end_date", "End"),))
    payload = build_credential_payload(make_context(template=template, date_format="MM/dd/yyyy"))
    assert payload["customization"]["template"]["customParameters"] == {"end_date": "06/30/2026"}
    assert build_credential_payload(make_context(date_format="yyyy"))["credential"]["dateFormat"] == "dd/MM/yyyy"
