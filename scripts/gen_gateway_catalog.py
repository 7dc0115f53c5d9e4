#!/usr/bin/env python3
"""Generate cfgledger's catalog of MCP Gateway 1.1.0 settings from the gateway's own code.

Run with the gateway's virtual environment:

    /path/to/venv/bin/python scripts/gen_gateway_catalog.py > events/catalogs/mcpgateway.json
    /path/to/venv/bin/python scripts/gen_gateway_catalog.py --check < events/catalogs/mcpgateway.json

Sources, in output order:
  1. ``mcpgateway.config.Settings`` (field order of the class), env names without prefix;
  2. ``cpex.framework.settings.PluginsSettings`` (field order), env prefix ``PLUGINS_``.

Nothing is instantiated: the catalog is read from ``model_fields`` (annotation, metadata, default,
description, aliases), so no ``.env`` and no environment variable can change it. To make even the import
independent of the machine (config.py reads e.g. VALIDATION_MAX_JSON_DEPTH and LOG_LEVEL at import time and
rewrites some list variables in os.environ), the script re-executes itself once with a minimal environment
and from an empty temporary working directory before importing anything from the gateway.

The JSON goes to stdout (``json.dumps(indent=1, ensure_ascii=False)`` plus a final newline); notes
(category counts, dropped defaults, fields typed loosely, clashes) go to stderr. The output is
deterministic: field order, sorted sets, no timestamps, no paths of this machine.

``--check`` validates a generated catalog (stdin, or the file given after --check, or a fresh generation
when neither) and exits non-zero on the first class of problems found.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile

# --------------------------------------------------------------------------------------------------------
# Clean re-exec: the import of mcpgateway.config must not see this machine's environment or a .env file.
# --------------------------------------------------------------------------------------------------------
_MARKER = "CFGLEDGER_GEN_CATALOG_CLEAN"


def _reexec_clean() -> None:
    """Re-run this script with a minimal environment, from an empty temporary directory."""
    if os.environ.get(_MARKER) == "1":
        return
    env = {
        _MARKER: "1",
        "PATH": os.defpath,
        "LC_ALL": "C.UTF-8",
        "PYTHONHASHSEED": "0",
        "PYTHONIOENCODING": "utf-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
    }
    script = os.path.abspath(__file__)
    args = [a if a == "-" or a.startswith("--") else os.path.abspath(a) for a in sys.argv[1:]]
    sys.stdout.flush()
    sys.stderr.flush()
    with tempfile.TemporaryDirectory(prefix="gen-gw-catalog-") as tmp:
        import subprocess

        rc = subprocess.call([sys.executable, "-s", script, *args], env=env, cwd=tmp)
    sys.exit(rc)


if __name__ == "__main__":
    _reexec_clean()

# --------------------------------------------------------------------------------------------------------
# Imports of the gateway (only in the clean child).
# --------------------------------------------------------------------------------------------------------
import logging  # noqa: E402
import math  # noqa: E402
import typing  # noqa: E402
from enum import Enum  # noqa: E402
from pathlib import PurePath  # noqa: E402

# config.py calls logging.basicConfig at import when no handler exists; keep its chatter off stderr.
logging.basicConfig(level=logging.CRITICAL)

from pydantic import AliasChoices, AliasPath, AnyUrl, SecretStr  # noqa: E402

try:  # pydantic >= 2.10
    from pydantic_core import PydanticUndefined  # noqa: E402
except ImportError:  # pragma: no cover
    from pydantic.fields import PydanticUndefined  # type: ignore  # noqa: E402

import mcpgateway  # noqa: E402
from mcpgateway import _security_constants as SC  # noqa: E402
from mcpgateway.config import Settings  # noqa: E402
from cpex.framework.settings import PluginsSettings  # noqa: E402

NAMESPACE = "mcpgateway"
APPLICATION = "MCP Gateway"
EXPECTED_VERSION = "1.1.0"

# --------------------------------------------------------------------------------------------------------
# Secret rules, read from the gateway's code (mcpgateway/_security_constants.py and
# Settings.validate_security_combinations / Settings._enforce_secret_strength).
# --------------------------------------------------------------------------------------------------------
# _enforce_secret_strength(check_placeholder=True) rejects values starting with these, case-insensitively.
PLACEHOLDER_PREFIXES = ["__replace_me__", "replaceme"]
# Checked unconditionally, with min_length=max(min_secret_length, MIN_SECRET_LENGTH) (min_secret_length's
# default and lower bound are both MIN_SECRET_LENGTH), min_entropy=MIN_ENTROPY, weak = Settings.WEAK_VALUES.
STRONG_SECRETS = ("JWT_SECRET_KEY", "AUTH_ENCRYPTION_SECRET")
# Checked only when their feature is on (API/DOCS basic auth; EMAIL_AUTH_ENABLED): only the placeholder
# prefixes go into the catalog (a placeholder is never stored); length/weak checks stay with the gateway.
GATED_PASSWORDS = ("BASIC_AUTH_PASSWORD",)
# Checked when EMAIL_AUTH_ENABLED is on, which is the gateway's default: a gateway started with its own
# defaults refuses a weak or short value, so the catalog holds them to the same rules (length at least
# password_min_length_user's default, no weak value, no placeholder), and a new store generates them.
EMAIL_PASSWORDS = ("PLATFORM_ADMIN_PASSWORD", "DEFAULT_USER_PASSWORD")
# cfgledger generates a random value for these in a new store when none is seeded.
GENERATED = set(STRONG_SECRETS) | set(EMAIL_PASSWORDS)

# --------------------------------------------------------------------------------------------------------
# Category / reload / locked.
# --------------------------------------------------------------------------------------------------------
CATEGORY_MODE = {
    # category: (reload, locked)
    "security": ("restart", True),
    "database": ("restart", True),
    "server": ("restart", False),
    "performance": ("hot", False),
    "features": ("hot", False),
    "limits": ("hot", False),
    "logging": ("hot", False),
}

# Explicit placements that the pattern table below would get wrong (checked first).
EXPLICIT_CATEGORY = {
    # server process: bind address, mount path, transports, process/worker layout, startup-only paths
    "HOST": "server",
    "PORT": "server",
    "APP_NAME": "server",
    "APP_ROOT_PATH": "server",
    "APP_DOMAIN": "server",
    "UI_BASE_URL": "server",
    "CLIENT_MODE": "security",  # client mode skips the gateway's security validation
    "TEMPLATES_DIR": "server",
    "STATIC_DIR": "server",
    "TEMPLATES_AUTO_RELOAD": "server",
    "PROTOCOL_VERSION": "server",
    "TRANSPORT_TYPE": "server",
    "RELOAD": "server",
    "DEV_MODE": "security",  # relaxes security warnings/checks
    "ENVIRONMENT": "security",  # "production" makes the security status fail closed
    "DEPLOYMENT_ENV": "server",
    "MCPGATEWAY_SKIP_MIGRATIONS": "server",
    "FILELOCK_NAME": "server",
    "LEGACY_API_SUNSET_DATE": "server",
    "LLM_API_PREFIX": "server",
    "MCPGATEWAY_CATALOG_FILE": "server",
    "MCPGATEWAY_BOOTSTRAP_ROLES_IN_DB_FILE": "server",
    "PLUGINS_CONFIG_FILE": "server",
    "PLUGINS_CONFIG_PATH": "server",
    "PLUGINS_TRANSPORT": "server",
    "PLUGINS_UNIX_SOCKET_PATH": "server",
    "PLUGINS_SERVER_HOST": "server",
    "PLUGINS_SERVER_PORT": "server",
    "PLUGINS_SERVER_UDS": "server",
    "PLUGINS_GRPC_SERVER_HOST": "server",
    "PLUGINS_GRPC_SERVER_PORT": "server",
    "PLUGINS_GRPC_SERVER_UDS": "server",
    "PLUGINS_CLI_COMPLETION": "server",
    "PLUGINS_CLI_MARKUP_MODE": "server",
    # security-relevant keys whose names say nothing about security
    "DEBUG": "security",  # leaks internals; the gateway warns when on outside dev mode
    "EXPOSE_ERROR_DETAILS": "security",
    "SANITIZE_OUTPUT": "security",
    "VALIDATION_STRICT": "security",
    "EXPERIMENTAL_VALIDATE_IO": "security",
    "VALIDATION_MIDDLEWARE_ENABLED": "security",
    "DANGEROUS_PATTERNS": "security",
    "ALLOWED_ROOTS": "security",
    "MASKED_AUTH_VALUE": "security",
    "MIN_SECRET_LENGTH": "security",
    "MIN_PASSWORD_LENGTH": "security",
    "REQUIRE_STRONG_SECRETS": "security",
    "ENABLE_HEADER_PASSTHROUGH": "security",
    "ENABLE_OVERWRITE_BASE_HEADERS": "security",
    "ENABLE_SENSITIVE_HEADER_PASSTHROUGH": "security",
    "DEFAULT_PASSTHROUGH_HEADERS": "security",
    "PASSTHROUGH_HEADERS_SOURCE": "security",
    "ROOT_ALLOW_FILE_SCHEME": "security",
    "ROOT_ALLOWED_SCHEMES": "security",
    "ROOT_ALLOWED_FILE_PREFIXES": "security",
    "GATEWAY_TOOL_NAME_SEPARATOR": "features",
    "STRICT_SCHEME_ENFORCEMENT": "security",
    "ALLOWED_MIME_TYPES": "security",
    "HEADER_SIZE_VALIDATION_ENABLED": "security",
    "JSON_SCHEMA_VALIDATION_STRICT": "security",
    "JQ_FILTER_EXECUTION": "security",  # sandbox choice for untrusted jq filters
    "PLUGINS_SKIP_SSL_VERIFY": "security",
    "PLUGINS_SSRF_PROTECTION_ENABLED": "security",
    "PLUGINS_DEFAULT_HOOK_POLICY": "security",
    "PLUGINS_FAIL_ON_PLUGIN_ERROR": "features",
    # database / cache backends
    "CACHE_TYPE": "database",
    "CACHE_PREFIX": "database",
    "USE_POSTGRESDB_PERCENTILES": "database",
    "PRIMARY_WORKER_ELECTION_BACKEND": "server",
    "PRIMARY_WORKER_REDIS_UNAVAILABLE_POLICY": "server",
    "PRIMARY_WORKER_REDIS_KEY": "server",
    "PRIMARY_WORKER_LOCK_PATH": "server",
    "DB_METRICS_RECORDING_ENABLED": "features",
    # observability output
    "ENABLE_METRICS": "logging",
    "DATAPLANE_PUBLISHER": "logging",
    "DATAPLANE_PUBLISHER_INTERVAL_SECONDS": "logging",
    "MCPGATEWAY_PERFORMANCE_TRACKING": "logging",
    "MCPGATEWAY_PERFORMANCE_DISTRIBUTED": "logging",
    "MCPGATEWAY_A2A_METRICS_ENABLED": "logging",
    "SESSION_TTL": "performance",
    "ALLOW_UNAUTHENTICATED_ADMIN": "security",
    "IBM_VERIFY_GROUP_MAPPING": "security",
    "OKTA_GROUP_MAPPING": "security",
    "MAX_INTERVAL": "performance",  # session message polling back-off ceiling
    "RETRY_MAX_DELAY": "performance",
    "RETRY_JITTER_MAX": "performance",
    "INVITATION_EXPIRY_DAYS": "limits",
    "MESSAGE_TTL": "performance",
}

# Ordered (category, regex on the env key); the first match wins. Applied after EXPLICIT_CATEGORY and
# after the credential rule (every sensitive key that is not a connection URL is security).
CATEGORY_RULES = [
    # logging / tracing / observability output (before DB_ and *_ENABLED)
    ("logging", r"^(LOG_|DB_QUERY_LOG_|OBSERVABILITY_|OTEL_|LANGFUSE_|STRUCTURED_LOGGING_|SECURITY_LOGGING_"
                r"|AUDIT_TRAIL_|PERMISSION_AUDIT_|CORRELATION_ID_|SIEM_|ELASTICSEARCH_|SYSLOG_|WEBHOOK_LOGGING_"
                r"|TOKEN_USAGE_LOGGING_|PLUGIN_METRICS_|CPEX_CONTROL_TELEMETRY_|METRICS_|PERFORMANCE_"
                r"|MCPGATEWAY_PERFORMANCE_|PLUGINS_LOG_LEVEL$|SECURITY_(FAILED_AUTH|THREAT|RATE_LIMIT_WINDOW))"),
    # database, Redis and connection pools
    ("database", r"^(DATABASE_|DB_|REDIS_|RATELIMITER_REDIS_)"),
    # in-process caches of any subsystem (auth, DCR metadata, Vault tokens, external identities): tuning
    ("performance", r"_CACHE_(ENABLED|TTL|MAX_SIZE|BATCH_QUERIES|TEAMS_ENABLED|TEAMS_TTL|[A-Z]+_TTL)$|_CACHE_TTL$"),
    # security: authn/authz, tokens, SSO/OAuth, CORS/CSRF/cookies/headers, TLS, SSRF, secrets, RBAC
    ("security", r"(^|_)(AUTH|JWT|SSO|OAUTH|DCR|CSRF|CORS|CSP|TLS|SSL|MTLS|SSRF|HSTS|SECRET|SECRETS|PASSWORD"
                 r"|ARGON2ID|RBAC|ROLE|ROLES|VAULT|ED25519|UAID|IDENTITY|INSECURE|TRUST|PROXY_USER)(_|$)"),
    ("security", r"^(ALLOWED_ORIGINS|MCP_ALLOWED_ORIGINS|MCP_ALLOWED_HOSTS|SECURE_COOKIES|COOKIE_SAMESITE"
                 r"|SECURITY_HEADERS_ENABLED|X_FRAME_OPTIONS|X_CONTENT_TYPE_OPTIONS_ENABLED|X_XSS_PROTECTION_ENABLED"
                 r"|X_DOWNLOAD_OPTIONS_ENABLED|REMOVE_SERVER_HEADERS|SKIP_SSL_VERIFY|EMAIL_AUTH_ENABLED"
                 r"|PUBLIC_REGISTRATION_ENABLED|ALLOW_PUBLIC_VISIBILITY|PROTECT_ALL_ADMINS|PLATFORM_ADMIN_"
                 r"|MAX_FAILED_LOGIN_ATTEMPTS|ACCOUNT_LOCKOUT_|FAILED_LOGIN_|REQUIRE_|EMBED_ENVIRONMENT_IN_TOKENS"
                 r"|VALIDATE_TOKEN_ENVIRONMENT|DERIVE_KEY_PER_ENVIRONMENT|TOKEN_EXPIRY|TOKEN_IDLE_TIMEOUT"
                 r"|TOKEN_BLOCKLIST_|SESSION_MAX_LIFETIME|SESSION_REFRESH_|SESSION_WARNING_|SESSION_ACTIVITY_"
                 r"|PLUGINS_CAN_OVERRIDE_|GATEWAY_TEST_ALLOW|CONTENT_BLOCKED_|CONTENT_PATTERN_(DETECTION|VALIDATION)"
                 r"|CONTENT_STRICT_MIME|CONTENT_VALIDATE_|CONTENT_ALLOWED_|TOOL_DESCRIPTION_FORBIDDEN_"
                 r"|ALLOW_TEAM_|DETECT_DEFAULT_PASSWORD|ADMIN_REQUIRE_|WELL_KNOWN_SECURITY_TXT)"),
    ("security", r"^VALIDATION_.*_(PATTERN|SCHEMES|MIME_TYPES)$"),
    # limits: timeouts, max sizes, rate limits, quotas
    ("limits", r"(TIMEOUT|_LIMIT|RATE_LIMIT|_RPM$|_BURST$|QUOTA|^MAX_|_MAX_|_MAX$|_MIN_|^MIN_|SIZE_BYTES"
               r"|_LENGTH$|_BYTES$|_RETRIES$|_HOPS$|SIZE_LIMIT|MAX_SIZE|_MAX_SIZE)"),
    # performance: intervals, TTLs, workers, batches, pools, caches, retention, tuning
    ("performance", r"(INTERVAL|_TTL|TTL_|WORKERS|BATCH|POOL|CACHE|BACKOFF|DELAY|JITTER|CONCURRENCY|CONCURRENT"
                    r"|RETENTION|THRESHOLD|PAGE_SIZE|COMPRESSION_|HTTPX_|_LEVEL$|_QUALITY$|EXPIRY|LEASE|_WAIT$"
                    r"|_FACTOR$|RETRY|_HOURS$|_DAYS$|_SECONDS$|_MINUTES$|_MS$|KEEPALIVE|ARGON2)"),
    # features: switches and toggles
    ("features", r"(_ENABLED$|^ENABLE_|_ENABLED_)"),
]
DEFAULT_CATEGORY = "features"

# --------------------------------------------------------------------------------------------------------
# Sensitive: every SecretStr field, plus string-valued fields (never bool/int/float/enum) whose name says
# they hold a credential: PASSWORD, SECRET, PRIVATE_KEY, API_KEY, CLIENT_SECRET, a key ending in _TOKEN
# (a credential, not TOKEN_EXPIRY/*_TOKEN_TTL/*_TOKEN_NAME...), *_AUTH / *_HEADERS of an exporter (may carry
# Authorization headers), and connection URLs that may embed a password: DATABASE_URL, REDIS_URL,
# *_REDIS_URL, *_DATABASE_URL. Paths to key files (*_PATH, *_KEYFILE) are not secrets themselves.
# --------------------------------------------------------------------------------------------------------
SENSITIVE_NAME = re.compile(
    r"(PASSWORD|SECRET(?!S)|PRIVATE_KEY|API_KEY|CLIENT_SECRET|_TOKEN$|^OTEL_EXPORTER_OTLP_HEADERS$|_OTEL_AUTH$"
    r"|^DATABASE_URL$|^REDIS_URL$|_REDIS_URL$|_DATABASE_URL$)"
)
NOT_SENSITIVE_NAME = re.compile(r"(_PATH$|_KEYFILE$|_FILE$|_CERTFILE$|_NAME$|_TTL$|_EXPIRY$)")
DSN_KEYS = re.compile(r"(^DATABASE_URL$|^REDIS_URL$|_REDIS_URL$|_DATABASE_URL$)")

# *_url string fields with a URL default get type url; these keep no scheme restriction.
NO_SCHEME_URLS = {"DATABASE_URL", "REDIS_URL"}

KEY_RE = re.compile(r"^[A-Z][A-Z0-9_]*$")
URL_DEFAULT_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://\S+$")
ENUM_PATTERN_RE = re.compile(r"^\^\(([A-Za-z0-9_|-]+)\)\$$")

# Defaults computed from where the gateway is installed are not portable (TEMPLATES_DIR, STATIC_DIR).
INSTALL_DIR = os.path.dirname(os.path.dirname(os.path.abspath(mcpgateway.__file__)))

NOTES: dict[str, list[str]] = {"dropped": [], "loose": [], "clash": [], "info": []}


def note(kind: str, text: str) -> None:
    NOTES[kind].append(text)


# --------------------------------------------------------------------------------------------------------
# Types
# --------------------------------------------------------------------------------------------------------
NONE_TYPE = type(None)


def strip_optional(tp):
    """Optional[X] / X | None -> (X, True); Annotated[X, ...] -> X plus its metadata."""
    meta = []
    optional = False
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            args = typing.get_args(tp)
            tp, meta = args[0], meta + list(args[1:])
            continue
        if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
            args = [a for a in typing.get_args(tp) if a is not NONE_TYPE]
            if len(args) != len(typing.get_args(tp)):
                optional = True
            if len(args) == 1:
                tp = args[0]
                continue
        return tp, optional, meta


def is_subclass(tp, cls) -> bool:
    return isinstance(tp, type) and issubclass(tp, cls)


def bounds(metadata):
    """Lower/upper bounds and string length bounds from annotated-types / pydantic metadata."""
    lo = hi = None
    lo_strict = hi_strict = False
    min_len = max_len = None
    pattern = None

    def tighter_lo(value, strict):
        nonlocal lo, lo_strict
        if lo is None or value > lo or (value == lo and strict):
            lo, lo_strict = value, strict

    def tighter_hi(value, strict):
        nonlocal hi, hi_strict
        if hi is None or value < hi or (value == hi and strict):
            hi, hi_strict = value, strict

    for m in metadata:
        for attr, fn, strict in (("ge", tighter_lo, False), ("gt", tighter_lo, True), ("le", tighter_hi, False), ("lt", tighter_hi, True)):
            v = getattr(m, attr, None)
            if v is not None and not isinstance(v, bool):
                fn(v, strict)
        v = getattr(m, "min_length", None)
        if v is not None:
            min_len = v if min_len is None else max(min_len, v)
        v = getattr(m, "max_length", None)
        if v is not None:
            max_len = v if max_len is None else min(max_len, v)
        v = getattr(m, "pattern", None)
        if v is not None:
            pattern = v
    return lo, lo_strict, hi, hi_strict, min_len, max_len, pattern


def type_spec(key: str, name: str, field, default_value):
    """Returns (spec fields for the type, was-the-type-loose reason or None)."""
    tp, _optional, inner_meta = strip_optional(field.annotation)
    metadata = list(field.metadata) + inner_meta
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    lo, lo_strict, hi, hi_strict, min_len, max_len, pattern = bounds(metadata)

    if tp is bool:
        return {"type": "bool"}, None
    if tp is int:
        out = {"type": "int"}
        if lo is not None:  # gt n -> min n+1
            out["min"] = math.floor(lo) + 1 if lo_strict else math.ceil(lo)
        if hi is not None:  # lt n -> max n-1
            out["max"] = math.ceil(hi) - 1 if hi_strict else math.floor(hi)
        return out, None
    if tp is float:
        out = {"type": "float"}
        if lo is not None:
            out["min"] = float(lo)
            if lo_strict:
                note("loose", f"{key}: float with exclusive lower bound gt={lo}; catalog min={float(lo)} is inclusive")
        if hi is not None:
            out["max"] = float(hi)
            if hi_strict:
                note("loose", f"{key}: float with exclusive upper bound lt={hi}; catalog max={float(hi)} is inclusive")
        return out, None
    if origin is typing.Literal:
        return {"type": "enum", "values": [str(a) for a in args]}, None
    if is_subclass(tp, Enum):
        return {"type": "enum", "values": [str(m.value) for m in tp]}, None
    if is_subclass(tp, AnyUrl):
        allowed = getattr(getattr(tp, "_constraints", None), "allowed_schemes", None)
        out = {"type": "url"}
        if allowed:
            out["schemes"] = sorted(allowed)
        return out, None
    if origin in (list, set, frozenset, tuple) or tp in (list, set, frozenset):
        item = args[0] if args else str
        item, _, _ = strip_optional(item)
        if item is str or is_subclass(item, AnyUrl):
            return {"type": "list"}, None
        if typing.get_origin(item) is typing.Literal:
            return {"type": "list", "values": [str(a) for a in typing.get_args(item)]}, None
        return {"type": "json"}, f"{typing.get_origin(tp).__name__ if typing.get_origin(tp) else tp}[{item}] has structured items"
    if origin is dict or tp is dict:
        return {"type": "json"}, "a mapping (dict); stored as a JSON object"
    if tp is str or is_subclass(tp, SecretStr) or is_subclass(tp, PurePath):
        # *_url strings whose default is a URL are urls
        if tp is str and name.endswith("_url") and isinstance(default_value, str) and URL_DEFAULT_RE.match(default_value):
            out = {"type": "url"}
            if key not in NO_SCHEME_URLS:
                out["schemes"] = [default_value.split("://", 1)[0]]
            return out, None
        if pattern is not None:
            m = ENUM_PATTERN_RE.match(pattern)
            if m:
                return {"type": "enum", "values": m.group(1).split("|")}, None
        out = {"type": "string"}
        if min_len is not None:
            out["min_len"] = int(min_len)
        if max_len is not None:
            out["max_len"] = int(max_len)
        reason = None
        if pattern is not None:
            reason = f"string with regex pattern {pattern!r} that the catalog cannot express"
        elif is_subclass(tp, PurePath):
            reason = "a filesystem path (Path) kept as a string"
        return out, reason
    return {"type": "json"}, f"unrecognised annotation {field.annotation!r}"


# --------------------------------------------------------------------------------------------------------
# Defaults
# --------------------------------------------------------------------------------------------------------
def raw_default(field):
    if field.default_factory is not None:
        try:
            return field.get_default(call_default_factory=True, validated_data={})
        except TypeError:
            return field.default_factory()  # type: ignore[misc]
    if field.default is PydanticUndefined:
        return None
    return field.default


def canonical(value, ty: str):
    """The default in canonical JSON for its catalog type; raises ValueError when it cannot be expressed."""
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if isinstance(value, Enum):
        value = value.value
    if ty == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"not a bool: {value!r}")
        return value
    if ty == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"not an int: {value!r}")
        return value
    if ty == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"not a number: {value!r}")
        return float(value)
    if ty in ("string", "enum", "url"):
        if isinstance(value, (AnyUrl, PurePath)):
            value = str(value)
        if not isinstance(value, str):
            raise ValueError(f"not a string: {value!r}")
        return value
    if ty == "list":
        if isinstance(value, (set, frozenset)):
            items = sorted(str(v) for v in value)
        elif isinstance(value, (list, tuple)):
            items = [str(v) for v in value]
        else:
            raise ValueError(f"not a list: {value!r}")
        return items
    if ty == "json":
        return json.loads(json.dumps(value, sort_keys=True, default=str))
    raise ValueError(f"unknown type {ty}")


def url_scheme(s: str):
    """Mirror of cfgledger's value::url_scheme: scheme://rest, letter-first scheme, no white space."""
    if "://" not in s:
        return None
    scheme, rest = s.split("://", 1)
    ok_scheme = bool(scheme) and scheme[0].isascii() and scheme[0].isalpha() and all(
        (c.isascii() and c.isalnum()) or c in "+-." for c in scheme
    )
    ok_rest = bool(rest) and not any(c.isspace() for c in s)
    return scheme if ok_scheme and ok_rest else None


def value_problems(spec: dict, value) -> list[str]:
    """Why `value` does not fit `spec` (type, constraints and secret rules); empty when it fits."""
    ty = spec["type"]
    p = []
    if ty == "bool":
        if not isinstance(value, bool):
            p.append("not a boolean")
    elif ty in ("int", "float"):
        kinds, what = (int, "an integer") if ty == "int" else ((int, float), "a number")
        if isinstance(value, bool) or not isinstance(value, kinds):
            p.append(f"not {what}")
        else:
            if "min" in spec and value < spec["min"]:
                p.append(f"{value} < min {spec['min']}")
            if "max" in spec and value > spec["max"]:
                p.append(f"{value} > max {spec['max']}")
    elif ty == "enum":
        if value not in spec["values"]:
            p.append(f"{value!r} is not one of {spec['values']}")
    elif ty == "url":
        if not isinstance(value, str) or value != value.strip():
            p.append("not a trimmed string")
        else:
            scheme = url_scheme(value)
            if scheme is None:
                p.append(f"{value!r} is not scheme://...")
            elif spec.get("schemes") and scheme.lower() not in [s.lower() for s in spec["schemes"]]:
                p.append(f"scheme {scheme!r} not in {spec['schemes']}")
    elif ty == "list":
        if not isinstance(value, list) or not all(isinstance(i, str) for i in value):
            p.append("not an array of strings")
        else:
            if spec.get("values") and not all(i in spec["values"] for i in value):
                p.append(f"items outside {spec['values']}")
            if any("," in i for i in value):
                # cfgledger renders lists comma-separated; an item with a comma would not round-trip
                p.append("an item contains a comma")
    elif ty == "string":
        if not isinstance(value, str):
            p.append("not a string")
        else:
            n = len(value)
            if "min_len" in spec and n < spec["min_len"]:
                p.append(f"length {n} < min_len {spec['min_len']}")
            if "max_len" in spec and n > spec["max_len"]:
                p.append(f"length {n} > max_len {spec['max_len']}")
            low = value.lower()
            if any(low.startswith(x.lower()) for x in spec.get("reject_prefixes", [])):
                p.append("starts with a rejected placeholder prefix")
            if low in [x.lower() for x in spec.get("reject_values", [])]:
                p.append("is a known-weak value")
            if "min_entropy" in spec and SC.calculate_entropy(value) < spec["min_entropy"]:
                p.append(f"entropy {SC.calculate_entropy(value):.2f} < {spec['min_entropy']}")
    elif ty == "json":
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            p.append("not JSON-serialisable")
    else:
        p.append(f"unknown type {ty}")
    return p


# --------------------------------------------------------------------------------------------------------
# Keys, descriptions, categories
# --------------------------------------------------------------------------------------------------------
def env_names(name: str, field, prefix: str):
    """(key, aliases): the env name pydantic-settings reads (aliases are not prefixed)."""
    alias = field.validation_alias or field.alias
    if alias is None:
        return (prefix + name).upper(), []
    if isinstance(alias, str):
        return alias.upper(), []
    if isinstance(alias, AliasChoices):
        names = [c.upper() for c in alias.choices if isinstance(c, str)]
        if any(isinstance(c, AliasPath) for c in alias.choices):
            note("loose", f"{name}: AliasPath choices ignored")
        return names[0], [n for n in names[1:] if n != names[0]]
    raise SystemExit(f"{name}: unsupported alias {alias!r}")


ACRONYMS = {
    "api", "jwt", "sso", "url", "urls", "ui", "cors", "csrf", "hsts", "ssl", "tls", "mtls", "ttl", "id", "jti", "db",
    "http", "https", "sse", "ws", "mcp", "llm", "a2a", "grpc", "smtp", "otel", "siem", "ssrf", "uaid", "dcr", "mb",
    "ms", "uri", "ip", "json", "rpc", "xss", "ca", "uds", "cli", "jq",
}
_SKIP_COMMENT = re.compile(r"^(nosec|pragma|noqa|type:|fmt:)", re.I)


def field_comments(model) -> dict[str, str]:
    """Same-line comments of a model's field declarations (``x: int = 3  # seconds``), by field name."""
    import ast
    import inspect
    import io
    import tokenize

    path = inspect.getsourcefile(model)
    with open(path, encoding="utf-8") as f:
        src = f.read()
    comments = {}
    for tok in tokenize.generate_tokens(io.StringIO(src).readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = tok.string.lstrip("#").strip()
    out = {}
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, ast.ClassDef) and node.name == model.__name__:
            for stmt in node.body:
                if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.lineno == stmt.end_lineno:
                    c = comments.get(stmt.lineno, "")
                    if c and not _SKIP_COMMENT.match(c):
                        out[stmt.target.id] = c
    return out


def describe(key: str, name: str, field, comments: dict[str, str]) -> str:
    """The field's description; else a sentence from the field name, with its same-line source comment."""
    text = " ".join((field.description or "").split())
    if text:
        return text
    comment = " ".join(comments.get(name, "").split()).rstrip(".")
    words = ["MCP Gateway" if w == "mcpgateway" else w.upper() if w in ACRONYMS else w for w in name.lower().split("_") if w]
    phrase = " ".join(words)
    phrase = phrase[0].upper() + phrase[1:]
    return f"{phrase} ({comment})." if comment else f"{phrase}."


def categorize(key: str, sensitive: bool) -> str:
    if key in EXPLICIT_CATEGORY:
        return EXPLICIT_CATEGORY[key]
    if sensitive and not DSN_KEYS.search(key):
        return "security"  # credentials are security whatever subsystem uses them
    for category, rx in CATEGORY_RULES:
        if re.search(rx, key):
            return category
    return DEFAULT_CATEGORY


def is_sensitive(key: str, field, ty: str) -> bool:
    tp, _, _ = strip_optional(field.annotation)
    if is_subclass(tp, SecretStr):
        return True
    if ty not in ("string", "url", "json", "list"):
        return False
    return bool(SENSITIVE_NAME.search(key)) and not NOT_SENSITIVE_NAME.search(key)


# --------------------------------------------------------------------------------------------------------
# Build
# --------------------------------------------------------------------------------------------------------
def build_specs(model, prefix: str, source: str) -> list[dict]:
    specs = []
    comments = field_comments(model)
    for name, field in model.model_fields.items():
        key, aliases = env_names(name, field, prefix)
        default_value = raw_default(field)
        plain_default = default_value.get_secret_value() if isinstance(default_value, SecretStr) else default_value
        ty_fields, loose = type_spec(key, name, field, plain_default)
        ty = ty_fields["type"]
        if loose:
            note("loose", f"{key}: {ty} ({loose})")
        sensitive = is_sensitive(key, field, ty)

        spec: dict = {"key": key}
        spec.update(ty_fields)
        if key in STRONG_SECRETS:
            spec["min_len"] = SC.MIN_SECRET_LENGTH
            spec["min_entropy"] = float(SC.MIN_ENTROPY)
            spec["reject_prefixes"] = list(PLACEHOLDER_PREFIXES)
            spec["reject_values"] = list(Settings.WEAK_VALUES)
        elif key in EMAIL_PASSWORDS:
            spec["min_len"] = Settings.model_fields["password_min_length_user"].default
            spec["reject_prefixes"] = list(PLACEHOLDER_PREFIXES)
            spec["reject_values"] = list(Settings.WEAK_VALUES)
        elif key in GATED_PASSWORDS:
            spec["reject_prefixes"] = list(PLACEHOLDER_PREFIXES)

        # default
        default = None
        if default_value is not None:
            try:
                default = canonical(default_value, ty)
            except ValueError as e:
                note("dropped", f"{key}: default cannot be expressed as {ty}: {e}")
                default = None
        if default is not None:
            if isinstance(default_value, PurePath) or (isinstance(default, str) and INSTALL_DIR in default):
                note("dropped", f"{key}: default is an absolute path of this machine ({source} computes it from the install location)")
                default = None
            elif isinstance(default, str) and default.lower().startswith(tuple(PLACEHOLDER_PREFIXES)):
                note("dropped", f"{key}: default is a placeholder the gateway refuses")
                default = None
        if default is not None:
            problems = value_problems(spec, default)
            if problems:
                note("dropped", f"{key}: default {default!r} violates its own constraints: {'; '.join(problems)}")
                default = None
        if default is not None:
            spec["default"] = default

        category = categorize(key, sensitive)
        reload, locked = CATEGORY_MODE[category]
        spec["category"] = category
        spec["reload"] = reload
        spec["locked"] = locked
        spec["sensitive"] = sensitive
        spec["description"] = describe(key, name, field, comments)
        if aliases:
            spec["aliases"] = aliases
        spec["generate"] = key in GENERATED
        specs.append(spec)
    return specs


def loose_validators():
    """String/list fields the gateway restricts further in field validators than their annotation says."""
    out = []
    for dec in Settings.__pydantic_decorators__.field_validators.values():
        for f in dec.info.fields:
            out.append((f, dec.cls_var_name))
    return out


def build() -> dict:
    version = getattr(mcpgateway, "__version__", None)
    try:
        from importlib.metadata import version as dist_version

        version = dist_version("mcp-contextforge-gateway")
    except Exception:  # pragma: no cover
        pass
    if version != EXPECTED_VERSION:
        note("info", f"installed gateway is {version}, expected {EXPECTED_VERSION}")

    gateway = build_specs(Settings, "", "mcpgateway.config")
    plugins = build_specs(PluginsSettings, "PLUGINS_", "cpex.framework.settings")

    seen = {}
    for s in gateway:
        if s["key"] in seen:
            raise SystemExit(f"key clash inside the gateway's Settings: {s['key']}")
        seen[s["key"]] = "gateway"
    kept_plugins = []
    for s in plugins:
        if s["key"] in seen:
            note("clash", f"{s['key']}: plugin framework key clashes with the gateway's; the gateway's is kept")
            continue
        seen[s["key"]] = "plugins"
        kept_plugins.append(s)
    settings = gateway + kept_plugins
    for s in settings:
        for a in s.get("aliases", []):
            if a in seen:
                note("clash", f"{s['key']}: alias {a} is also a key of its own ({a}); setting {a} sets both")

    # fields whose values the gateway restricts beyond the catalog type
    by_key = {s["key"]: s for s in gateway}
    validators: dict[str, list[str]] = {}
    for fname, validator in loose_validators():
        field = Settings.model_fields.get(fname)
        if field is None:
            continue
        key, _ = env_names(fname, field, "")
        s = by_key.get(key)
        if s and s["type"] in ("string", "list", "url", "json") and validator not in ("validate_secrets",):
            validators.setdefault(key, []).append(validator + "()")
    for key, names in validators.items():
        note("loose", f"{key}: {by_key[key]['type']}; the gateway's validator(s) {', '.join(names)} parse, restrict or normalise values beyond that")
    for s in settings:
        if s["type"] == "string" and isinstance(s.get("default"), str) and s["default"][:1] in "[{":
            try:
                json.loads(s["default"])
                note("loose", f"{s['key']}: string holding a JSON document (default {s['default']!r}); kept as string because the gateway parses it itself")
            except ValueError:
                pass
        if s["type"] == "string" and s["key"].endswith("_URL"):
            note("loose", f"{s['key']}: a URL string without a URL default; kept as string (may be unset/empty)")

    return {
        "namespace": NAMESPACE,
        "application": APPLICATION,
        "version": EXPECTED_VERSION,
        "mode": "replace",
        "settings": settings,
    }


def render(doc: dict) -> str:
    return json.dumps(doc, indent=1, ensure_ascii=False) + "\n"


# --------------------------------------------------------------------------------------------------------
# Self-check
# --------------------------------------------------------------------------------------------------------
KNOWN_TYPES = {"string", "int", "float", "bool", "enum", "url", "list", "json"}
ALLOWED_FIELDS = {
    "key", "type", "min", "max", "min_len", "max_len", "min_entropy", "reject_prefixes", "reject_values",
    "values", "schemes", "default", "category", "reload", "locked", "sensitive", "description", "aliases",
    "generate",
}


def check(doc: dict) -> list[str]:
    errors = []
    for k in ("namespace", "application", "version", "mode", "settings"):
        if k not in doc:
            errors.append(f"top level: missing {k}")
    if doc.get("mode") not in ("replace", "extend"):
        errors.append(f"top level: mode {doc.get('mode')!r}")
    keys = set()
    for s in doc.get("settings", []):
        key = s.get("key", "")
        e = lambda msg: errors.append(f"{key}: {msg}")  # noqa: E731
        extra = set(s) - ALLOWED_FIELDS
        if extra:
            e(f"unknown fields {sorted(extra)}")
        if not KEY_RE.match(key):
            e("key syntax")
        if key in keys:
            e("declared twice")
        keys.add(key)
        ty = s.get("type")
        if ty not in KNOWN_TYPES:
            e(f"unknown type {ty!r}")
            continue
        if "min" in s and "max" in s and s["min"] > s["max"]:
            e("min > max")
        if "min_len" in s and "max_len" in s and s["min_len"] > s["max_len"]:
            e("min_len > max_len")
        if ty == "int" and any(isinstance(s.get(b), bool) or (b in s and not isinstance(s[b], int)) for b in ("min", "max")):
            e("int bounds must be integers")
        if ty == "enum" and not s.get("values"):
            e("enum without values")
        if ty in ("enum", "list") and "values" in s and len(set(s["values"])) != len(s["values"]):
            e("duplicate values")
        cat = s.get("category")
        if cat not in CATEGORY_MODE:
            e(f"unknown category {cat!r}")
        elif (s.get("reload"), s.get("locked")) != CATEGORY_MODE[cat]:
            e(f"reload/locked {s.get('reload')}/{s.get('locked')} do not follow category {cat}")
        if not isinstance(s.get("sensitive"), bool) or not isinstance(s.get("generate"), bool):
            e("sensitive/generate must be booleans")
        if s.get("generate") and not (s.get("sensitive") and s.get("locked")):
            e("a generated key must be sensitive and locked")
        if not str(s.get("description", "")).strip():
            e("empty description")
        if "aliases" in s and (not s["aliases"] or not all(KEY_RE.match(a) for a in s["aliases"]) or key in s["aliases"]):
            e("bad aliases")
        if "default" in s:
            for problem in value_problems(s, s["default"]):
                e(f"default: {problem}")
            if isinstance(s["default"], str) and s["default"].lower().startswith(tuple(PLACEHOLDER_PREFIXES)):
                e("default is a placeholder")
    return errors


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--check":
        if len(argv) > 1 and argv[1] != "-":
            with open(argv[1], encoding="utf-8") as f:
                text = f.read()
        elif len(argv) > 1 or not sys.stdin.isatty():
            text = sys.stdin.read()
        else:
            text = ""
        if not text.strip():
            text = render(build())
        doc = json.loads(text)
        errors = check(doc)
        fresh = render(build())
        if text != fresh:
            errors.append("the checked catalog differs from a fresh generation (regenerate it)")
        for err in errors:
            print(f"check: {err}", file=sys.stderr)
        print(f"check: {len(doc.get('settings', []))} settings, {len(errors)} problem(s)", file=sys.stderr)
        return 1 if errors else 0
    if argv:
        print(f"usage: {sys.argv[0]} [--check [FILE|-]]", file=sys.stderr)
        return 2

    doc = build()
    errors = check(doc)
    if errors:
        for err in errors:
            print(f"error: {err}", file=sys.stderr)
        return 1
    sys.stdout.write(render(doc))

    settings = doc["settings"]
    counts: dict[str, int] = {}
    for s in settings:
        counts[s["category"]] = counts.get(s["category"], 0) + 1
    print(f"settings: {len(settings)} (gateway {len(Settings.model_fields)}, plugins {len(PluginsSettings.model_fields)})", file=sys.stderr)
    for cat in CATEGORY_MODE:
        print(f"  {cat}: {counts.get(cat, 0)}", file=sys.stderr)
    print(f"sensitive: {sum(1 for s in settings if s['sensitive'])}", file=sys.stderr)
    for kind, title in (("clash", "clashes"), ("dropped", "dropped defaults"), ("loose", "loosely typed"), ("info", "info")):
        if NOTES[kind]:
            print(f"{title}:", file=sys.stderr)
            for line in NOTES[kind]:
                print(f"  {line}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
