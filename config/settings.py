"""The one settings module, read from the environment.

Every value has a default that runs on a fresh clone with no services (SQLite, Celery's
``filesystem://`` broker, uploads on local disk, all under the ignored ``var/``). Production sets
``DEBUG=false``, ``SECRET_KEY``, ``DATABASE_URL=postgres://...`` and
``CELERY_BROKER_URL=redis://...``. The helpers below fail loudly on a malformed value rather than
falling back to a default nobody asked for.
"""

from __future__ import annotations

import json
import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from kombu import Exchange, Queue

BASE_DIR = Path(__file__).resolve().parent.parent

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use true/false, 1/0, yes/no)")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={value} is below the minimum of {minimum}")
    return value


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number") from None


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_json(name: str, default: dict[str, Any]) -> dict[str, Any]:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ImproperlyConfigured(f"{name} must be a JSON object")
    return value


def env_path(name: str, default: Path) -> Path:
    return Path(os.environ.get(name) or default).resolve()


def _s3_client_config() -> Any:
    from botocore.config import Config

    return Config(
        connect_timeout=env_int("AWS_S3_CONNECT_TIMEOUT", 5, minimum=1),
        read_timeout=env_int("AWS_S3_READ_TIMEOUT", 60, minimum=1),
        retries={"max_attempts": env_int("AWS_S3_MAX_ATTEMPTS", 3, minimum=1), "mode": "standard"},
        # Path-style URLs work with every S3-compatible server (MinIO, moto, Ceph), not only AWS.
        s3={"addressing_style": env_str("AWS_S3_ADDRESSING_STYLE", "path")},
    )


# --- core -------------------------------------------------------------------------------------

DEBUG = env_bool("DEBUG", True)
VAR_DIR = env_path("VAR_DIR", BASE_DIR / "var")
VAR_DIR.mkdir(parents=True, exist_ok=True)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = "django-insecure-local-development-only"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
# Absolute links in emails; the request's host is not available in a worker.
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "courses",
    "accounts",
    "submissions",
    "leaderboard",
    "lti_tool",
    "lti",
    "axes",
    "csp",
]

MIDDLEWARE = [
    # First: refuses an oversized body (413) before CSRF or anything else reads it.
    "leaderboard.body_limit.RequestBodyLimit",
    # Then, so it times the whole answer (leaderboard.metrics).
    "leaderboard.metrics.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The cookie that carries a SAML sign-in's state across the IdP's cross-site POST.
    "accounts.saml.SamlSessionMiddleware",
    # After sessions, before CommonMiddleware (Django's i18n guide): the language cookie, else
    # the browser's Accept-Language.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Needs the user: a signed-in user's saved language wins over cookie and browser.
    "accounts.language.UserLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a locked-out sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
            ],
        },
    },
]

# --- database ---------------------------------------------------------------------------------

DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}")
DATABASES = {
    "default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 0))
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        # The web process and a worker write to the same file: wait for the lock instead of
        # failing, take it at BEGIN (no deadlock when a reader upgrades), and use WAL so
        # readers never block the writer.
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # The default test database is in memory, which a worker subprocess cannot see: use a
    # file, one per test run so two runs at once (CI and a laptop, two engineers) never share.
    # A worker subprocess finds it in ``connection.settings_dict["NAME"]``.
    DATABASES["default"]["TEST"] = {
        "NAME": str(env_path("TEST_DATABASE_NAME", VAR_DIR / f"test-db-{os.getpid()}.sqlite3"))
    }
elif os.environ.get("TEST_DATABASE_NAME"):
    # Two test runs against one PostgreSQL server (two checkouts) each need their own database.
    DATABASES["default"]["TEST"] = {"NAME": os.environ["TEST_DATABASE_NAME"]}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- auth, sessions, i18n ---------------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Sign-in throttling (django-axes): after AXES_FAILURE_LIMIT failures for one username from one
# address, that pair is refused for the cool-off. Per username *and* address, so neither a
# guessed-at account nor a lecture hall behind one NAT is locked out for everyone. The database
# handler works on SQLite and PostgreSQL alike; staff can lift a lockout in the admin.
# Axes first (it refuses a locked-out pair before a password is checked), then passwords; the
# OIDC and SAML backends answer only on their callbacks and only when configured, and axes
# leaves them alone (leaderboard.signin.single_sign_on).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "accounts.oidc.UniversityOIDCBackend",
    "accounts.saml.UniversitySAMLBackend",
]
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 10, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "leaderboard.signin.locked_out"
AXES_CLIENT_IP_CALLABLE = "leaderboard.signin.client_ip"
AXES_WHITELIST_CALLABLE = "leaderboard.signin.single_sign_on"
AXES_VERBOSE = False
# A wrong old password on the password-change page counts as a failed sign-in too
# (accounts.views.PasswordChangeView); axes keeps the request's fields with each failure, so
# that page's password fields are masked like the sign-in's "password".
AXES_SENSITIVE_PARAMETERS = [
    "username",
    "ip_address",
    "old_password",
    "new_password1",
    "new_password2",
    # a refused SAML sign-in's POST: the IdP's whole signed response, personal data included
    "SAMLResponse",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"

# Stored in UTC; each course shows times in its own timezone (Course.timezone).
TIME_ZONE = "UTC"
USE_TZ = True
# Pages, emails and the grader's messages in English and German. The language is the signed-in
# user's saved choice (accounts.language), else the language cookie set by the header's switch,
# else the browser's Accept-Language; numbers and dates follow it (USE_L10N is always on).
LANGUAGES = [("en", "English"), ("de", "Deutsch")]
#: for a reader whose browser asks for neither, and for emails to someone who never signed in
LANGUAGE_CODE = env_str("LANGUAGE_CODE", "en")
if LANGUAGE_CODE not in dict(LANGUAGES):
    raise ImproperlyConfigured(f"LANGUAGE_CODE must be one of {', '.join(dict(LANGUAGES))}")
# Dates and numbers per language (config/formats/<lang>/formats.py): the site's own look in
# English, German conventions in German.
FORMAT_MODULE_PATH = ["config.formats"]
USE_I18N = True
LOCALE_PATHS = [BASE_DIR / "locale"]

# --- transport security -------------------------------------------------------------------------

# Production is HTTPS behind the reverse proxy (deploy/Caddyfile) by default: with DEBUG off and
# nothing else set, cookies are Secure, HSTS is on, plain http is redirected, and the proxy's
# X-Forwarded-Proto / X-Forwarded-For are trusted (gunicorn is reachable only through it).
# SERVE_PLAIN_HTTP=true is the explicit opt-out for a site without TLS (a lab network); start-up
# then logs a warning (leaderboard.apps). With DEBUG on, none of this applies.
SERVE_PLAIN_HTTP = env_bool("SERVE_PLAIN_HTTP", False)
_SECURE_DEFAULT = not DEBUG and not SERVE_PLAIN_HTTP
BEHIND_TLS_PROXY = env_bool("BEHIND_TLS_PROXY", _SECURE_DEFAULT)
#: whether X-Forwarded-* headers come from our own proxy (else they are the client's word)
TRUST_PROXY_HEADERS = BEHIND_TLS_PROXY
if BEHIND_TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", _SECURE_DEFAULT)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", _SECURE_DEFAULT)
# A year, the browsers' preload minimum; subdomains of the site's own host are its own too.
SECURE_HSTS_SECONDS = env_int(
    "SECURE_HSTS_SECONDS", 365 * 24 * 3600 if _SECURE_DEFAULT else 0, minimum=0
)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
# Joining the browsers' preload list is hard to undo: an operator's choice, not a default. Its
# deploy check is silenced only while the choice is "no".
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]

# Content-Security-Policy (django-csp): scripts, styles, images and fonts from this site only,
# so an injected <script> or inline handler does nothing. Templates and static JS therefore hold
# no inline scripts or styles (tests/platform/test_csp.py); charts are SVG files and data: URIs.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# --- static files and uploads -----------------------------------------------------------------

STATIC_URL = "/static/"
STATIC_ROOT = env_path("STATIC_ROOT", BASE_DIR / "staticfiles")
# WhiteNoise warns about a missing folder on every request until collectstatic has run.
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# Without DEBUG whitenoise serves the hashed, compressed files collectstatic wrote; with DEBUG it
# serves straight from the apps so a fresh clone needs no collectstatic.
WHITENOISE_USE_FINDERS = DEBUG
MEDIA_ROOT = env_path("MEDIA_ROOT", VAR_DIR / "media")
# MEDIA_URL is deliberately not routed: uploaded models are never downloadable by URL.
MEDIA_URL = "/media/"

# --- object storage ---------------------------------------------------------------------------

# Uploads and pictures go through Django's storage API. ``local`` (the default) keeps them under
# MEDIA_ROOT, which only works while the web process and every worker share one disk;
# ``s3`` puts them in any S3-compatible store (AWS, MinIO, Ceph, ...) so workers on other hosts
# read the same objects. Configured with django-storages' usual AWS_* variables.
MEDIA_STORAGE = env_str("MEDIA_STORAGE", "local")
if MEDIA_STORAGE not in ("local", "s3"):
    raise ImproperlyConfigured(f"MEDIA_STORAGE={MEDIA_STORAGE!r}: use 'local' or 's3'")
_default_storage: dict[str, Any] = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
if MEDIA_STORAGE == "s3":
    _default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env_str("AWS_STORAGE_BUCKET_NAME", ""),
            "endpoint_url": env_str("AWS_S3_ENDPOINT_URL", "") or None,
            "access_key": env_str("AWS_ACCESS_KEY_ID", "") or None,
            "secret_key": env_str("AWS_SECRET_ACCESS_KEY", "") or None,
            "region_name": env_str("AWS_S3_REGION_NAME", "") or None,
            # Objects are private: students reach pictures only through the app's own views,
            # which check who may see them, and models are never downloadable at all.
            "default_acl": "private",
            "querystring_auth": True,
            # Two uploads never share a name (a uuid per submission); a re-drawn picture
            # replaces the old one on purpose.
            "file_overwrite": True,
            # Bounded retries: an outage answers the upload with 503 in seconds, not minutes.
            "client_config": _s3_client_config(),
        },
    }
    if not _default_storage["OPTIONS"]["bucket_name"]:
        raise ImproperlyConfigured("MEDIA_STORAGE=s3 needs AWS_STORAGE_BUCKET_NAME")
STORAGES: dict[str, dict[str, Any]] = {
    "default": _default_storage,
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# --- cache ------------------------------------------------------------------------------------

# Computed leaderboards and charts. Per process by default; CACHE_URL=redis://… shares them
# between web processes.
CACHE_URL = env_str("CACHE_URL", "")
CACHES: dict[str, dict[str, Any]] = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
        if CACHE_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# --- email ------------------------------------------------------------------------------------

# The demo prints email to the console; production sets the SMTP backend and its host.
# django.core.mail.backends.filebased.EmailBackend writes one file per connection into
# EMAIL_FILE_PATH (what the end-to-end tests read invitations from).
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_FILE_PATH = env_path("EMAIL_FILE_PATH", VAR_DIR / "mail")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("EMAIL_USE_TLS and EMAIL_USE_SSL exclude each other")
# Inviting a roster of 500 must not hang forever on a mail server that stopped answering.
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 30, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "leaderboard@localhost")
SERVER_EMAIL = env_str("SERVER_EMAIL", DEFAULT_FROM_EMAIL)

# --- accounts: invitations, password reset, university sign-in ---------------------------------

#: an invitation link's lifetime (it also stops working once the password is set)
INVITE_DAYS = env_int("INVITE_DAYS", 14, minimum=1)
#: a "Forgot your password?" link's lifetime, in seconds (Django's default: three days)
PASSWORD_RESET_TIMEOUT = env_int("PASSWORD_RESET_TIMEOUT", 3 * 24 * 3600, minimum=60)
# "Forgot your password?" sends at most PASSWORD_RESET_EMAIL_LIMIT links to one email and
# answers at most PASSWORD_RESET_ADDRESS_LIMIT requests from one client address within any
# PASSWORD_RESET_WINDOW_MINUTES (accounts.throttle); beyond that it shows the same page and
# sends nothing. Per address high enough for a lecture hall behind one NAT.
PASSWORD_RESET_EMAIL_LIMIT = env_int("PASSWORD_RESET_EMAIL_LIMIT", 3, minimum=1)
PASSWORD_RESET_ADDRESS_LIMIT = env_int("PASSWORD_RESET_ADDRESS_LIMIT", 20, minimum=1)
PASSWORD_RESET_WINDOW_MINUTES = env_int("PASSWORD_RESET_WINDOW_MINUTES", 60, minimum=1)

# OpenID Connect (mozilla-django-oidc): on when OIDC_ISSUER is set. Endpoints come from the
# issuer's discovery document; the provider must list SITE_URL/accounts/oidc/callback/ as a
# redirect URI of this client.
OIDC_ISSUER = env_str("OIDC_ISSUER", "").rstrip("/")
OIDC_CLIENT_ID = env_str("OIDC_CLIENT_ID", "")
OIDC_CLIENT_SECRET = env_str("OIDC_CLIENT_SECRET", "")
if OIDC_ISSUER and not (OIDC_CLIENT_ID and OIDC_CLIENT_SECRET):
    raise ImproperlyConfigured("OIDC_ISSUER needs OIDC_CLIENT_ID and OIDC_CLIENT_SECRET")
#: the button reads "Sign in with <this>"
OIDC_PROVIDER_NAME = env_str("OIDC_PROVIDER_NAME", "your university")
#: sign in someone whose verified email matches no account by creating one (else refused:
#: accounts come from the roster)
OIDC_CREATE_USERS = env_bool("OIDC_CREATE_USERS", False)
OIDC_RP_SIGN_ALGO = env_str("OIDC_SIGN_ALGO", "RS256")
OIDC_RP_SCOPES = "openid email profile"
OIDC_USE_PKCE = True
#: seconds to wait for the provider (discovery, token, userinfo, keys)
OIDC_TIMEOUT = env_int("OIDC_TIMEOUT", 10, minimum=1)
# A refusal is explained on the sign-in page (a message), not on the home page.
LOGIN_REDIRECT_URL_FAILURE = "/accounts/login/"

# SAML 2.0 (djangosaml2 on pysaml2, which signs and checks with Debian's xmlsec1): on when the
# IdP's metadata is configured. Give the IdP operator SITE_URL/accounts/saml/metadata/ (this
# service provider's metadata: entity id, assertion consumer service, certificate).
SAML_IDP_METADATA_URL = env_str("SAML_IDP_METADATA_URL", "")
SAML_IDP_METADATA_FILE = env_str("SAML_IDP_METADATA_FILE", "")
#: the button reads "Sign in with <this>"
SAML_PROVIDER_NAME = env_str("SAML_PROVIDER_NAME", "your university")
#: this service provider's key pair (PEM): a demo pair is made in VAR_DIR/saml/ when unset and
#: DEBUG is on; production names its own
SAML_SP_KEY_FILE = env_str("SAML_SP_KEY_FILE", "")
SAML_SP_CERT_FILE = env_str("SAML_SP_CERT_FILE", "")
#: the attribute holding the email (mail, or its OID: either is accepted for the other)
SAML_EMAIL_ATTRIBUTE = env_str("SAML_EMAIL_ATTRIBUTE", "mail")
#: sign in someone whose email matches no account by creating one (else refused)
SAML_CREATE_USERS = env_bool("SAML_CREATE_USERS", False)
#: seconds to wait for the IdP's metadata; and how long fetched metadata is kept
SAML_TIMEOUT = env_int("SAML_TIMEOUT", 10, minimum=1)
SAML_METADATA_REFRESH_SECONDS = env_int("SAML_METADATA_REFRESH_SECONDS", 3600, minimum=60)
if (SAML_IDP_METADATA_URL or SAML_IDP_METADATA_FILE) and not DEBUG:
    for _name in ("SAML_SP_KEY_FILE", "SAML_SP_CERT_FILE"):
        if not Path(globals()[_name] or "/nonexistent").is_file():
            raise ImproperlyConfigured(
                f"SAML sign-in needs {_name} (an existing PEM file) when DEBUG is off"
            )
# djangosaml2: its state cookie (accounts.saml.SamlSessionMiddleware sets SameSite per request);
# the sign-in redirects to the IdP (no auto-posting form, which the CSP would stop); the
# page's own CSP stays as it is.
SAML_SESSION_COOKIE_NAME = "saml_session"
SAML_DEFAULT_BINDING = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
SAML_CSP_HANDLER = ""

# --- grading ----------------------------------------------------------------------------------

#: hidden test sets live here on worker hosts; a challenge names a folder relative to it
GRADER_DATA_ROOT = env_path("GRADER_DATA_ROOT", VAR_DIR / "hidden")
#: where seed_demo builds the demo models students can upload
GRADER_DEMO_MODELS = env_path("GRADER_DEMO_MODELS", VAR_DIR / "demo-models")
#: "cpu" or "cuda:N": the device this worker grades on (one worker per GPU)
GRADER_DEVICE = env_str("GRADER_DEVICE", "cpu")
if not re.fullmatch(r"cpu|cuda(:\d+)?", GRADER_DEVICE):
    raise ImproperlyConfigured(f"GRADER_DEVICE={GRADER_DEVICE!r}: use 'cpu' or 'cuda:N'")
GRADER_BATCH_SIZE = env_int("GRADER_BATCH_SIZE", 32, minimum=1)
# Grading runs untrusted code: the sandbox is mandatory except on a developer's laptop that
# lacks bubblewrap. Checked here, where the environment is read, so tests may override it.
GRADER_SANDBOX = env_bool("GRADER_SANDBOX", True)
if not GRADER_SANDBOX and not DEBUG:
    raise ImproperlyConfigured("GRADER_SANDBOX=false is only allowed with DEBUG=true")
#: the unprivileged uid the jobs of this worker run as; a pool of N processes uses this uid and
#: the N-1 below it. The kernel's process limit is per uid: workers sharing a host (one per GPU)
#: need ranges that do not overlap, or one model's fork bomb starves the other's jobs.
GRADER_SANDBOX_UID = env_int("GRADER_SANDBOX_UID", 65534, minimum=1000)
if GRADER_SANDBOX_UID > 65534:
    raise ImproperlyConfigured(f"GRADER_SANDBOX_UID={GRADER_SANDBOX_UID} is above 65534")
#: retries of a job that failed for a platform reason, before it is given up as failed
GRADER_MAX_RETRIES = env_int("GRADER_MAX_RETRIES", 3, minimum=0)
#: first retry delay; doubled for each further retry
GRADER_RETRY_BACKOFF_SECONDS = env_int("GRADER_RETRY_BACKOFF_SECONDS", 30, minimum=0)
#: time a job may take beyond the model's own limit (copying the file, loading the test set)
GRADER_TASK_OVERHEAD_SECONDS = env_int("GRADER_TASK_OVERHEAD_SECONDS", 120, minimum=1)
#: a queued submission with no worker after this long had its message lost: send it again
GRADER_STUCK_QUEUED_SECONDS = env_int("GRADER_STUCK_QUEUED_SECONDS", 900, minimum=1)
#: a running submission past its hard time limit plus this had its worker die
GRADER_STUCK_RUNNING_GRACE_SECONDS = env_int("GRADER_STUCK_RUNNING_GRACE_SECONDS", 300, minimum=0)
#: how often beat runs the sweep: with GRADER_WORKER_DEAD_SECONDS, the longest a dead worker's
#: job waits (30 + 15 s, within the 90 s a student should wait at most); the sweep is a few
#: indexed queries
GRADER_SWEEP_EVERY_SECONDS = env_int("GRADER_SWEEP_EVERY_SECONDS", 15, minimum=1)
#: attempts (claims) after which the sweep gives a submission up instead of re-queueing it
GRADER_MAX_ATTEMPTS = env_int("GRADER_MAX_ATTEMPTS", 5, minimum=1)
# The fair queue: while another student's upload waits, at most this many uploads of one student
# (an enrolment) run at once; a free worker takes the oldest waiting upload of the student with
# the fewest running, then the fewest graded in the last hour.
GRADER_MAX_RUNNING_PER_STUDENT = env_int("GRADER_MAX_RUNNING_PER_STUDENT", 1, minimum=1)
# The share of starts re-grade attempts get while students' uploads of the same device wait
# (0: only when no upload waits; 1: re-grades first).
GRADER_REGRADE_SHARE = env_float("GRADER_REGRADE_SHARE", 0.5)
if not 0 <= GRADER_REGRADE_SHARE <= 1:
    raise ImproperlyConfigured(f"GRADER_REGRADE_SHARE={GRADER_REGRADE_SHARE}: use 0 to 1")
#: staff-only model log kept per grading run
GRADER_LOG_KEEP_CHARS = env_int("GRADER_LOG_KEEP_CHARS", 20_000, minimum=0)

# --- queues: which worker grades what ---------------------------------------------------------

# A challenge names the device its grading needs (Challenge.device: cpu or gpu); its jobs go to
# that device's queue. A worker serves the queues of what it has: a CPU worker ``cpu``, a GPU
# worker ``gpu`` and, so that a site with only GPU workers still grades everything, ``cpu``.
#: the queues' common prefix: two sites sharing one broker (staging, production) pick their own
GRADER_QUEUE_PREFIX = env_str("GRADER_QUEUE_PREFIX", "grade-")
#: the devices whose queues this worker consumes (web hosts ignore it)
GRADER_SERVES = env_list(
    "GRADER_SERVES", ["gpu", "cpu"] if GRADER_DEVICE.startswith("cuda") else ["cpu"]
)
if not GRADER_SERVES or not set(GRADER_SERVES) <= {"cpu", "gpu"}:
    raise ImproperlyConfigured(f"GRADER_SERVES={GRADER_SERVES!r}: a list of 'cpu' and 'gpu'")
if "gpu" in GRADER_SERVES and not GRADER_DEVICE.startswith("cuda"):
    raise ImproperlyConfigured("GRADER_SERVES has 'gpu' but GRADER_DEVICE is not cuda:N")
# --- Reliability: heartbeats, retries of result writes ----------------------------------------

# Every grading process beats its ``WorkerHeartbeat`` row this often (seconds, a float so tests
# can beat fast).
GRADER_HEARTBEAT_SECONDS = env_float("GRADER_HEARTBEAT_SECONDS", 5.0)
# A process whose last beat is older than this is dead: the sweep re-queues the work it held,
# and a re-delivered message may take its claim over. Several missed beats, so a busy host or a
# short database hiccup does not count as a death.
GRADER_WORKER_DEAD_SECONDS = env_float("GRADER_WORKER_DEAD_SECONDS", 30.0)
# Writing a finished grading's result is retried this many times after a lost database
# connection (a restart), with a backoff doubling from GRADER_RECORD_BACKOFF_SECONDS: about a
# minute in all by default, longer than a PostgreSQL restart takes.
GRADER_RECORD_RETRIES = env_int("GRADER_RECORD_RETRIES", 6, minimum=0)
GRADER_RECORD_BACKOFF_SECONDS = env_float("GRADER_RECORD_BACKOFF_SECONDS", 1.0)

# Copies (docs/staff.md, "Copies"): the similarity from which two uploads' predictions count as
# near-identical, per task kind, as a JSON object {"<kind>": 0.97}; a kind left out keeps the
# threshold its module sets (``TaskKind.near_threshold``, measured by benchmarks/bench_copies.py).
COPIES_NEAR_THRESHOLDS: dict[str, Any] = env_json("COPIES_NEAR_THRESHOLDS", {})
# An upload with the same weights or predictions as other students' is paired with the earliest
# upload of each of the first this many students who handed the same in, not with every one: a
# starter model handed in unchanged by a whole class gives pairs in proportion to its uploads.
COPIES_EXACT_PAIRS = env_int("COPIES_EXACT_PAIRS", 10, minimum=1)

# Threads a job's model may use. 0: this host's cores divided by CELERY_WORKER_CONCURRENCY, so
# a CPU worker uses its cores without jobs competing for them; set it where the worker's
# --concurrency differs from CELERY_WORKER_CONCURRENCY or to leave cores to something else.
GRADER_THREADS_PER_JOB = env_int("GRADER_THREADS_PER_JOB", 0, minimum=0)

# How much lower than the web server grading runs (Unix niceness added to each pool process,
# and so to its sandbox and every model it runs). Where web and workers share cores, a request
# then takes the CPU from a grading at once instead of waiting its turn; where workers have
# hosts of their own it changes nothing. 0 leaves them equal.
GRADER_NICE = env_int("GRADER_NICE", 10, minimum=0)

# --- Alerts and metrics ----------------------------------------------------------------------

# Site admins (ADMINS and superusers with an email) get one email when the oldest queued
# submission has waited longer than this, or when no worker has a heartbeat, and one when it
# recovers. Ten minutes: well past a deadline rush's normal wait, well before students give up.
ALERT_QUEUE_AGE_SECONDS = env_int("ALERT_QUEUE_AGE_SECONDS", 600, minimum=1)
ADMINS = [(email.split("@")[0], email) for email in env_list("ADMINS", []) if "@" in email]
# /metrics (Prometheus) answers only with "Authorization: Bearer <METRICS_TOKEN>"; unset, the
# endpoint does not exist (404), so a fresh clone exposes nothing.
METRICS_TOKEN = env_str("METRICS_TOKEN", "")

# --- Celery -----------------------------------------------------------------------------------

CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
CELERY_BROKER_DIR = env_path("CELERY_BROKER_DIR", VAR_DIR / "broker")
if CELERY_BROKER_URL.startswith("filesystem://"):
    # One folder for both directions so any process may send and any worker may receive.
    _queue_dir = CELERY_BROKER_DIR / "queue"
    _default_options: dict[str, Any] = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "processed_folder": str(CELERY_BROKER_DIR / "processed"),
        "store_processed": False,
        "control_folder": str(CELERY_BROKER_DIR / "control"),
        "polling_interval": env_float("CELERY_POLLING_INTERVAL", 0.5),
    }
    # kombu does not create these folders, and both the web process and workers write to them.
    for _key in ("data_folder_in", "processed_folder", "control_folder"):
        Path(_default_options[_key]).mkdir(parents=True, exist_ok=True)
else:
    # Redis redelivers an unacknowledged (acks_late) message after this long: it must exceed the
    # longest job, or a slow job would be handed to a second worker.
    _default_options = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 4 * 3600)}
CELERY_BROKER_TRANSPORT_OPTIONS = {
    **_default_options,
    **env_json("CELERY_BROKER_TRANSPORT_OPTIONS", {}),
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True


def _queue(name: str) -> Queue:
    """A queue with an exchange and routing key of its own. Without them Celery binds every
    queue to the default queue's exchange and key, so a message sent to one queue would be
    delivered to all of them (a grading to the housekeeping thread, a CPU job to GPU hosts)."""
    return Queue(name, Exchange(name, type="direct"), routing_key=name)


# What ``celery -A worker worker`` consumes without ``-Q``.
CELERY_TASK_QUEUES = [_queue(f"{GRADER_QUEUE_PREFIX}{device}") for device in GRADER_SERVES]
#: tasks that are not gradings (emails, grade passback, roster sync) have a queue of their own
HOUSEKEEPING_QUEUE = f"{GRADER_QUEUE_PREFIX}housekeeping"
CELERY_TASK_QUEUES.append(_queue(HOUSEKEEPING_QUEUE))
# Untargeted tasks (the sweep a worker asks for on connecting) are housekeeping, which every
# worker serves beside its grading (``worker.housekeeping``), never behind it.
CELERY_TASK_DEFAULT_QUEUE = HOUSEKEEPING_QUEUE
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# The database is the source of truth; nothing reads task results.
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
# One job at a time per device, acknowledged only when done, so a worker that dies mid-job
# leaves its message for another (the sweep covers brokers that cannot redeliver).
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_CONCURRENCY = env_int("CELERY_WORKER_CONCURRENCY", 1, minimum=1)
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# The console email backend prints to stdout; that is information, not a warning.
CELERY_WORKER_REDIRECT_STDOUTS_LEVEL = "INFO"
CELERY_BEAT_SCHEDULE_FILENAME = str(
    env_path("CELERY_BEAT_SCHEDULE_FILENAME", VAR_DIR / "celerybeat-schedule")
)
# Nothing periodic goes through the queues: beat runs the sweep itself (worker.housekeeping),
# since a sweep sent as a task would wait behind the gradings of a backlog.
CELERY_BEAT_SCHEDULE: dict[str, Any] = {
    # LTI: the rosters of the LMS courses linked to semesters, nightly, and the grades of results
    # that came out without an event (a deadline passing), hourly; both on the housekeeping queue
    "lti-sync-rosters": {
        "task": "lti.tasks.sync_rosters",
        "schedule": crontab(hour=3, minute=17),
        "options": {"queue": HOUSEKEEPING_QUEUE, "expires": 3600},
    },
    "lti-push-revealed": {
        "task": "lti.tasks.push_revealed",
        "schedule": crontab(minute=41),
        "options": {"queue": HOUSEKEEPING_QUEUE, "expires": 3000},
    },
}

# --- LTI 1.3 ------------------------------------------------------------------------------------

#: grade passback: attempts when the platform fails, and the first wait (doubling each time)
LTI_PASSBACK_ATTEMPTS = env_int("LTI_PASSBACK_ATTEMPTS", 6, minimum=1)
LTI_PASSBACK_RETRY_SECONDS = env_int("LTI_PASSBACK_RETRY_SECONDS", 30, minimum=1)

# --- logging ----------------------------------------------------------------------------------

LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        name: {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False}
        for name in ("leaderboard", "submissions", "worker", "accounts", "lti")
    },
}
