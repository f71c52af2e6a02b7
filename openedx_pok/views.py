"""
HTTP endpoints of the plugin (mounted under ``/pok/``).

The status endpoint answers from the database only. Credentials are addressed by their random UUID, never by an
enumerable integer, and only the learner who owns the credential or staff may read it; anyone else gets a 404 that
tells them nothing about whether the credential exists.
"""
from django.http import Http404
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from openedx_pok.models import CredentialStatus, PokCertificate


class CredentialStatusView(APIView):
    """``GET /pok/credentials/<uuid>/status``: where the learner's credential stands, and its POK page once emitted."""

    permission_classes = [IsAuthenticated]

    def get(self, request, credential_uuid):
        row = PokCertificate.objects.filter(uuid=credential_uuid).first()
        if row is None or (row.user_id != request.user.id and not request.user.is_staff):
            raise Http404
        emitted = row.status == CredentialStatus.EMITTED and bool(row.view_url)
        return Response({
            "reference": str(row.uuid),
            "course_id": str(row.course_key),
            "status": row.status,
            "emitted": emitted,
            "view_url": row.view_url if emitted else None,
        })
