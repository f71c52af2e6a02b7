"""App configuration of the course_overviews stub: the LMS app's label, so the legacy migrations find it."""
from django.apps import AppConfig


class CourseOverviewsStubConfig(AppConfig):
    """Same label as the LMS app (``openedx.core.djangoapps.content.course_overviews``)."""

    name = "openedx.core.djangoapps.content.course_overviews"
    label = "course_overviews"
    default_auto_field = "django.db.models.AutoField"
