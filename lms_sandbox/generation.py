"""
Certificate generation, shaped like the LMS's (``lms/djangoapps/certificates/generation_handler.py``,
``tasks.py`` and ``generation.py``, openedx-platform Verawood).

The LMS runs ``CertificateCreationRequested`` before it creates anything, with a ``CourseGrade`` object as ``grade``
and a ``CourseKey`` as ``course_key``; a ``PreventCertificateCreation`` from a step becomes
``CertificateGenerationNotAllowed``. It does not create the certificate itself: it queues the Celery task
``generate_certificate`` (``lms_sandbox.tasks``) with a countdown of ``CERTIFICATE_DELAY_SECONDS``, and that task
creates or updates the ``GeneratedCertificate``. Eager Celery runs the task at once; a real worker two seconds later,
so a caller outside eager mode finds no certificate yet.
"""
import logging
from uuid import uuid4

from django.core.exceptions import ObjectDoesNotExist
from opaque_keys.edx.keys import CourseKey
from openedx_filters.learning.filters import CertificateCreationRequested

from lms_sandbox import tasks
from lms_sandbox.models import CertificateStatuses, GeneratedCertificate

log = logging.getLogger(__name__)


class CertificateGenerationNotAllowed(Exception):
    """A pipeline step prevented the certificate (the LMS shows its message to the learner as an HTTP 400 body)."""


def generate_certificate(user, course_key, grade, mode="verified", status=None, generation_mode=None):
    """
    Run the creation filter the way the LMS does, then queue the generation task (``_generate_certificate_task``).

    ``grade`` is a :class:`lms_sandbox.grades.CourseGrade` (or None). ``status`` is None normally and
    ``"unverified"`` when ID verification is missing. ``generation_mode`` is None (automatic), ``"self"`` or
    ``"batch"``. Returns the learner's certificate if it exists once the task is queued (always with eager Celery),
    else None; the LMS returns True, callers here want the row.
    """
    if isinstance(course_key, str):
        # Callers of the LMS always hold a CourseKey; accept a string here only as a convenience for the demo.
        course_key = CourseKey.from_string(course_key)
    # The LMS computes the stored grade before the filter: a grade returned by a step is ignored.
    grade_value = "" if grade is None else grade.percent
    try:
        user, course_key, mode, status, _grade, generation_mode = CertificateCreationRequested.run_filter(
            user=user, course_key=course_key, mode=mode, status=status, grade=grade, generation_mode=generation_mode,
        )
    except CertificateCreationRequested.PreventCertificateCreation as exc:
        raise CertificateGenerationNotAllowed(str(exc)) from exc
    # Strings only, as the LMS sends them (they cross the broker as JSON).
    kwargs = {"student": str(user.id), "course_key": str(course_key), "enrollment_mode": str(mode),
              "course_grade": str(grade_value)}
    if status is not None:
        kwargs["status"] = status
    if generation_mode is not None:
        kwargs["generation_mode"] = generation_mode
    tasks.generate_certificate.apply_async(countdown=tasks.CERTIFICATE_DELAY_SECONDS, kwargs=kwargs)
    return GeneratedCertificate.objects.filter(user=user, course_id=course_key).first()


def generate_course_certificate(user, course_key, status, enrollment_mode, course_grade, generation_mode):
    """
    What the ``generate_certificate`` task does (``generation.generate_course_certificate``): one row per (user,
    course) through ``update_or_create``, keeping an existing ``verify_uuid`` so the learner's URL stays the same;
    an unverified certificate is then revoked as unverified, as the LMS does.
    """
    existing = GeneratedCertificate.objects.filter(user=user, course_id=course_key).first()
    verify_uuid = existing.verify_uuid if existing and existing.verify_uuid else uuid4().hex
    try:
        name = user.profile.name
    except ObjectDoesNotExist:
        name = ""
    certificate, created = GeneratedCertificate.objects.update_or_create(
        user=user, course_id=course_key,
        defaults={"mode": enrollment_mode, "name": name, "status": status, "grade": course_grade,
                  "download_url": "", "verify_uuid": verify_uuid},
    )
    if status == CertificateStatuses.unverified:
        certificate.mark_unverified(mode=enrollment_mode)
    log.info(
        "Sandbox LMS: certificate of user %s in %s is %s (generation mode %s, %s)",
        user.id, course_key, certificate.status, generation_mode, "created" if created else "updated",
    )
    return certificate


def revoke_certificate(user, course_key):
    """Invalidate the learner's certificate, as an instructor does in the LMS; returns it (None if there is none)."""
    if isinstance(course_key, str):
        course_key = CourseKey.from_string(course_key)
    certificate = GeneratedCertificate.objects.filter(user=user, course_id=course_key).first()
    if certificate is None:
        return None
    certificate.invalidate()
    return certificate
