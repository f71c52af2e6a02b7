"""
The course mapping admin (Django test client): pickers by name, validation on save against the synced catalog,
parameter sources, the catalog sync action, the accounts page with its connection test, the staff preview.
"""
import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from openedx_pok.course_setup import catalog
from openedx_pok.models import CertificateTemplate, PokTemplate

pytestmark = pytest.mark.django_db
BETA_KEY = "b7a1c9e2-0000-4000-8000-0000000000be"
ADD = "admin:openedx_pok_certificatetemplate_add"


@pytest.fixture
def admin_client(client):
    client.force_login(get_user_model().objects.create_superuser("boss", "boss@example.com", "pw"))
    return client


def post_mapping(client, **fields):
    data = {"course_key": "course-v1:OrgZ+C1+2026", "organization": "", "account": "default",
            "template_id": "tpl-basic", "emission_type": "pok", "page_id": "", "enabled": "on", **fields}
    return client.post(reverse(ADD), data)


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
    assert response.status_code == 200 and "Parameter &#x27;honours&#x27; (Honours) has no source" in content
    form = response.context["adminform"].form
    field = next(name for name in form.fields if name.startswith("source_") and "honours" in form.fields[name].label)
    value_field = field.replace("source_", "value_")
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
    assert "has 42 credits left" in admin_client.get(reverse(ADD)).content.decode()


def test_sync_action_and_accounts_page(admin_client, pok):
    mapping = CertificateTemplate.objects.create(course_key="course-v1:OrgZ+C1+2026", template_id="tpl-basic")
    response = admin_client.post(reverse("admin:openedx_pok_certificatetemplate_changelist"), {
        "action": "sync_pok_catalog", "_selected_action": [mapping.pk]}, follow=True)
    assert "2 templates, 1 pages" in response.content.decode()
    url = reverse("admin:openedx_pok_accounts")
    assert admin_client.get(url).status_code == 200
    content = admin_client.post(url, {"account": "default", "do": "test"}).content.decode()
    assert "Simulated Org" in content and "credits available" in content
    pok.api_key = "rotated-key"
    content = admin_client.post(url, {"account": "default", "do": "test"}).content.decode()
    assert "refused the API key of account" in content


def test_preview_renders_with_a_real_learner_on_click_only(admin_client, pok, course, learner):
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
