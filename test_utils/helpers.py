"""
Small look-ups the tests repeat: kept here so every test reads the plugin's rows the same way.
"""
from openedx_pok.models import PokCertificate


def credential_of(user, course):
    """
    The learner's credential row for ``course`` (a sandbox ``CourseOverview``), read fresh from the database.

    Fresh on purpose: the tests assert what the tasks committed, never a Python object they still hold.
    """
    return PokCertificate.objects.get(user=user, course_key=course.id)
