"""Root URLs of the sandbox CMS (Studio): Django admin only; the plugin mounts no URLs in Studio."""
from django.contrib import admin
from django.urls import path

urlpatterns = [path("admin/", admin.site.urls)]
