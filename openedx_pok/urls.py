"""
URLs of the plugin, mounted by the LMS under ``/pok/`` (``plugin_app['url_config']``).
"""
from django.urls import path

from openedx_pok import views

app_name = "openedx_pok"

urlpatterns = [
    path("credentials/<uuid:credential_uuid>/status", views.CredentialStatusView.as_view(), name="credential-status"),
]
