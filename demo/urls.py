"""The sandbox LMS's URLs, plus the demo's "log in as this learner" links (``demo.views``)."""
from django.urls import path

from demo import views
from lms_sandbox.urls import urlpatterns as sandbox_urlpatterns

urlpatterns = [
    *sandbox_urlpatterns,
    path("demo/login-as/<str:username>/", views.login_as, name="demo_login_as"),
]
