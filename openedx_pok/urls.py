"""
URLs of the plugin, mounted by the LMS under ``/pok/`` (``plugin_app['url_config']``).

Credentials are addressed by an unguessable reference: the record's UUID or the Open edX certificate's verify_uuid.
A course team's page is addressed by its course key (``openedx_pok.course_team``). The learner API the MFEs call
(``openedx_pok.learner_api``) answers for the requesting learner only.
"""
from django.urls import path

from openedx_pok import learner_api, views
from openedx_pok.course_team import views as course_team

app_name = "openedx_pok"

urlpatterns = [
    path("credentials/<str:reference>/status", views.CredentialStatusView.as_view(), name="credential-status"),
    path("credentials/<str:reference>/image", views.CredentialImageView.as_view(), name="credential-image"),
    path("preview/<str:course_id>/image", views.PreviewImageView.as_view(), name="preview-image"),
    # The learner's own credentials, for the Learning MFE's progress page and the learner dashboard.
    path("api/v1/learner/credentials", learner_api.LearnerCredentialsView.as_view(), name="learner-credentials"),
    # The course team's page (the instructor dashboard's POK tab) and its confirmed actions.
    path("course-team/<str:course_id>/", course_team.course_page, name="course-team-page"),
    path("course-team/<str:course_id>/retry", course_team.retry, name="course-team-retry"),
    path("course-team/<str:course_id>/backfill", course_team.backfill, name="course-team-backfill"),
    path("course-team/<str:course_id>/credentials.csv", course_team.credentials_csv, name="course-team-csv"),
]
