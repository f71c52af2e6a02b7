"""
The LMS's course access roles, reduced to what the plugin and the sandbox's instructor dashboard ask of them.

A copy of ``common/djangoapps/student/roles.py`` (openedx-platform Ulmo, Verawood and master) for the course roles:

- ``has_user`` is False for an anonymous or inactive user;
- a role also counts the roles that inherit from it (``CourseLimitedStaffRole``, ``limited_staff``, is a
  ``CourseStaffRole``: its ``BASE_ROLE``, registered in ``ACCESS_ROLES_INHERITANCE``);
- a course role matches the row of that course and its organization;
- the user's roles are read once and kept on the user object (``user._roles``, the LMS's ``RoleCache``).

On master the LMS also reads openedx-authz role assignments when ``authz.enable_course_authoring`` is on; the sandbox
has the ``CourseAccessRole`` table only, which every release reads.
"""
from lms_sandbox.models import CourseAccessRole

#: Roles and the roles that inherit their permissions (``register_access_role`` with ``BASE_ROLE``).
ACCESS_ROLES_INHERITANCE = {"staff": {"limited_staff"}}


class RoleCache:
    """The user's roles as (role, course key string, org), read in one query."""

    def __init__(self, user):
        rows = CourseAccessRole.objects.filter(user=user).values_list("role", "course_id", "org")
        self._roles = {(role, str(course_id or ""), org) for role, course_id, org in rows}

    def has_role(self, role, course_key, org):
        roles = ACCESS_ROLES_INHERITANCE.get(role, set()) | {role}
        return any((name, str(course_key or ""), org) in self._roles for name in roles)


class CourseRole:
    """A named role in one course run."""

    ROLE = ""

    def __init__(self, course_key):
        self.course_key = course_key
        self.org = course_key.org

    def has_user(self, user, check_user_activation=True):
        if check_user_activation and not (user.is_authenticated and user.is_active):
            return False
        if not hasattr(user, "_roles"):
            user._roles = RoleCache(user)  # noqa: SLF001 - the LMS keeps the cache on the user the same way
        return user._roles.has_role(self.ROLE, self.course_key, self.org)  # noqa: SLF001


class CourseStaffRole(CourseRole):
    """A staff member of a course (limited staff included)."""

    ROLE = "staff"


class CourseInstructorRole(CourseRole):
    """A course instructor ("Admin" in the LMS's membership tab)."""

    ROLE = "instructor"


class CourseDataResearcherRole(CourseRole):
    """A data researcher of the course: sees the instructor dashboard (data downloads), is not on its team."""

    ROLE = "data_researcher"
