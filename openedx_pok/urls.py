"""
URLs of the plugin, mounted by the LMS under ``/pok/`` (``plugin_app['url_config']``).

Credentials are addressed by an unguessable reference: the record's UUID or the Open edX certificate's verify_uuid.
"""
from django.urls import path

from openedx_pok import views

app_name = "openedx_pok"

urlpatterns = [
    path("credentials/<str:reference>/status", views.CredentialStatusView.as_view(), name="credential-status"),
    path("credentials/<str:reference>/image", views.CredentialImageView.as_view(), name="credential-image"),
    path("preview/<str:course_id>/image", views.PreviewImageView.as_view(), name="preview-image"),
]
