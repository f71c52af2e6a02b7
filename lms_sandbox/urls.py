"""
Root URLs of the sandbox LMS: the certificate pages and the instructor dashboard at the LMS's paths, Django admin,
and the plugins' URLs.

Plugin URLs are mounted through ``get_plugin_url_patterns("lms.djangoapp")``, as the LMS's own urls.py does, so the
plugin's ``plugin_app['url_config']`` (prefix, namespace) is exercised rather than re-declared here.
"""
from django.contrib import admin
from django.urls import include, path, re_path
from edx_django_utils.plugins import get_plugin_url_patterns

from lms_sandbox import instructor_dashboard, webview

certificate_patterns = [
    re_path(r"^certificates/(?P<certificate_uuid>[0-9a-f]{32})$", webview.render_cert_by_uuid,
            name="render_cert_by_uuid"),
    # Course ids contain no "/" in the course-v1 format the sandbox uses.
    re_path(r"^certificates/course/(?P<course_id>[^/]+)$", webview.render_preview_certificate, name="preview_cert"),
]

urlpatterns = [
    path("", include((certificate_patterns, "lms_sandbox"), namespace="lms_sandbox")),
    # The instructor dashboard at the LMS's path and name (lms/urls.py), and the instructor API v2's course
    # information (lms/djangoapps/instructor/views/api_urls.py) the instructor dashboard app reads its tabs from.
    re_path(r"^courses/(?P<course_id>[^/]+)/instructor$", instructor_dashboard.instructor_dashboard_2,
            name="instructor_dashboard"),
    re_path(r"^api/instructor/v2/courses/(?P<course_id>[^/]+)$", instructor_dashboard.course_information,
            name="instructor_api_v2_course"),
    path("admin/", admin.site.urls),
]
urlpatterns += get_plugin_url_patterns("lms.djangoapp")
