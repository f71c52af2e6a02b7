"""
A stub of the LMS ``course_overviews`` app, just enough for the earlier openedx-pok's migrations to run.

Its ``CertificateTemplate.course`` is a one-to-one to ``course_overviews.CourseOverview`` and three of its migrations
depend on ``course_overviews.0029_alter_historicalcourseoverview_options``; the LMS table has many more columns, but
only the primary key (the course key string) is referenced, so only that is here.
"""
