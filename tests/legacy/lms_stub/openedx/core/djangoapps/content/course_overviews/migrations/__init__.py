"""Migrations of the course_overviews stub, named like the LMS ones the earlier openedx-pok depends on."""
