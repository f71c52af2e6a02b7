"""
The sandbox LMS's Celery app, configured like the LMS's: from Django settings (``CELERY_*``), tasks discovered in
every installed app's ``tasks`` module, so the plugin's tasks register the same way they do in the LMS.

Tests run tasks eagerly (``CELERY_TASK_ALWAYS_EAGER``) except the worker test, which starts a real worker process on
the Redis broker with this app (``celery -A lms_sandbox.celery worker``).
"""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "test_settings")

app = Celery("lms_sandbox")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
