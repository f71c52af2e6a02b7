"""
Share links for an emitted credential: LinkedIn add-to-profile and plain share links.

Everything comes from the credential record (title, emitter, emission date, POK id and page), so nothing is
hard-coded: no organization, year or language. Which links are offered is a setting that a site may override
through its site configuration.
"""
from urllib.parse import urlencode

from django.conf import settings
from django.utils.translation import gettext as _

from openedx_pok import compat

LINKEDIN_ADD_TO_PROFILE = "https://www.linkedin.com/profile/add"


def linkedin_add_to_profile_url(row):
    """LinkedIn's add-to-profile form, pre-filled with the credential as a certification."""
    params = {"startTask": "CERTIFICATION_NAME", "name": row.title, "certUrl": row.view_url,
              "certId": row.pok_credential_id or ""}
    organization_id = compat.get_site_setting("POK_LINKEDIN_ORGANIZATION_ID", settings.POK_LINKEDIN_ORGANIZATION_ID)
    if organization_id:
        params["organizationId"] = organization_id
    else:
        params["organizationName"] = row.emitter
    if row.emission_date:
        params["issueYear"] = row.emission_date.year
        params["issueMonth"] = row.emission_date.month
    return f"{LINKEDIN_ADD_TO_PROFILE}?{urlencode(params)}"


def share_links(row):
    """The enabled share links as a list of {id, label, url}; empty until the credential has a public page."""
    if not row.view_url:
        return []
    enabled = compat.get_site_setting("POK_SHARE_LINKS", settings.POK_SHARE_LINKS) or []
    text = _("I earned {title} from {emitter}").format(title=row.title, emitter=row.emitter)
    builders = {
        "linkedin": (_("Add to LinkedIn profile"), linkedin_add_to_profile_url),
        "x": (_("Share on X"), lambda r: "https://x.com/intent/post?" + urlencode({"text": text, "url": r.view_url})),
        "facebook": (_("Share on Facebook"),
                     lambda r: "https://www.facebook.com/sharer/sharer.php?" + urlencode({"u": r.view_url})),
    }
    return [{"id": key, "label": builders[key][0], "url": builders[key][1](row)} for key in enabled if key in builders]
