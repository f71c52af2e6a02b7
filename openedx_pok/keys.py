"""
Course keys from the text people and the LMS give: the one parser of the plugin.

Operators type course keys (admin search and filters, ``pok_backfill``), the LMS hands some over as strings
(render contexts, legacy tables), and a key with a trailing space or a typo must become "not a course key", never
an exception on an LMS path.
"""
from opaque_keys import InvalidKeyError
from opaque_keys.edx.keys import CourseKey


def parse_course_key(value):
    """A CourseKey from a key or its text (surrounding spaces ignored); None for anything that is not one."""
    if isinstance(value, CourseKey):
        return value
    try:
        return CourseKey.from_string(str(value if value is not None else "").strip())
    except InvalidKeyError:
        return None
