"""
The sandbox LMS's Celery tasks: certificate generation, as ``lms/djangoapps/certificates/tasks.py`` (openedx-platform
Verawood) defines it.

The generation handler queues ``generate_certificate`` ``CERTIFICATE_DELAY_SECONDS`` after the creation filter has
run, with string arguments only; the task creates or updates the certificate. Eager Celery (the tests) runs it at
once, inside the caller's transaction; a real worker runs it two seconds later, in a transaction of its own.
"""
from celery import shared_task
from django.contrib.auth import get_user_model
from opaque_keys.edx.keys import CourseKey

# Certificate generation is delayed in case the caller is still completing their changes (the LMS's own reason).
CERTIFICATE_DELAY_SECONDS = 2


@shared_task(bind=True, default_retry_delay=30, max_retries=2)
def generate_certificate(self, **kwargs):  # noqa: ARG001 - bound like the LMS's task
    """Generate the certificate of ``student`` (a user id) in ``course_key``; the arguments are the LMS task's."""
    from lms_sandbox.generation import generate_course_certificate  # noqa: PLC0415 - generation queues this task

    generate_course_certificate(
        user=get_user_model().objects.get(id=kwargs.pop("student")),
        course_key=CourseKey.from_string(kwargs.pop("course_key")),
        status=kwargs.pop("status", "downloadable"),
        enrollment_mode=kwargs.pop("enrollment_mode"),
        course_grade=kwargs.pop("course_grade", ""),
        generation_mode=kwargs.pop("generation_mode", "batch"),
    )
