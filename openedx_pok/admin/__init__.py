"""
Django admin of the plugin: course mappings (``mappings``, with their form in ``mapping_form``) and credentials
(``credentials``, with their filters, history and confirmation pages in ``credential_filters``). Importing the package
registers the admin classes.
"""
from openedx_pok.admin import credentials, mappings  # noqa: F401 - registers the ModelAdmins
