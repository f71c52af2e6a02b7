"""
The course grade object the LMS hands to ``CertificateCreationRequested``.

The LMS passes a ``CourseGrade`` instance (not a float) as ``grade``; pipeline steps that read ``grade.percent`` or
``grade.passed`` must see the same shape in tests, so the sandbox passes this small equivalent.
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class CourseGrade:
    """The parts of the LMS ``CourseGrade`` that certificate code reads."""

    percent: float
    passed: bool = True
    letter_grade: str | None = None
    # No range check, like the LMS's own CourseGrade: grade overrides and rounding can produce a percent outside
    # 0..1 (or NaN), and the plugin must cope with it (tests/test_reliability.py).
