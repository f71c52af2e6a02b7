"""
Django settings of the plugin's test suite: the sandbox LMS's production settings, then the suite's own values.

The sandbox LMS's settings load in the real LMS's phases and order (``lms_sandbox/envs``): the plugin's ``common``
phase meets ``Derived`` placeholders, the operator's YAML replaces whole keys, ``derive_settings`` runs, then the
plugin's ``production`` phase. The values below come after all of that, as Tutor's settings do after
``from lms.envs.production import *``.

``POK_TEST_DB=mysql`` runs the suite on MariaDB/MySQL (127.0.0.1:3306 by default) through mysqlclient, the driver
the LMS runs (``POK_TEST_MYSQL_DRIVER=pymysql`` for the pure-Python PyMySQL), with Tutor's database options; the
default is SQLite, the embedded database a new user gets.
"""
import importlib.util
import os

from lms_sandbox.envs.lms_production import *  # noqa: F403 - the sandbox LMS, loaded as the LMS loads its settings

SECRET_KEY = "insecure-test-key"  # noqa: S105 - tests only
PLATFORM_NAME = "Test Academy"
LMS_ROOT_URL = "http://lms.test"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast users in tests

if os.environ.get("POK_TEST_DB", "sqlite") == "mysql":
    # mysqlclient (``MySQLdb``, the C client library), as in the LMS: PyMySQL builds a TLS context on every connect
    # (about 20 ms here) and decodes rows in Python, which hides what the plugin itself costs. No silent fall back:
    # without mysqlclient (``make system-deps requirements``) the import fails and says so.
    if os.environ.get("POK_TEST_MYSQL_DRIVER", "mysqlclient") == "pymysql":
        import pymysql

        pymysql.install_as_MySQLdb()
    else:
        import MySQLdb  # noqa: F401 - mysqlclient
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.mysql",
            "NAME": os.environ.get("POK_TEST_MYSQL_DB", "test"),
            "USER": os.environ.get("POK_TEST_MYSQL_USER", "root"),
            "PASSWORD": os.environ.get("POK_TEST_MYSQL_PASSWORD", ""),
            "HOST": os.environ.get("POK_TEST_MYSQL_HOST", "127.0.0.1"),
            "PORT": os.environ.get("POK_TEST_MYSQL_PORT", "3306"),
            # Tutor's options (tutor/templates/apps/openedx/config/partials/auth.yml, Tutor 19 to 22): every request
            # in a transaction, strict mode, a utf8mb4 connection (Tutor's charset for the MySQL it runs; Django
            # 5.2's default for an operator's own). No isolation level: Django's default for MySQL, read committed.
            "ATOMIC_REQUESTS": True,
            "OPTIONS": {"charset": "utf8mb4", "init_command": "SET sql_mode='STRICT_TRANS_TABLES'"},
            # The database itself in utf8mb3, as an edxapp database created before utf8mb4 was MySQL's default (the
            # plugin's tables take the database's charset at migrate): the stricter case, where a 4-byte character
            # in a learner's name cannot be stored and strict mode refuses it instead of truncating.
            "TEST": {"NAME": os.environ.get("POK_TEST_MYSQL_TEST_DB", "test_openedx_pok"), "CHARSET": "utf8mb3"},
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("POK_TEST_SQLITE_NAME", ":memory:"),
            "ATOMIC_REQUESTS": True,  # as the LMS's own settings (openedx/envs/common.py)
            "TEST": {"NAME": os.environ.get("POK_TEST_SQLITE_TEST_NAME", None)},
        }
    }

CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "openedx-pok-tests"}}

# Celery: tasks run eagerly unless a test starts a real worker (see tests/test_celery_worker.py).
CELERY_TASK_ALWAYS_EAGER = os.environ.get("POK_TEST_CELERY_EAGER", "1") == "1"
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BROKER_URL = os.environ.get("POK_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")

# The POK API the tests talk to is the simulator; fixtures override the URL with the running server's.
POK_API_URL = os.environ.get("POK_TEST_API_URL", "http://127.0.0.1:9")
POK_API_KEY = os.environ.get("POK_TEST_API_KEY", "00000000-0000-4000-8000-000000000000")
# A worker process started by a test listens on (and re-enqueues retries to) that test's own queue.
POK_CELERY_QUEUE = os.environ.get("POK_TEST_CELERY_QUEUE") or None
POK_DEFAULT_TEMPLATE_ID = ""
POK_RETRY_BACKOFF_BASE = 0
# A worker process started by a test may need to wait for the LMS's generation task (queued 2 s after the filter).
POK_CERTIFICATE_WAIT_DELAY = int(os.environ.get("POK_TEST_CERTIFICATE_WAIT_DELAY", "0"))


# The simulator serves credential pages on the loopback host; a real POK serves them on pok.tech (the default).
POK_VIEW_URL_HOSTS = ["pok.tech", "credentity.xyz", "127.0.0.1", "localhost"]

# JWT, as the LMS authenticates its MFEs' calls to its APIs (the plugin's learner API, openedx_pok.learner_api).
# JWT_AUTH and EDX_DRF_EXTENSIONS as openedx/envs/common.py sets them (openedx/openedx-platform master, read at
# 0012533516; lms/envs/common.py before Ulmo), then what Tutor's tutor/templates/apps/openedx/settings/partials/
# common_all.py (Tutor 19 to 22) sets over them: the issuer "<LMS>/oauth2", the audience "openedx" and the RSA key
# pair (kid "openedx") the LMS signs its JWTs with (RS512) and verifies them with; here a key pair of each test run.
# And edx-drf-extensions' JwtAuthCookieMiddleware, which joins the MFEs' two JWT cookies, where lms/envs/common.py's
# MIDDLEWARE has it (master, read at 0191bfd216): after CommonMiddleware, before the session and authentication
# middleware. Only where edx-drf-extensions is installed (requirements/test.txt): the tox environments' Open edX pins
# go without it, and the learner API then authenticates with the session alone.
_jwt_issuer = f"{LMS_ROOT_URL}/oauth2"
JWT_AUTH = {
    "JWT_VERIFY_EXPIRATION": True,
    "JWT_PAYLOAD_GET_USERNAME_HANDLER": lambda d: d.get("username"),
    "JWT_LEEWAY": 1,
    "JWT_DECODE_HANDLER": "edx_rest_framework_extensions.auth.jwt.decoder.jwt_decode_handler",
    "JWT_AUTH_COOKIE": "edx-jwt-cookie",
    "JWT_EXPIRATION": 30,
    "JWT_IN_COOKIE_EXPIRATION": 60 * 60,
    "JWT_SUPPORTED_VERSION": "1.2.0",
    "JWT_ALGORITHM": "HS256",
    "JWT_SECRET_KEY": SECRET_KEY,
    "JWT_SIGNING_ALGORITHM": "RS512",
    "JWT_PRIVATE_SIGNING_JWK": None,
    "JWT_PUBLIC_SIGNING_JWK_SET": None,
    "JWT_ISSUER": _jwt_issuer,
    "JWT_AUDIENCE": "openedx",
    "JWT_ISSUERS": [{"ISSUER": _jwt_issuer, "AUDIENCE": "openedx", "SECRET_KEY": SECRET_KEY}],
    "JWT_AUTH_COOKIE_HEADER_PAYLOAD": "edx-jwt-cookie-header-payload",
    "JWT_AUTH_COOKIE_SIGNATURE": "edx-jwt-cookie-signature",
    "JWT_AUTH_HEADER_PREFIX": "JWT",
}
# The LMS's: no user field is updated from a (possibly stale) JWT.
EDX_DRF_EXTENSIONS = {"JWT_PAYLOAD_USER_ATTRIBUTE_MAPPING": {}}
if importlib.util.find_spec("edx_rest_framework_extensions") is not None:
    import json

    from cryptography.hazmat.primitives.asymmetric import rsa
    from jwt.algorithms import RSAAlgorithm

    _jwt_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    JWT_AUTH["JWT_PRIVATE_SIGNING_JWK"] = json.dumps({**json.loads(RSAAlgorithm.to_jwk(_jwt_key)), "kid": "openedx"})
    JWT_AUTH["JWT_PUBLIC_SIGNING_JWK_SET"] = json.dumps(
        {"keys": [{**json.loads(RSAAlgorithm.to_jwk(_jwt_key.public_key())), "kid": "openedx"}]})
    MIDDLEWARE = [*MIDDLEWARE]  # noqa: F405 - from the sandbox LMS
    MIDDLEWARE.insert(MIDDLEWARE.index("django.middleware.common.CommonMiddleware") + 1,
                      "edx_rest_framework_extensions.auth.jwt.middleware.JwtAuthCookieMiddleware")
