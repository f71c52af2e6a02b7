"""
Root URLs of the sandbox LMS: the certificate pages at the LMS's paths, Django admin, and the plugins' URLs.

Plugin URLs are mounted through ``get_plugin_url_patterns("lms.djangoapp")``, as the LMS's own urls.py does, so the
plugin's ``plugin_app['url_config']`` (prefix, namespace) is exercised rather than re-declared here.
"""
from django.contrib import admin
from django.urls import include, path, re_path
from edx_django_utils.plugins import get_plugin_url_patterns

from lms_sandbox import webview

certificate_patterns = [
    re_path(r"^certificates/(?P<certificate_uuid>[0-9a-f]{32})$", webview.render_cert_by_uuid,
            name="render_cert_by_uuid"),
    # Course ids contain no "/" in the course-v1 format the sandbox uses.
    re_path(r"^certificates/course/(?P<course_id>[^/]+)$", webview.render_preview_certificate, name="preview_cert"),
]

urlpatterns = [
    path("", include((certificate_patterns, "lms_sandbox"), namespace="lms_sandbox")),
    path("admin/", admin.site.urls),
]
urlpatterns += get_plugin_url_patterns("lms.djangoapp")
