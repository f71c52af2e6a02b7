"""
Parameter mapping: each template parameter gets a source from the registry; automatic resolution stays the default;
a source that yields nothing holds the credential with a reason naming the parameter and the source.
"""
from datetime import UTC, datetime

import pytest
from opaque_keys.edx.keys import CourseKey

from openedx_pok.client import Template, TemplateParameter
from openedx_pok.compat import CertificateInfo, CourseInfo, Signatory
from openedx_pok.course_setup import parameters
from openedx_pok.course_setup.payload import (
    AUTOMATIC_NAMES,
    IssuanceContext,
    builtin_parameter_values,
    resolve_custom_parameters,
    source_values,
)
from openedx_pok.exceptions import LearnerDataError
from openedx_pok.models import CertificateTemplate, CredentialStatus, PokCertificate


def shout_username(context):
    return context.username.upper()


def explode(context):
    raise RuntimeError("operator bug")


def make_context(params, sources=None, **overrides):
    course = CourseInfo(course_key=CourseKey.from_string("course-v1:DemoX+POK101+2026"), display_name="VC 101",
                        org="DemoX", org_name="Demo University", start=datetime(2026, 1, 5, tzinfo=UTC),
                        language="es", signatories=(Signatory("Dr. Who", "Dean", "Demo U"),))
    values = {"course": course, "template": Template(id="tpl", custom_parameters=tuple(
        TemplateParameter(id=i, label=label) for i, label in params)),
        "certificate": CertificateInfo(status="downloadable", verify_uuid="a" * 32, mode="verified", grade="0.87",
                                    created=datetime(2026, 3, 1, tzinfo=UTC)),
        "email": "ada@example.com", "profile_name": "Ada King Lovelace", "language": "en",
        "platform_name": "Test Academy",
        "emission_type": "pok", "date_format": "dd/MM/yyyy", "skip_acceptance": True, "grade": 0.87, "username": "ada",
        "parameter_sources": sources or {}}
    values.update(overrides)
    return IssuanceContext(**values)


def test_every_registry_source_gives_its_value(settings):
    settings.LMS_ROOT_URL = "https://lms.example"
    sources = {
        "learner.full_name": "Ada King Lovelace", "learner.first_name": "Ada", "learner.last_name": "King Lovelace",
        "learner.username": "ada", "learner.email": "ada@example.com", "grade.percent": "87%", "grade.letter": "0.87",
        "course.title": "VC 101", "course.number": "POK101", "course.organization": "Demo University",
        "course.start": "05/01/2026", "course.language": "es", "certificate.date": "01/03/2026",
        "certificate.mode": "verified", "certificate.verify_url": "https://lms.example/certificates/" + "a" * 32,
        "platform.name": "Test Academy", "signatory.1.name": "Dr. Who", "signatory.1.title": "Dean",
        "signatory.1.organization": "Demo U",
    }
    context = make_context([(f"p{i}", f"P{i}") for i in range(len(sources))],
                           {f"p{i}": {"source": s} for i, s in enumerate(sources)})
    resolved = resolve_custom_parameters(context)
    assert resolved == {f"p{i}": value for i, value in enumerate(sources.values())}


def test_fixed_text_and_operator_functions(settings):
    settings.POK_PARAMETER_SOURCES = {"shout": "tests.test_parameters.shout_username"}
    context = make_context([("motto", "Motto"), ("who", "Who")], {
        "motto": {"source": "fixed", "value": "Lux et veritas"}, "who": {"source": "custom.shout"}})
    assert resolve_custom_parameters(context) == {"motto": "Lux et veritas", "who": "ADA"}
    assert ("custom.shout", "Custom: shout") in parameters.choices()


def test_unmapped_parameters_keep_the_automatic_resolution():
    context = make_context([("grade", "Grade"), ("course_name", "Course name")])
    assert resolve_custom_parameters(context) == {"grade": "87%", "course_name": "VC 101"}


@pytest.mark.parametrize("spec, named", [
    ({"source": "course.end"}, "course.end"),
    ({"source": "signatory.2.name"}, "signatory.2.name"),
    ({"source": "custom.boom"}, "custom.boom"),
])
def test_a_source_without_value_names_parameter_and_source(settings, spec, named):
    settings.POK_PARAMETER_SOURCES = {"boom": "tests.test_parameters.explode"}
    with pytest.raises(LearnerDataError) as caught:
        resolve_custom_parameters(make_context([("when", "When")], {"when": spec}))
    assert "when" in caught.value.reason and named in caught.value.reason


def test_spec_validation():
    assert parameters.spec_error({"source": "learner.first_name"}) is None
    assert parameters.spec_error({"source": "fixed", "value": " "})
    assert "unknown source" in parameters.spec_error({"source": "learner.shoe_size"})
    assert parameters.spec_error("learner.first_name")


def test_automatic_names_match_the_builtin_values():
    keys = set(builtin_parameter_values(make_context([])))
    assert {key for key in keys if not key.startswith("signatory1")} == set(AUTOMATIC_NAMES)
    assert set(source_values(make_context([]))) >= set(parameters.BUILTIN_SOURCES) - {"certificate.verify_url"}


@pytest.mark.django_db
def test_issuance_uses_the_mapping_sources(pok, course, learner, lms):
    pok.add_template("tpl-named", "Named", [("first", "First"), ("motto", "Motto")])
    CertificateTemplate.objects.filter(course_key=course.id).update(
        template_id="tpl-named", parameter_sources={"first": {"source": "learner.first_name"},
                                                    "motto": {"source": "fixed", "value": "Sapere aude"}})
    lms.award(learner, course)
    row = PokCertificate.objects.get()
    assert row.status == CredentialStatus.EMITTED
    assert row.custom_parameters == {"first": "Ada", "motto": "Sapere aude"}
