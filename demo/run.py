"""
``python -m demo.run [--no-serve] [--port 8000] [--async-polls N]``: the plugin's whole flow, step by step.

Why a script rather than a fixture file: every step goes through the code the LMS itself would run (the real
``CertificateCreationRequested`` filter via ``lms_sandbox.generation``, the openedx-events signals, the eager Celery
task after commit, the ``CertificateRenderStarted`` step behind the certificate page), and the script checks each
claim it prints, so a broken flow makes ``make demo`` fail instead of printing a happy story.

Without ``POK_API_URL`` in the environment a POK simulator is started on 127.0.0.1 and kept running while the sandbox
is served, so the credential pages it links to keep working. ``--async-polls N`` makes the simulator emit
asynchronously (the N-th GET sees the credential emitted) and the demo runs ``pok_sync`` until it is.
"""
import argparse
import io
import os
import re
import secrets
import signal
import socket
import sys
import time

import django

# Forced, not setdefault: a shell that exported test_settings must not make the demo drop the test database.
os.environ["DJANGO_SETTINGS_MODULE"] = "demo.settings"

SIMULATOR_TEMPLATE_ID = "tpl-grade"  # declares "grade" and "platform": shows custom parameters being filled
ADMIN_USERNAME = "admin"
HOST = "127.0.0.1"
# Upper bound of pok_sync runs: a credential still in progress after that many polls means something is wrong.
MAX_POLLS = 30
REAL_POK_POLL_DELAY = 2.0


class DemoError(Exception):
    """Something the demo claims did not happen; the run stops with this message and exit status 1."""


def expect(condition, message):
    """Check a claim before printing it as fact, so the demo never reports a flow that did not work."""
    if not condition:
        raise DemoError(message)


def step(number, title):
    print(f"\n{number}. {title}", flush=True)


def detail(label, value=""):
    print(f"   {label}: {value}" if value != "" else f"   {label}", flush=True)


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m demo.run", description=__doc__.strip().splitlines()[0])
    parser.add_argument("--no-serve", action="store_true", help="run the flow and exit instead of serving the admin")
    parser.add_argument("--port", type=int, default=8000, help="port of the sandbox LMS (default: %(default)s)")
    parser.add_argument("--async-polls", type=int, default=None, metavar="N",
                        help="the simulator emits asynchronously, on the N-th poll; the demo runs pok_sync until then")
    args = parser.parse_args(argv)
    if args.async_polls is not None and args.async_polls < 1:
        parser.error("--async-polls must be at least 1")
    return args


def port_is_free(port):
    """Fail before the flow rather than after it when the sandbox could not be served anyway."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


# --- 1. database ---------------------------------------------------------------------------------------------------

def fresh_database():
    from django.conf import settings
    from django.core.management import call_command

    step(1, "Fresh sandbox LMS database")
    path = settings.DEMO_DB_PATH
    for leftover in (path, path.with_name(path.name + "-journal"), path.with_name(path.name + "-wal")):
        leftover.unlink(missing_ok=True)
    call_command("migrate", verbosity=0, interactive=False)
    detail("SQLite file", path)
    detail("migrations applied (sandbox LMS, auth, admin, openedx_pok)")


# --- 2. POK ----------------------------------------------------------------------------------------------------------

def start_pok(async_polls):
    """
    Point the plugin at the POK given in the environment, or at a simulator started here.

    Returns (the simulator or None, the template id to map the course to). The API key is checked here so that a
    wrong key or URL stops the demo with one clear line instead of a held or failed credential further down.
    """
    from django.conf import settings

    from openedx_pok.course_setup import configuration
    from openedx_pok.exceptions import PokApiError, PokConfigurationError

    step(2, "POK")
    simulator = None
    if settings.POK_API_URL:
        expect(settings.POK_API_KEY, "POK_API_URL is set but POK_API_KEY is not.")
        template_id = settings.POK_DEMO_TEMPLATE_ID or settings.POK_DEFAULT_TEMPLATE_ID
        expect(template_id, "With a real POK set POK_DEMO_TEMPLATE_ID to one of your POK template ids.")
        detail("using the POK from POK_API_URL", settings.POK_API_URL)
        if async_polls is not None:
            detail("--async-polls is ignored", "it configures the simulator; this POK emits as it does")
    else:
        from pok_simulator import PokSimulator

        simulator = PokSimulator(host=HOST).start()
        if async_polls is not None:
            simulator.emission_mode = "async"
            simulator.polls_until_emitted = async_polls
        # The plugin reads these at call time (its POK client is built on first use), so setting them now is enough.
        settings.POK_API_URL = simulator.url
        settings.POK_API_KEY = simulator.api_key
        template_id = SIMULATOR_TEMPLATE_ID
        detail("POK simulator started", simulator.url)
        detail("emission", "synchronous" if async_polls is None
               else f"asynchronous: a credential is emitted on its poll number {async_polls}")
    configuration.reset_clients()
    try:
        organization = configuration.get_client().get_organization()
    except (PokApiError, PokConfigurationError) as exc:
        if simulator is not None:
            simulator.stop()
        raise DemoError(f"POK at {settings.POK_API_URL} failed the API key check: {exc}") from exc
    detail("POK organization (checks the API key)", organization.name or "-")
    detail("Celery", "no broker: tasks run eagerly, in this process, right after the LMS transaction commits")
    return simulator, template_id


def post_count(simulator):
    return simulator.count("issue_credential") if simulator else None


# --- 3. seed ---------------------------------------------------------------------------------------------------------

def seed(template_id):
    """The course, its POK mapping, three learners and the admin. Returns (course, learners dict, password)."""
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from opaque_keys.edx.keys import CourseKey

    from lms_sandbox.factories import CourseOverviewFactory, OrganizationFactory, UserFactory
    from openedx_pok.models import CertificateTemplate

    step(3, "Seed the sandbox LMS")
    OrganizationFactory(short_name="DemoX", name="Demo University")
    course = CourseOverviewFactory(
        id=CourseKey.from_string(settings.POK_DEMO_COURSE_ID), display_name="Verifiable Credentials 101", org="DemoX",
        certificate_title="Verifiable Credentials 101",
        signatories=[{"name": "Grace Hopper", "title": "Course Director", "organization": "Demo University"}],
    )
    mapping = CertificateTemplate.objects.create(course_key=course.id, template_id=template_id)
    learners = {
        "ada": UserFactory(username="ada", email="ada@example.com", first_name="Ada", last_name="Lovelace",
                           profile__name="Ada Lovelace", pref_lang="es-419"),
        "alan": UserFactory(username="alan", email="alan@example.com", first_name="Alan", last_name="Turing",
                            profile__name="Alan Turing", pref_lang="en"),
        # No certificate name in the profile: the plugin must hold this credential rather than send a blank name.
        "noname": UserFactory(username="noname", email="noname@example.com", first_name="", last_name="",
                              profile__name=""),
    }
    password = secrets.token_urlsafe(12)
    get_user_model().objects.create_superuser(ADMIN_USERNAME, "admin@example.com", password)
    detail("organization", "DemoX (Demo University)")
    detail("course", f"{course.id} \"{course.display_name}\", signatory Grace Hopper")
    detail("POK mapping", f"{mapping}  (template parameters grade + platform are filled by the plugin)"
           if template_id == SIMULATOR_TEMPLATE_ID else str(mapping))
    detail("learners", "ada (Ada Lovelace, es-419), alan (Alan Turing), noname (empty profile name)")
    detail("superuser", f"{ADMIN_USERNAME}, generated password {password}")
    return course, learners, password


# --- 4+. the flow ----------------------------------------------------------------------------------------------------

def award(user, course, percent):
    """What the LMS does when a learner passes: the creation filter, then the certificate, in one transaction."""
    from django.db import transaction

    from lms_sandbox.generation import generate_certificate
    from lms_sandbox.grades import CourseGrade
    from openedx_pok.models import PokCertificate

    with transaction.atomic():
        certificate = generate_certificate(user, course.id, CourseGrade(percent=percent, passed=True,
                                                                         letter_grade="Pass"))
        # Still inside the LMS transaction: the plugin has recorded intent only; the task waits for the commit.
        status_before_commit = PokCertificate.objects.filter(user=user, course_key=course.id).values_list(
            "status", flat=True).first()
    return certificate, status_before_commit


def credential(user, course):
    from openedx_pok.models import PokCertificate

    return PokCertificate.objects.get(user=user, course_key=course.id)


def poll_until_emitted(row, simulator):
    """Run ``pok_sync`` (the cron/beat reconcile) until POK reports the credential emitted, printing every poll."""
    from django.core.management import call_command

    from openedx_pok.models import CredentialStatus

    polls = 0
    while row.status == CredentialStatus.IN_PROGRESS:
        expect(polls < MAX_POLLS, f"The credential is still in progress after {MAX_POLLS} pok_sync runs.")
        if simulator is None and polls:
            time.sleep(REAL_POK_POLL_DELAY)
        out = io.StringIO()
        call_command("pok_sync", stdout=out)
        polls += 1
        row.refresh_from_db()
        detail(f"pok_sync run {polls}", f"{out.getvalue().strip()} -> {row.status} (POK state {row.pok_state})")
    return polls


def open_page(client, path):
    response = client.get(path)
    title = re.search(rb"<title>\s*(.*?)\s*</title>", response.content or b"", re.S)
    return response, title.group(1).decode("utf-8", "replace") if title else ""


def fetch(url):
    """GET a page on POK (the simulator's public credential page) the way a learner's browser would."""
    import requests

    response = requests.get(url, timeout=15)
    title = re.search(r"<title>\s*(.*?)\s*</title>", response.text, re.S)
    return response.status_code, title.group(1) if title else ""


def run_flow(simulator, course, learners, async_polls):
    """Steps 4 to 11. Returns Ada's emitted credential row."""
    from django.db import transaction
    from django.test import Client

    from lms_sandbox.generation import revoke_certificate
    from openedx_pok.models import CredentialStatus, PokCertificate

    ada, alan, noname = learners["ada"], learners["alan"], learners["noname"]
    client = Client()

    step(4, "Ada passes the course")
    detail("CourseGrade", "percent=0.92, passed=True")

    step(5, "The LMS generates her certificate: CertificateCreationRequested filter, inside transaction.atomic()")
    posts_before = post_count(simulator)
    certificate, status_before_commit = award(ada, course, 0.92)
    expect(status_before_commit == CredentialStatus.PENDING,
           f"Expected the plugin's row to be pending before the commit, got {status_before_commit!r}.")
    detail("Open edX certificate", f"{certificate.status}, verify_uuid {certificate.verify_uuid}")
    detail("plugin row before the commit", f"{status_before_commit} (RequestPokCredential recorded intent, no HTTP)")

    step(6, "The transaction commits: the issuance task runs (eager Celery) and POSTs to POK")
    row = credential(ada, course)
    detail("plugin row", f"{row.status}, POK id {row.pok_credential_id}, POK state {row.pok_state}")
    detail("sent", f"title \"{row.title}\", emitter \"{row.emitter}\", receiver "
           f"{row.receiver.get('firstName')} {row.receiver.get('lastName')} ({row.receiver.get('languageTag')})")
    detail("custom parameters sent", row.custom_parameters)
    expect(row.pok_credential_id, f"No POK credential was created: {row.status} {row.status_reason}")
    if simulator is not None:
        posts = post_count(simulator) - posts_before
        expect(posts == 1 and row.attempts == 1, f"Expected exactly 1 POST to POK, got {posts}.")
        detail("POK requests", f"POST /credential x{posts} (exactly once, although the filter and the "
               f"CERTIFICATE_CREATED receiver both scheduled the task); GET /template x"
               f"{simulator.count('get_template')} (then cached)")

    if row.status == CredentialStatus.IN_PROGRESS:
        step("6b", "POK emits asynchronously: pok_sync polls POK until the credential is emitted")
        polls = poll_until_emitted(row, simulator)
        if simulator is not None and async_polls is not None:
            expect(polls == async_polls, f"Expected {async_polls} polls, needed {polls}.")
            detail("POK requests", f"POST /credential x{post_count(simulator) - posts_before}, "
                   f"GET /credential x{simulator.count('get_credential')}")
    expect(row.status == CredentialStatus.EMITTED and row.view_url,
           f"The credential ended {row.status}: {row.status_reason}")
    detail("credential emitted", row.view_url)

    step(7, f"Ada opens her certificate page /certificates/{certificate.verify_uuid}")
    response, _title = open_page(client, f"/certificates/{certificate.verify_uuid}")
    location = response.get("Location", "")
    expect(response.status_code == 302 and location == row.view_url,
           f"Expected a redirect to {row.view_url}, got {response.status_code} {location!r}.")
    detail("HTTP", f"{response.status_code} Location: {location}")
    detail("Location == the credential's view URL", "yes (RenderPokCredential: one query, no POK call)")

    step(8, "Her browser follows the redirect to POK")
    status, title = fetch(row.view_url)
    expect(status == 200, f"The credential page answered {status}.")
    detail("HTTP", f"{status}, page title \"{title}\"")

    step(9, "A learner with no name in the profile passes: the credential is held, nothing is sent")
    posts_before = post_count(simulator)
    held_certificate, _status = award(noname, course, 0.81)
    held = credential(noname, course)
    expect(held.status == CredentialStatus.HELD, f"Expected held, got {held.status}.")
    detail("Open edX certificate", held_certificate.status)
    detail("plugin row", f"{held.status}: {held.status_reason}")
    if simulator is not None:
        expect(post_count(simulator) == posts_before, "A held credential must not be sent to POK.")
        detail("POK requests", "none")
    response, title = open_page(client, f"/certificates/{held_certificate.verify_uuid}")
    detail("certificate page", f"{response.status_code}, \"{title}\" (no credential to redirect to)")

    step(10, "Revocation: Alan earns a credential, then an instructor invalidates his certificate")
    alan_certificate, _status = award(alan, course, 0.88)
    alan_row = credential(alan, course)
    detail("plugin row after the award", f"{alan_row.status}, POK id {alan_row.pok_credential_id}")
    with transaction.atomic():
        revoke_certificate(alan, course.id)
    alan_row.refresh_from_db()
    expect(alan_row.status == CredentialStatus.REVOKED, f"Expected revoked, got {alan_row.status}.")
    detail("CERTIFICATE_REVOKED -> plugin row", f"{alan_row.status}: {alan_row.status_reason}")
    response, _title = open_page(client, f"/certificates/{alan_certificate.verify_uuid}")
    expect(response.status_code == 404, f"The public page of a revoked certificate answered {response.status_code}.")
    detail(f"/certificates/{alan_certificate.verify_uuid}", f"{response.status_code} (no longer a valid certificate)")
    client.force_login(alan)
    response, title = open_page(client, f"/certificates/course/{course.id}")
    client.logout()
    expect(response.status_code == 200 and "Invalid" in title,
           f"Expected the invalid-certificate page, got {response.status_code} \"{title}\".")
    detail(f"Alan's own page /certificates/course/{course.id}", f"{response.status_code}, \"{title}\"")

    step(11, "Credentials in the plugin's table (the admin shows the same)")
    for each in PokCertificate.objects.select_related("user").order_by("id"):
        detail(f"{each.user.username:<7}", f"{each.status:<8} POK id {each.pok_credential_id or '-'}")
    if simulator is not None:
        detail("POK simulator totals", f"{simulator.count('issue_credential')} POST /credential, "
               f"{simulator.count()} requests in all")
    return row, certificate


# --- serving ---------------------------------------------------------------------------------------------------------

def operator_command(simulator, command="pok_sync"):
    """
    A command line that runs a plugin command from a second shell against this demo: its database and its POK.

    The demo's settings take the database from ``POK_DEMO_DIR`` and POK from ``POK_API_URL`` / ``POK_API_KEY``; the
    simulator listens on a port chosen at start, so a second shell cannot guess them. A real POK's key is left as
    ``$POK_API_KEY``: that shell has it already, and a key is never printed.
    """
    from django.conf import settings

    key = simulator.api_key if simulator is not None else "$POK_API_KEY"
    return (f"DJANGO_SETTINGS_MODULE=demo.settings POK_DEMO_DIR={settings.DEMO_DIR} "
            f"POK_API_URL={settings.POK_API_URL} POK_API_KEY={key} "
            f"{os.path.relpath(sys.executable)} -m django {command}")


def serve(port, password, certificate, simulator):
    from django.core.management import call_command

    from demo.views import DEMO_LEARNERS

    base = f"http://{HOST}:{port}"
    print(f"\nSandbox LMS on {base} (the POK simulator keeps running; Ctrl-C stops both)", flush=True)
    print(f"  Admin:       {base}/admin/   username {ADMIN_USERNAME}   password {password}", flush=True)
    print(f"  Certificate: {base}/certificates/{certificate.verify_uuid}   (redirects to the POK credential)",
          flush=True)
    for username in DEMO_LEARNERS:
        print(f"  Log in as {username + ':':<7} {base}/demo/login-as/{username}/   (their certificate page)",
              flush=True)
    print(f"  From another shell (any plugin command, e.g. pok_check --online, pok_report):\n"
          f"    {operator_command(simulator)}\n", flush=True)
    # runserver of django.contrib.staticfiles serves the admin's CSS/JS; no reloader: it would restart the process
    # and lose the simulator and the runtime POK settings.
    call_command("runserver", f"{HOST}:{port}", use_reloader=False, insecure_serving=True)


def _terminate(_signum, _frame):
    # SIGTERM (e.g. from a process manager) ends the run like Ctrl-C, so the simulator is stopped cleanly.
    raise KeyboardInterrupt


def main(argv=None):
    args = parse_args(argv)
    if not args.no_serve and not port_is_free(args.port):
        print(f"Port {args.port} on {HOST} is in use; choose another with --port (make demo ARGS=--port=8001).",
              file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _terminate)
    django.setup()
    simulator = None
    try:
        print("openedx-pok demo: a learner earns a certificate and gets a POK credential", flush=True)
        fresh_database()
        simulator, template_id = start_pok(args.async_polls)
        course, learners, password = seed(template_id)
        row, certificate = run_flow(simulator, course, learners, args.async_polls)
        print(f"\nCredential view URL: {row.view_url}", flush=True)
        if not args.no_serve:
            serve(args.port, password, certificate, simulator)
    except DemoError as exc:
        print(f"\nDemo failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nStopped.")
    finally:
        if simulator is not None:
            simulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
