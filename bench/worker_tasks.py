"""
The floor of the worker benchmark: a Celery task that does what any issuance must, without the plugin.

``bench.worker`` runs it through the same prefork worker, queue, broker, database and POK simulator as the plugin's
backfill, in the same run, so the plugin's figures read against it: per credential it reads the learner's Open edX
certificate (one indexed query, as any issuer needs the certificate) and POSTs a credential body of the plugin's size
to the simulator (which waits its latency, then refuses the made-up body: the answer is read and dropped). Messages
carry :data:`openedx_pok.tasks.BACKFILL_CHUNK_SIZE` learners each, as the backfill's do. Loaded by the worker with
``--include bench.worker_tasks``; never part of the plugin.
"""
import json

import requests
from celery import shared_task

from lms_sandbox.models import GeneratedCertificate

# About the size of the plugin's credential body (receiver, template parameters, tags, customization).
BODY = json.dumps({"credential": {"title": "x" * 60, "emitter": "x" * 40, "tags": ["x" * 30] * 2},
                   "receiver": {"email": "x" * 30, "firstName": "x" * 10, "lastName": "x" * 10},
                   "customization": {"template": {"customParameters": {f"p{n}": "x" * 20 for n in range(6)}}}})

_session = None


@shared_task(name="bench.worker_tasks.post_only", ignore_result=True, acks_late=True)
def post_only(certificate_ids, api_url, api_key):
    """Per certificate: read it, then POST a credential body to ``api_url`` (a pooled session per process)."""
    global _session  # one pooled session per worker process, as the plugin keeps its client
    if _session is None:
        _session = requests.Session()
    for certificate_id in certificate_ids:
        certificate = GeneratedCertificate.objects.filter(id=certificate_id).values("user_id", "status").first()
        response = _session.post(f"{api_url.rstrip('/')}/credential", data=BODY, timeout=10, headers={
            "Authorization": f"ApiKey {api_key}", "Content-Type": "application/json",
            "Idempotency-Key": f"floor-{certificate_id}-{certificate['user_id']}"})
        response.content  # noqa: B018 - read the answer, as the plugin does
