"""
When the LMS shows a course's certificates: the sandbox's ``certificates_viewable_for_course``.

Written after ``lms/djangoapps/certificates/api.py`` and ``lms/djangoapps/certificates/utils.py``
(``should_certificate_be_visible``), openedx-platform Verawood and master. The certificate page, the learner
dashboard and the progress page show a learner's certificate only when this says so; before, the certificate page
is the "invalid certificate" page (HTTP 200). The course team uses it to release every certificate on one day.
"""
from django.utils import timezone


def certificates_viewable_for_course(overview):
    """Whether learners see the certificates of the course (a CourseOverview) now."""
    behavior = overview.certificates_display_behavior
    show_early = behavior == "early_no_info" or overview.certificates_show_before_end
    past_available_date = (behavior == "end_with_date" and overview.certificate_available_date is not None
                           and overview.certificate_available_date < timezone.now())
    ended_without_available_date = behavior == "end" and overview.has_ended()
    return any((overview.self_paced, show_early, past_available_date, ended_without_available_date))
