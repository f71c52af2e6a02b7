"""
The demo's one view of its own: log in as one of the demo's learners, to see the pages they see.

Served only by the demo (``demo.urls``) and only with DEBUG on, for the learners ``demo.run`` creates: never for
staff, never in the LMS. A local sandbox needs no password for them; the operator's admin login stays a password.
"""
from django.conf import settings
from django.contrib.auth import get_user_model, login
from django.http import Http404, HttpResponseRedirect
from django.views.decorators.http import require_GET

DEMO_LEARNERS = ("ada", "alan", "noname")


@require_GET
def login_as(request, username):
    """Log in as a demo learner, then open their own certificate page of the demo course."""
    if not settings.DEBUG or username not in DEMO_LEARNERS:
        raise Http404
    user = get_user_model().objects.filter(username=username, is_staff=False, is_superuser=False).first()
    if user is None:
        raise Http404
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    return HttpResponseRedirect(f"/certificates/course/{settings.POK_DEMO_COURSE_ID}")
