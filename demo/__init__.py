"""
``make demo``: the sandbox LMS on SQLite with the plugin and a POK simulator, walking a learner from a passing grade
to a POK credential and serving Django admin afterwards.

It exists so that a new contributor (or a reviewer) can see the whole flow working on their machine in one command,
with the same code paths the LMS takes: the real openedx-filters pipeline, openedx-events signals and Celery tasks.
"""
