"""
Django admin of the plugin: course mappings (``mappings``, with their form in ``mapping_form`` and the pages around it
in ``mapping_pages``), POK's synced templates with the accounts (``pok_catalog``, on the admin index) and credentials
(``credentials``, with their filters, history and confirmation pages in ``credential_filters``). Importing the package
registers the admin classes.
"""
from openedx_pok.admin import credentials, mappings, pok_catalog  # noqa: F401 - registers the ModelAdmins
