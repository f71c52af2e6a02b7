"""
The course mapping admin (Django test client): pickers by name, validation on save against the synced catalog,
parameter sources, the catalog sync action, the accounts page with its connection test, the staff preview.
"""
import re

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from opaque_keys.edx.keys import CourseKey

from lms_sandbox.factories import (
    CourseEnrollmentFactory,
    CourseOverviewFactory,
    GeneratedCertificateFactory,
    StaffFactory,
)
from openedx_pok.course_setup import catalog
from openedx_pok.models import CertificateTemplate, PokCertificate, PokTemplate

pytestmark = pytest.mark.django_db
BETA_KEY = "b7a1c9e2-0000-4000-8000-0000000000be"
ADD = "admin:openedx_pok_certificatetemplate_add"


@pytest.fixture
def admin_client(client):
    client.force_login(get_user_model().objects.create_superuser("boss", "boss@example.com", "pw"))
    return client


def post_mapping(client, follow=False, **fields):
    data = {"course_key": "course-v1:OrgZ+C1+2026", "organization": "", "account": "default",
            "template_id": "tpl-basic", "emission_type": "pok", "page_id": "", "enabled": "on", **fields}
    return client.post(reverse(ADD), data, follow=follow)


def test_pickers_offer_templates_and_pages_by_name_with_their_account(admin_client, pok, settings):
    pok.add_organization(BETA_KEY, name="Beta Org", templates=[("tpl-beta", "Beta diploma")], pages=[])
    settings.POK_ACCOUNTS = {"beta": {"url": pok.url, "key": BETA_KEY}}
    catalog.sync()
    page = admin_client.get(reverse(ADD)).content.decode()
    assert "Certificate with grade [default]" in page and "Beta diploma [beta]" in page
    assert "Default page [default]" in page and '<option value="beta">beta</option>' in page
    assert BETA_KEY not in page


def test_saving_validates_the_template_on_the_account_synced_on_demand(admin_client, pok):
    response = post_mapping(admin_client)
    assert response.status_code == 302 and PokTemplate.objects.filter(pok_id="tpl-basic").exists()
    assert CertificateTemplate.objects.get().account == "default"
    response = post_mapping(admin_client, course_key="course-v1:OrgZ+C2+2026", template_id="tpl-gone")
    assert response.status_code == 200
    assert "The template tpl-gone does not exist on POK account" in response.content.decode()


def test_a_template_deleted_on_pok_is_refused_after_a_refresh(admin_client, pok):
    catalog.sync("default")
    pok.remove_template("tpl-basic")
    response = post_mapping(admin_client, refresh_catalog="on")
    assert response.status_code == 200 and "does not exist on POK account" in response.content.decode()
    assert not CertificateTemplate.objects.exists()


def test_every_parameter_needs_a_source_and_errors_name_it(admin_client, pok):
    pok.add_template("tpl-named", "Named", [("honours", "Honours"), ("grade", "Grade")])
    catalog.sync("default")
    response = post_mapping(admin_client, template_id="tpl-named")
    content = response.content.decode()
    assert response.status_code == 200 and "Parameter &#x27;Honours&#x27; has no source" in content
    form = response.context["adminform"].form
    field, value_field = field_named(form, "honours"), field_named(form, "honours", "value")
    response = post_mapping(admin_client, template_id="tpl-named", **{field: "fixed", value_field: "Cum laude"})
    assert response.status_code == 302
    assert CertificateTemplate.objects.get().parameter_sources == {
        "honours": {"source": "fixed", "value": "Cum laude"}}
    mapping = CertificateTemplate.objects.get()
    change = admin_client.get(reverse("admin:openedx_pok_certificatetemplate_change", args=[mapping.pk]))
    assert "Cum laude" in change.content.decode()


def test_an_unknown_account_is_refused(admin_client, pok, settings):
    settings.POK_ACCOUNTS = {"beta": {"url": pok.url}}
    response = post_mapping(admin_client, account="beta")
    assert response.status_code == 200 and "has no API key" in response.content.decode()


def test_blockchain_shows_the_accounts_remaining_credits(admin_client, pok):
    pok.available_credits = 42
    catalog.sync("default")
    page = admin_client.get(reverse(ADD)).content.decode()
    assert "has 42 credits left" in page
    # When it was checked, as the reader's dates read (it showed 2026-12-07T10:39:25+00:00).
    checked = re.search(r"credits left \(checked ([^)]*)\)", page).group(1)
    assert not re.search(r"\d{4}-\d\d-\d\dT\d", checked), checked


def test_sync_action_and_accounts_page(admin_client, pok):
    mapping = CertificateTemplate.objects.create(course_key="course-v1:OrgZ+C1+2026", template_id="tpl-basic")
    response = admin_client.post(reverse("admin:openedx_pok_certificatetemplate_changelist"), {
        "action": "sync_pok_catalog", "_selected_action": [mapping.pk]}, follow=True)
    assert "2 templates, 1 page." in response.content.decode()
    url = reverse("admin:openedx_pok_accounts")
    page = admin_client.get(url)
    assert page.status_code == 200 and "Simulated Org" in page.content.decode()
    assert not re.search(r"\d{4}-\d\d-\d\dT\d", page.content.decode())  # when it was checked, as dates read
    content = admin_client.post(url, {"account": "default", "do": "test"}).content.decode()
    assert "Simulated Org" in content and "credits available" in content
    pok.api_key = "rotated-key"
    content = admin_client.post(url, {"account": "default", "do": "test"}).content.decode()
    assert "refused the API key of account" in content


def test_preview_renders_with_a_real_learner_on_click_only(admin_client, pok, course, learner):
    CourseEnrollmentFactory(user=learner, course=course)
    mapping = CertificateTemplate.objects.get()
    url = reverse("admin:openedx_pok_mapping_preview", args=[mapping.pk])
    assert admin_client.get(url).status_code == 200
    assert pok.count("preview_template") == 0  # opening the page calls nothing
    response = admin_client.post(url, {"learner": learner.username})
    assert response.context["image_url"] and not response.context["error"]
    [preview] = [r for r in pok.requests if r.endpoint == "preview_template"]
    assert preview.body["receiver"]["firstName"] == "Ada"
    assert admin_client.post(url, {"learner": "nobody"}).context["error"]


def test_preview_is_staff_only(client, pok, course):
    user = get_user_model().objects.create_user("learner2", "l2@example.com", "pw")
    client.force_login(user)
    url = reverse("admin:openedx_pok_mapping_preview", args=[CertificateTemplate.objects.get().pk])
    response = client.post(url, {"learner": "learner2"})
    assert response.status_code in (302, 403) and pok.count("preview_template") == 0


def test_an_account_with_a_bad_port_or_a_key_with_spaces_is_refused(admin_client, pok, settings):
    settings.POK_ACCOUNTS = {"beta": {"url": "https://api.pok.tech:443x", "key": BETA_KEY},
                             "gamma": {"url": pok.url, "key": "b7a1c9e2 0000"}}
    response = post_mapping(admin_client, account="beta")
    assert response.status_code == 200 and "is not a valid URL (check its port" in response.content.decode()
    response = post_mapping(admin_client, account="gamma")
    content = response.content.decode()
    assert response.status_code == 200 and "The API key of POK account &#x27;gamma&#x27; contains spaces" in content
    assert "b7a1c9e2 0000" not in content and not CertificateTemplate.objects.exists()


def test_ids_that_cannot_be_used_are_refused_and_do_not_break_the_save(admin_client, pok):
    pok.add_template("..", "Dots")  # the on-demand sync used to GET /template/.. and answer 500
    assert post_mapping(admin_client).status_code == 302
    for fields, message in (({"template_id": "."}, "&#x27;.&#x27; cannot be the id of a POK template"),
                            ({"page_id": ".."}, "&#x27;..&#x27; cannot be the id of a POK page"),
                            ({"template_id": "t" * 256}, "cannot be longer than 255 characters")):
        response = post_mapping(admin_client, course_key="course-v1:OrgZ+C2+2026", **fields)
        assert response.status_code == 200 and message in response.content.decode(), fields
    assert CertificateTemplate.objects.count() == 1


@pytest.fixture
def preview(admin_client, pok, course):
    """POST a learner (username or id) to the preview of the course's mapping: (context error, image URL)."""
    def post(learner, mapping=None):
        mapping = mapping or CertificateTemplate.objects.get(course_key=course.id)
        response = admin_client.post(reverse("admin:openedx_pok_mapping_preview", args=[mapping.pk]),
                                     {"learner": learner})
        assert response.status_code == 200
        return response.context["error"], response.context["image_url"]
    return post


def test_the_preview_renders_learners_of_the_course_only(preview, pok, course):
    colleague = StaffFactory()  # another staff member: POK must not render their name
    error, image_url = preview(colleague.username)
    assert "No learner of this course" in error and not image_url
    assert preview(str(colleague.id))[0] == error == preview("nobody")[0]  # no hint whether the user exists
    CourseEnrollmentFactory(user=colleague, course=course, is_active=False)  # unenrolled: not a learner any more
    assert preview(colleague.username)[0] == error
    assert pok.count("preview_template") == 0
    enrolled = CourseEnrollmentFactory(course=course).user
    certified = GeneratedCertificateFactory(course_id=course.id).user  # unenrolled since, still holds it
    for learner in (enrolled, certified):
        error, image_url = preview(learner.username)
        assert image_url and not error
    assert [r.body["receiver"]["firstName"] for r in pok.requests if r.endpoint == "preview_template"] == [
        enrolled.first_name, certified.first_name]


def test_an_organization_preview_renders_a_learner_of_one_of_its_courses(preview, pok, course):
    mapping = CertificateTemplate.objects.create(organization="DemoX", template_id="tpl-basic")
    other = CourseOverviewFactory(id=CourseKey.from_string("course-v1:OtherX+O1+2026"))
    outsider = CourseEnrollmentFactory(course=other).user
    assert "No learner of this course" in preview(outsider.username, mapping)[0]
    learner = CourseEnrollmentFactory(course=course).user
    error, image_url = preview(learner.username, mapping)
    assert image_url and not error
    [rendered] = [r for r in pok.requests if r.endpoint == "preview_template"]
    assert rendered.body["credential"]["title"] == course.display_name


def test_the_preview_page_says_who_can_be_previewed_and_takes_odd_ids(admin_client, preview, course):
    mapping = CertificateTemplate.objects.get(course_key=course.id)
    page = admin_client.get(reverse("admin:openedx_pok_mapping_preview", args=[mapping.pk])).content.decode()
    assert "Only a learner of this course: enrolled in it or holding its certificate" in page
    for odd in ("²", "１２", "99999999999999999999999"):  # digits to str.isdigit, not ids: no 500
        assert "No learner of this course" in preview(odd)[0]


# ---- issue 20: a course admin succeeds alone ------------------------------------------------------------------

CHANGELIST = "admin:openedx_pok_certificatetemplate_changelist"


def change_url(mapping):
    return reverse("admin:openedx_pok_certificatetemplate_change", args=[mapping.pk])


def field_named(form, parameter_id, kind="source"):
    """The form field name of a parameter's source (or fixed text) picker, found by the parameter's id."""
    return next(name for name, field in form.fields.items()
                if name.startswith(f"{kind}_") and getattr(field, "parameter_id", None) == parameter_id)


def is_hidden(form, name):
    return "data-pok-hidden" in str(form[name])


@pytest.mark.parametrize("typo", ["DemoX DATA303", "course-v1:DemoX+DATA303", "course-v1:DemoX+DATA 303+2026"])
def test_a_course_key_with_a_typo_is_a_field_error_not_a_server_error(admin_client, pok, typo):
    response = post_mapping(admin_client, course_key=typo)  # answered HTTP 500 (InvalidKeyError)
    assert response.status_code == 200
    [error] = response.context["adminform"].form.errors["course_key"]
    assert "is not a course key" in error and "course-v1:" in error
    assert not CertificateTemplate.objects.exists()


def test_an_empty_catalog_is_synced_when_the_form_opens_once(admin_client, pok):
    assert not PokTemplate.objects.exists()
    page = admin_client.get(reverse(ADD)).content.decode()
    assert "Certificate with grade [default]" in page and "Basic certificate [default]" in page
    assert pok.count("list_templates") == 1
    admin_client.get(reverse(ADD))
    assert pok.count("list_templates") == 1  # the catalog is not empty any more: no call to POK


def test_a_failed_sync_of_an_empty_catalog_says_why_and_is_not_retried_on_every_page(admin_client, pok):
    pok.api_key = "rotated-key"
    page = admin_client.get(reverse(ADD)).content.decode()
    assert "refused the API key of account" in page and "Sync templates from POK" in page
    calls = pok.count()
    admin_client.get(reverse(ADD))
    assert pok.count() == calls


def test_sync_now_pulls_the_catalog_and_keeps_what_was_typed(admin_client, pok):
    catalog.sync("default")
    pok.add_template("tpl-new", "New diploma", version="2")
    response = admin_client.post(reverse(ADD), {"course_key": "course-v1:OrgZ+C9+2026", "organization": "",
                                                "account": "default", "template_id": "", "emission_type": "pok",
                                                "page_id": "", "enabled": "on", "_pok_sync": "1"})
    content = response.content.decode()
    assert response.status_code == 200 and "New diploma (version 2) [default]" in content
    assert 'value="course-v1:OrgZ+C9+2026"' in content and not response.context["adminform"].form.errors
    assert "3 templates" in content and not CertificateTemplate.objects.exists()


def test_the_refresh_box_syncs_even_without_a_template(admin_client, pok, settings):
    catalog.sync("default")
    pok.add_template("tpl-new", "New diploma")
    response = post_mapping(admin_client, template_id="", refresh_catalog="on")
    content = response.content.decode()
    assert response.status_code == 200 and "New diploma [default]" in content and "3 templates, 1 page." in content
    assert PokTemplate.objects.filter(pok_id="tpl-new").exists()


def test_the_admin_index_leads_to_the_synced_templates_and_the_accounts(admin_client, pok):
    pok.add_template("tpl-named", "Named", [("honours", "Honours distinction")], version="3")
    pok.add_template("tpl-old", "Old diploma")
    catalog.sync("default")
    pok.remove_template("tpl-old")
    catalog.sync("default")
    templates = reverse("admin:openedx_pok_poktemplate_changelist")
    index = admin_client.get(reverse("admin:index")).content.decode()
    assert templates in index
    # The accounts have their own entry on the index, which opens the accounts page.
    accounts_entry = reverse("admin:openedx_pok_pokaccount_changelist")
    assert f'href="{accounts_entry}"' in index and ">POK accounts</a>" in index
    assert admin_client.get(accounts_entry).url == reverse("admin:openedx_pok_accounts")
    assert admin_client.get(reverse("admin:openedx_pok_pokaccount_add")).status_code == 403
    page = admin_client.get(templates).content.decode()
    for shown in ("Named", "3", "Honours distinction", "Grade, Platform", "Old diploma", "Missing on POK",
                  reverse("admin:openedx_pok_accounts"), "Simulated Org"):
        assert shown in page, shown
    assert admin_client.get(reverse("admin:openedx_pok_poktemplate_add")).status_code == 403
    for url in (reverse(ADD), reverse(CHANGELIST)):  # not only from a saved mapping
        page = admin_client.get(url).content.decode()
        assert reverse("admin:openedx_pok_accounts") in page and templates in page, url


def test_a_mapping_needs_a_template_unless_there_is_a_default(admin_client, pok, settings):
    settings.POK_DEFAULT_TEMPLATE_ID = ""
    response = post_mapping(admin_client, template_id="")  # was "added successfully": every learner held
    form = response.context["adminform"].form
    assert response.status_code == 200 and "no default template is set" in form.errors["template_id"][0]
    assert form.fields["template_id"].choices[0] == ("", "Choose a POK template")  # was "(POK_DEFAULT_TEMPLATE_ID)"
    assert not CertificateTemplate.objects.exists()
    settings.POK_DEFAULT_TEMPLATE_ID = "tpl-basic"
    assert "Default template: Basic certificate" in admin_client.get(reverse(ADD)).content.decode()
    assert post_mapping(admin_client, template_id="").status_code == 302


def test_a_course_or_organization_the_lms_does_not_know_is_saved_with_a_warning(admin_client, pok, course):
    response = post_mapping(admin_client, course_key="course-v1:DemoX+DATA303+2026", follow=True)
    assert "course-v1:DemoX+DATA303+2026 does not exist in Open edX yet" in response.content.decode()
    assert CertificateTemplate.objects.filter(course_key="course-v1:DemoX+DATA303+2026").exists()
    response = post_mapping(admin_client, course_key="", organization="NoSuchX", follow=True)
    assert "organization NoSuchX" in response.content.decode() and CertificateTemplate.objects.count() == 3
    known = CourseOverviewFactory(id=CourseKey.from_string("course-v1:DemoX+DATA304+2026"), org="DemoX")
    for fields in ({"course_key": str(known.id)}, {"course_key": "", "organization": "DemoX"}):
        content = post_mapping(admin_client, **fields, follow=True).content.decode()
        assert "does not exist in Open edX" not in content and "messagelist" in content, fields
    # The saved message names the mapping by its course or organization, not by a template's POK id.
    added = [str(message) for message in post_mapping(admin_client, course_key="course-v1:DemoX+DATA305+2026",
                                                      follow=True).context["messages"]]
    assert any("course-v1:DemoX+DATA305+2026</a>” was added successfully" in text and "tpl-" not in text
               for text in added), added


def test_the_parameter_rows_follow_the_template_by_label_and_fixed_text_only_where_chosen(admin_client, pok):
    pok.add_template("tpl-named", "Named", [("honours", "Honours distinction"), ("grade", "Final grade")])
    catalog.sync("default")
    form = admin_client.get(reverse(ADD)).context["adminform"].form
    honours, platform = field_named(form, "honours"), field_named(form, "platform")  # every template's, at once
    assert form.fields[honours].label == "Honours distinction" and "honours" not in form.fields[honours].label
    assert all(is_hidden(form, name) for name in form.fields if name.startswith(("source_", "value_")))
    page = admin_client.get(reverse(ADD)).content.decode()
    assert 'id="pok-template-parameters"' in page and "pok-parameter-rows" in page
    mapping = CertificateTemplate.objects.create(course_key="course-v1:OrgZ+C1+2026", template_id="tpl-named",
                                                 parameter_sources={"honours": {"source": "fixed", "value": "Cum"}})
    form = admin_client.get(change_url(mapping)).context["adminform"].form
    grade = field_named(form, "grade")
    assert not is_hidden(form, honours) and not is_hidden(form, field_named(form, "honours", "value"))
    assert not is_hidden(form, grade) and is_hidden(form, field_named(form, "grade", "value"))
    assert is_hidden(form, platform) and form.fields[grade].label == "Final grade"
    # The server keeps the sources of the chosen template's parameters only, whatever else the page posted.
    response = post_mapping(admin_client, course_key="course-v1:OrgZ+C2+2026", template_id="tpl-named", **{
        honours: "course.title", grade: "grade.percent", field_named(form, "grade", "value"): "ignored",
        platform: "platform.name"})
    assert response.status_code == 302
    assert CertificateTemplate.objects.get(course_key="course-v1:OrgZ+C2+2026").parameter_sources == {
        "honours": {"source": "course.title"}, "grade": {"source": "grade.percent"}}


@pytest.fixture
def unmapped_course(course):
    return CourseOverviewFactory(id=CourseKey.from_string("course-v1:DemoX+DATA303+2026"), org="DemoX",
                                 display_name="Data 303")


def test_the_form_previews_unsaved_values_with_a_learner_and_shows_what_would_be_sent(admin_client, pok,
                                                                                        unmapped_course):
    pok.add_template("tpl-named", "Named", [("honours", "Honours distinction")])
    catalog.sync("default")
    learner = CourseEnrollmentFactory(course=unmapped_course).user
    form = admin_client.get(reverse(ADD)).context["adminform"].form
    honours = field_named(form, "honours")
    response = post_mapping(admin_client, course_key=str(unmapped_course.id), template_id="tpl-named", **{
        honours: "fixed", field_named(form, "honours", "value"): "Cum laude", "preview_learner": learner.username,
        "_pok_preview": "1"})
    assert response.status_code == 200 and CertificateTemplate.objects.count() == 1  # nothing saved
    preview = response.context["pok_preview"]
    assert preview.image_url and not preview.error
    values = dict(preview.fields)
    assert values["credential.title"] == "Data 303" and values["receiver.firstName"] == learner.first_name
    assert values["customization.template.customParameters.honours"] == "Cum laude"
    content = response.content.decode()
    assert "Data 303" in content and "Cum laude" in content and pok.api_key not in content
    [sent] = [r for r in pok.requests if r.endpoint == "preview_template"]
    assert sent.body["customization"]["template"]["customParameters"] == {"honours": "Cum laude"}


def test_an_organization_mapping_is_previewed_before_saving_with_a_learner_of_its_courses(admin_client, pok,
                                                                                         unmapped_course):
    learner = CourseEnrollmentFactory(course=unmapped_course).user
    fields = {"course_key": "", "organization": "DemoX", "_pok_preview": "1"}
    response = post_mapping(admin_client, **fields, preview_learner="nobody")
    assert "No learner of this course" in response.context["pok_preview_error"]
    response = post_mapping(admin_client, **fields, preview_learner=learner.username)
    assert response.context["pok_preview"].image_url and CertificateTemplate.objects.count() == 1
    assert dict(response.context["pok_preview"].fields)["credential.title"] == "Data 303"


def test_the_saved_mappings_preview_page_shows_the_values_too(admin_client, pok, course, learner):
    CourseEnrollmentFactory(user=learner, course=course)
    url = reverse("admin:openedx_pok_mapping_preview", args=[CertificateTemplate.objects.get().pk])
    response = admin_client.post(url, {"learner": learner.username})
    assert response.context["image_url"] and "Verifiable Credentials 101" in response.content.decode()
    assert "receiver.email" in response.content.decode()


def test_the_mapping_list_names_templates_not_ids(admin_client, pok, course):
    catalog.sync("default")
    CertificateTemplate.objects.create(organization="OrgZ", template_id="tpl-unknown")
    response = admin_client.get(reverse(CHANGELIST))
    content = response.content.decode()
    assert "Basic certificate" in content and "tpl-unknown (not in the synced catalog)" in content
    assert ">tpl-basic<" not in content


def test_the_backfill_action_asks_first_with_the_dry_run_counts(admin_client, pok, course,
                                                               django_capture_on_commit_callbacks):
    CertificateTemplate.objects.all().delete()  # certificates earned before the course was mapped
    for _ in range(2):
        GeneratedCertificateFactory(course_id=course.id)
    mapping = CertificateTemplate.objects.create(course_key=course.id, template_id="tpl-basic")
    data = {"action": "backfill_courses", "_selected_action": [mapping.pk]}
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(reverse(CHANGELIST), data)
    assert response.status_code == 200 and pok.count("issue_credential") == 0
    content = response.content.decode()
    assert "The backfill would request 2 credentials" in content and str(course.id) in content
    assert not PokCertificate.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(reverse(CHANGELIST), {**data, "post": "yes"}, follow=True)
    assert b"2 credentials requested in the background" in response.content
    assert pok.count("issue_credential") == 2


def test_the_mapping_list_finds_a_mapping_by_its_templates_name(admin_client, pok, course):
    catalog.sync("default")
    CertificateTemplate.objects.create(organization="OrgZ", template_id="tpl-grade")
    response = admin_client.get(reverse(CHANGELIST), {"q": "with grade"})
    assert [str(mapping) for mapping in response.context["cl"].result_list] == ["organization OrgZ"]
