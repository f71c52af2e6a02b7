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

    def __post_init__(self):
        # The LMS never produces a percent outside 0..1; catching it here keeps test data honest.
        if not 0 <= self.percent <= 1:
            raise ValueError(f"percent must be between 0 and 1, got {self.percent!r}")
