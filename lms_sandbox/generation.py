"""
Certificate generation, shaped like the LMS's ``generation_handler._generate_certificate_task``.

The LMS runs ``CertificateCreationRequested`` before it creates anything, with a ``CourseGrade`` object as ``grade``
and a ``CourseKey`` as ``course_key``; a ``PreventCertificateCreation`` from a step becomes
``CertificateGenerationNotAllowed``. It then creates or updates the ``GeneratedCertificate`` in a Celery task a
couple of seconds later; the sandbox does that part synchronously, so callers get the certificate back.
"""
import logging

from django.core.exceptions import ObjectDoesNotExist
from django.utils import timezone
from opaque_keys.edx.keys import CourseKey
from openedx_filters.learning.filters import CertificateCreationRequested

from lms_sandbox.models import CertificateStatuses, GeneratedCertificate

log = logging.getLogger(__name__)


class CertificateGenerationNotAllowed(Exception):
    """A pipeline step prevented the certificate (the LMS shows its message to the learner as an HTTP 400 body)."""


def generate_certificate(user, course_key, grade, mode="verified", status=None, generation_mode=None):
    """
    Run the creation filter the way the LMS does, then create or update the learner's certificate.

    ``grade`` is a :class:`lms_sandbox.grades.CourseGrade` (or None). ``status`` is None normally and
    ``"unverified"`` when ID verification is missing. ``generation_mode`` is None (automatic), ``"self"`` or
    ``"batch"``. Returns the saved :class:`GeneratedCertificate`.
    """
    if isinstance(course_key, str):
        # Callers of the LMS always hold a CourseKey; accept a string here only as a convenience for the demo.
        course_key = CourseKey.from_string(course_key)
    # The LMS computes the stored grade before the filter: a grade returned by a step is ignored.
    grade_value = "" if grade is None else str(grade.percent)
    try:
        user, course_key, mode, status, _grade, generation_mode = CertificateCreationRequested.run_filter(
            user=user, course_key=course_key, mode=mode, status=status, grade=grade, generation_mode=generation_mode,
        )
    except CertificateCreationRequested.PreventCertificateCreation as exc:
        raise CertificateGenerationNotAllowed(str(exc)) from exc
    return _create_or_update_certificate(user, course_key, mode, status, grade_value, generation_mode)


def _create_or_update_certificate(user, course_key, mode, status, grade_value, generation_mode):
    """What the LMS's ``generate_certificate`` Celery task does: one row per (user, course), saved once."""
    new_status = CertificateStatuses.unverified if status == CertificateStatuses.unverified else \
        CertificateStatuses.downloadable
    try:
        name = user.profile.name
    except ObjectDoesNotExist:
        name = ""
    certificate, created = GeneratedCertificate.objects.get_or_create(
        user=user, course_id=course_key,
        defaults={"mode": mode, "status": new_status, "grade": grade_value, "name": name,
                  "created_date": timezone.now()},
    )
    if not created:
        certificate.mode = mode
        certificate.status = new_status
        certificate.grade = grade_value
        certificate.name = name
        certificate.download_url = ""
        certificate.save()
    log.info(
        "Sandbox LMS: certificate of user %s in %s is %s (generation mode %s)",
        user.id, course_key, new_status, generation_mode,
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
