"""The one LMS model the earlier openedx-pok references, reduced to its primary key."""
from django.db import models


class CourseOverview(models.Model):
    """
    Like the LMS model: the course key string is the primary key (``CourseKeyField(max_length=255)`` there).

    .. no_pii:
    """

    id = models.CharField(max_length=255, primary_key=True)
    display_name = models.TextField(null=True)

    class Meta:
        app_label = "course_overviews"

    def __str__(self):
        return self.id
