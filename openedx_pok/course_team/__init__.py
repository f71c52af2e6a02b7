"""
The course team's POK tab: course staff and instructors, who have no Django admin in Open edX, see how their learners'
credentials stand and act on them (retry, backfill, the course's CSV) from the instructor dashboard.

It reaches both dashboards the LMS has: the legacy page through the ``InstructorDashboardRenderStarted`` filter (a
section of the page) and, on Verawood and later, the instructor dashboard app through the
``InstructorDashboardTabsRequested`` filter (a tab that opens the plugin's page in the LMS). ``dashboard`` holds the
two pipeline steps, ``views`` the page and its confirmed actions, ``summary`` what the page shows. An entry point:
it calls ``api`` and the issuance services, never the POK client or a task.
"""
