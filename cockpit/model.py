"""Cockpit's domain model: plain dataclasses and the validation of every name.

Every value that may end up in a template, a command or a query is checked here,
against a whitelist, before anything is stored. An instance of one of these classes is
always valid: the checks run in ``__post_init__`` and normalise where the form is
unambiguous (a domain's case, an IDN's A-label).

One error type, :class:`ValidationError`, carries the field and the reason.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import ipaddress
import posixpath
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlsplit

__all__ = [
    "Backup",
    "BackupReason",
    "Client",
    "DbEngine",
    "Environment",
    "Health",
    "HttpsMode",
    "Platform",
    "PlatformType",
    "Server",
    "ServerHealth",
    "Service",
    "ServiceKind",
    "Site",
    "SiteStatus",
    "ValidationError",
    "derive_db_name",
    "derive_db_user",
    "derive_unix_user",
    "validate_address",
    "validate_db_identifier",
    "validate_domain",
    "validate_email",
    "validate_environment",
    "validate_hostname",
    "validate_name",
    "validate_path",
    "validate_port",
    "validate_type_name",
    "validate_unix_name",
    "validate_url",
]


class ValidationError(ValueError):
    """A value failed validation. ``field`` names what was checked, ``reason`` why.

    The message is safe to print anywhere: ``field`` (which may embed a rejected
    mapping key) and ``reason`` have their non-printable characters escaped, and the
    rejected value is shown escaped to printable ASCII and cut short.
    """

    def __init__(self, field: str, reason: str, value: object = None) -> None:
        self.field = _printable(str(field))
        self.reason = _printable(str(reason))
        self.value = value
        shown = "" if value is None else f" (got {_show(value)})"
        super().__init__(f"{self.field}: {self.reason}{shown}")


def _printable(text: str) -> str:
    """``text`` with every non-printable character (controls, format characters such as
    bidi overrides and zero-width joiners, separators other than space) escaped."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode() for ch in text)


def _show(value: object, limit: int = 60) -> str:
    """A short rendering of a rejected value, escaped to printable ASCII."""
    if isinstance(value, str):
        text = value
    else:
        try:
            text = repr(value)
        except Exception:
            text = f"<{type(value).__name__}>"
    shown = text[: limit + 1].encode("unicode_escape").decode("ascii")
    if len(shown) > limit:
        shown = shown[: limit - 3] + "..."
    return f"'{shown}'" if isinstance(value, str) else shown


# ---------------------------------------------------------------------------
# Enumerations
# ---------------------------------------------------------------------------


class _StrEnum(enum.StrEnum):
    @classmethod
    def parse(cls, value: object, field: str) -> Any:
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            try:
                return cls(value)
            except ValueError:
                pass
        valid = ", ".join(m.value for m in cls)
        raise ValidationError(field, f"must be one of {valid}", value)


class ServiceKind(_StrEnum):
    HTTP = "http"
    DB = "db"
    DNS = "dns"
    BACKUP = "backup"


#: The service types Cockpit knows of, by kind. Plugins may register more types of
#: these kinds; a type name must still be a plain lowercase word.
KNOWN_SERVICE_TYPES: Final[Mapping[ServiceKind, frozenset[str]]] = {
    ServiceKind.HTTP: frozenset({"nginx", "apache"}),
    ServiceKind.DB: frozenset({"mysql", "pgsql"}),
    ServiceKind.DNS: frozenset({"bind"}),
    ServiceKind.BACKUP: frozenset({"tar", "restic"}),
}


class DbEngine(_StrEnum):
    MYSQL = "mysql"  # MariaDB and MySQL
    PGSQL = "pgsql"


class PlatformType(_StrEnum):
    STATIC = "static"
    PHP = "php"
    WORDPRESS = "wordpress"
    DRUPAL = "drupal"


class HttpsMode(_StrEnum):
    OFF = "off"
    ON = "on"
    REQUIRED = "required"


class SiteStatus(_StrEnum):
    ENABLED = "enabled"
    DISABLED = "disabled"
    DELETED = "deleted"


class Transport(_StrEnum):
    SSH = "ssh"
    LOCAL = "local"


# ---------------------------------------------------------------------------
# Validators of single values
# ---------------------------------------------------------------------------

_NAME_RE: Final = re.compile(r"[a-z0-9](?:[a-z0-9._-]{0,62})")
_LABEL_RE: Final = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_UNIX_RE: Final = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
_PATH_RE: Final = re.compile(r"/(?:[A-Za-z0-9._@+-]+(?:/[A-Za-z0-9._@+-]+)*)?")
#: URL parts: RFC 3986 unreserved characters, '%' escapes and the few delimiters a
#: config or a shell does not trip on (no quotes, '*', '!', '(', ')', ';', '$').
_URL_PATH_RE: Final = re.compile(r"[A-Za-z0-9._~@:+,=/%-]*")
_URL_QUERY_RE: Final = re.compile(r"[A-Za-z0-9._~@:+,=/%&?-]*")
_URL_NETLOC_RE: Final = re.compile(r"(\[[^\[\]]*\]|[^\[\]:]*)(?::([0-9]{1,5}))?")
_PERCENT_RE: Final = re.compile(r"%([0-9A-Fa-f]{2})?")
_EMAIL_LOCAL_RE: Final = re.compile(r"[A-Za-z0-9_+][A-Za-z0-9_+-]*(?:\.[A-Za-z0-9_+-]+)*")
_SETTING_KEY_RE: Final = re.compile(r"[a-z][a-z0-9_]{0,63}")
_SETTING_VALUE_RE: Final = re.compile(
    r"(?:[A-Za-z0-9._:/@+,=%~-](?:[A-Za-z0-9._:/@+,=%~ -]*[A-Za-z0-9._:/@+,=%~-])?)?"
)
_SECRET_KEY_RE: Final = re.compile(
    r"pass|secret|token|private|credential|apikey|api_key"
    r"|(?:^|_)(?:pw|pwd|auth|salt|dsn|cookie|jwt|otp|hmac)(?:_|$)|(?:^|_)keys?$"
)
_TYPE_RE: Final = re.compile(r"[a-z][a-z0-9_]{0,31}")
_IPV6_SCOPE_RE: Final = re.compile(r"[A-Za-z0-9_.-]{1,15}")
#: Forms the C resolver reads as an IPv4 address (``inet_aton``: 1-4 parts, each
#: decimal, octal or ``0x`` hex) although they are not dotted quads.
_NUMERIC_HOST_RE: Final = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+)){0,3}")

#: Longest input looked at: no valid value comes near, and nothing longer reaches idna.
_MAX_HOST_INPUT: Final = 1024
_MAX_PATH: Final = 4095
_MAX_PATH_PART: Final = 255
_MAX_URL: Final = 4096

#: Scripts that may share a label (Japanese, Chinese and Korean writing mix them by design).
_SCRIPT_FAMILIES: Final = (
    frozenset({"CJK", "HIRAGANA", "KATAKANA"}),
    frozenset({"CJK", "BOPOMOFO"}),
    frozenset({"CJK", "HANGUL"}),
)
#: Characters named after a script other than their own (Unicode Script=Common or
#: Han marks used inside Japanese words), by the first word of their name.
_SCRIPT_ALIASES: Final[Mapping[str, str]] = {
    "KATAKANA-HIRAGANA": "KATAKANA",  # ー, the prolonged sound mark
    "IDEOGRAPHIC": "CJK",  # 々 and 〆
    "VERTICAL": "CJK",  # 〻
}
#: Cyrillic, Greek and Armenian letters that look like lowercase Latin ones (the Cyrillic
#: set is Chromium's whole-script spoof list); a label made only of these reads as a Latin
#: word it is not ("аррӏе" is not "apple"). U-labels are lowercase, so no capitals here.
_LATIN_LOOKALIKES: Final = frozenset(
    "аысԁеԍһіюјӏорԛѕԝхуъьҽпгѵѡү"  # Cyrillic
    "αεικνορτυχγωϲϳ"  # Greek
    "օոսհցզ"  # Armenian
)
_LOOKALIKE_SCRIPTS: Final = frozenset({"CYRILLIC", "GREEK", "ARMENIAN"})


def _require_str(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise ValidationError(field, "must be a string", value)
    if not value:
        raise ValidationError(field, "must not be empty")
    if "\x00" in value:
        raise ValidationError(field, "must not contain NUL", value)
    return value


def validate_name(value: object, field: str = "name") -> str:
    """An entity name (server, platform, client): lowercase letters, digits, ``.-_``."""
    text = _require_str(value, field)
    if not _NAME_RE.fullmatch(text):
        raise ValidationError(
            field,
            "must be 1-63 characters of a-z, 0-9, '.', '_', '-' starting with a letter or digit",
            value,
        )
    return text


def _script(ch: str) -> str | None:
    if ch.isascii():
        return "LATIN" if ch.isalpha() else None
    if not ch.isalpha():
        return None
    name = unicodedata.name(ch, "")
    if not name:
        return "UNKNOWN"
    first = name.split(" ", 1)[0]
    return _SCRIPT_ALIASES.get(first, first)


def _confusable(ulabel: str) -> str | None:
    """Why a U-label could pass for another name, or None."""
    scripts = {s for s in map(_script, ulabel) if s is not None}
    if len(scripts) > 1 and not any(scripts <= family for family in _SCRIPT_FAMILIES):
        return f"label {ulabel!r} mixes scripts ({', '.join(sorted(scripts))})"
    if scripts & _LOOKALIKE_SCRIPTS and all(
        ch in _LATIN_LOOKALIKES for ch in ulabel if ch.isalpha()
    ):
        return f"label {ulabel!r} is made only of letters that imitate Latin ones"
    return None


def _to_ascii(text: str, field: str, value: object) -> str:
    """The A-label form of an internationalised name written in its plain form.

    UTS #46 maps many characters silently (fullwidth "ｅ" to "e", "。" to ".", "ﬁ" to
    "fi", the Hangul filler to nothing); a name that only becomes valid that way is
    refused rather than rewritten. Case and NFC composition are the only changes allowed.
    """
    import idna  # loaded with the first internationalised name, not with the model

    try:
        mapped = idna.uts46_remap(text, std3_rules=True, transitional=False)
    except (idna.IDNAError, UnicodeError, ValueError) as exc:
        raise ValidationError(
            field, f"is not a valid internationalised name: {exc}", value
        ) from None
    if mapped != unicodedata.normalize("NFC", text.lower()):
        raise ValidationError(
            field,
            "must be written plainly, without fullwidth, compatibility or ignorable characters",
            value,
        )
    try:
        return idna.encode(mapped, uts46=False).decode("ascii")
    except (idna.IDNAError, UnicodeError, ValueError) as exc:
        raise ValidationError(
            field, f"is not a valid internationalised name: {exc}", value
        ) from None


@functools.lru_cache(maxsize=4096)
def _alabel_problem(label: str) -> str | None:
    """Why an ``xn--`` label is refused, or None: it must be the canonical encoding of a
    valid U-label that does not imitate another name. Cached: the idna checks are slow
    and the same labels (``xn--p1ai``) come up again and again in an inventory."""
    import idna

    try:
        ulabel = idna.decode(label)
        canonical = idna.alabel(ulabel).decode("ascii")
    except (idna.IDNAError, UnicodeError, ValueError) as exc:
        return f"label {label!r} is not valid punycode: {exc}"
    if canonical != label:
        return f"label {label!r} is not a canonical A-label"
    return _confusable(ulabel)


#: The common case, a plain lowercase LDH name with no ``??--`` label, checked in one
#: match; anything else takes the full path below (which accepts a superset).
_FAST_HOST_RE: Final = re.compile(
    r"(?![a-z0-9-]{2}--)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
    r"(?:\.(?![a-z0-9-]{2}--)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*"
)


def validate_hostname(value: object, field: str = "hostname", *, min_labels: int = 1) -> str:
    """A DNS host name (RFC 1123), returned in its ASCII (A-label) lowercase form.

    Internationalised names go through IDNA 2008 (UTS #46 may only change the case); a
    label that mixes scripts or only imitates Latin letters is refused. No trailing dot,
    no whitespace, no underscore; labels 1-63 octets, the whole at most 253; nothing the
    C resolver would read as an IPv4 address (``127.1``, ``0x7f000001``).
    """
    if (
        type(value) is str
        and len(value) <= 253
        and _FAST_HOST_RE.fullmatch(value)
        and value.count(".") + 1 >= min_labels
        and not value.rpartition(".")[2].isdigit()
        and not _NUMERIC_HOST_RE.fullmatch(value)
    ):
        return value
    return _validate_hostname_full(value, field, min_labels=min_labels)


def _validate_hostname_full(value: object, field: str, *, min_labels: int) -> str:
    text = _require_str(value, field)
    if len(text) > _MAX_HOST_INPUT:
        raise ValidationError(field, "must be at most 253 characters", value)
    if any(ch.isspace() for ch in text):
        raise ValidationError(field, "must not contain whitespace", value)
    if text.endswith("."):
        raise ValidationError(field, "must not end with a dot", value)
    if not text.isprintable():
        raise ValidationError(field, "must not contain control or format characters", value)
    ascii_name = text.lower() if text.isascii() else _to_ascii(text, field, value)
    if len(ascii_name) > 253:
        raise ValidationError(field, "must be at most 253 characters", value)
    labels = ascii_name.split(".")
    if len(labels) < min_labels:
        raise ValidationError(field, f"must have at least {min_labels} labels", value)
    for label in labels:
        if not label:
            raise ValidationError(field, "must not contain an empty label", value)
        if not _LABEL_RE.fullmatch(label):
            raise ValidationError(
                field,
                f"label {label!r} must be 1-63 of a-z, 0-9 and '-', not starting or ending with '-'",
                value,
            )
        if label.startswith("xn--"):
            problem = _alabel_problem(label)
            if problem:
                raise ValidationError(field, problem, value)
        elif label[2:4] == "--":
            raise ValidationError(field, f"label {label!r} uses a reserved '??--' prefix", value)
    if labels[-1].isdigit() or _NUMERIC_HOST_RE.fullmatch(ascii_name):
        raise ValidationError(field, "must not look like a numeric address", value)
    return ascii_name


def validate_domain(value: object, field: str = "domain", *, wildcard: bool = False) -> str:
    """A site's domain: a host name of at least two labels (``*.`` first with ``wildcard``)."""
    text = _require_str(value, field)
    if wildcard and text.startswith("*."):
        return "*." + validate_hostname(text[2:], field, min_labels=2)
    return validate_hostname(text, field, min_labels=2)


def validate_address(value: object, field: str = "address") -> str:
    """A server address: an IPv4/IPv6 address (an IPv6 scope only as an interface name)
    or a host name."""
    text = _require_str(value, field)
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return validate_hostname(text, field)
    scope = getattr(address, "scope_id", None)
    if scope is not None and not _IPV6_SCOPE_RE.fullmatch(scope):
        raise ValidationError(field, "has an IPv6 scope that is not an interface name", value)
    return str(address)


def validate_port(value: object, field: str = "port") -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 5:
            value = int(value)
        else:
            raise ValidationError(field, "must be a whole number", value)
    if not 1 <= value <= 65535:
        raise ValidationError(field, "must be between 1 and 65535", value)
    return value


def validate_unix_name(value: object, field: str = "user") -> str:
    """A Unix user or group name: ``[a-z_][a-z0-9_-]*``, at most 32 characters."""
    text = _require_str(value, field)
    if not _UNIX_RE.fullmatch(text):
        raise ValidationError(
            field, "must be 1-32 of a-z, 0-9, '_', '-' starting with a letter or '_'", value
        )
    return text


def validate_path(value: object, field: str = "path", *, within: str | None = None) -> str:
    """An absolute, normalised path of safe characters, inside ``within`` when given."""
    text = _require_str(value, field)
    if not text.startswith("/"):
        raise ValidationError(field, "must be an absolute path", value)
    if len(text) > _MAX_PATH:
        raise ValidationError(field, f"must be at most {_MAX_PATH} characters", value)
    if not _PATH_RE.fullmatch(text):
        raise ValidationError(
            field, "must be '/'-separated parts of A-Z, a-z, 0-9, '.', '_', '@', '+', '-'", value
        )
    if posixpath.normpath(text) != text or text.startswith("//"):
        raise ValidationError(
            field, "must be normalised (no '.', '..', '//' or trailing '/')", value
        )
    if any(len(part) > _MAX_PATH_PART for part in text.split("/")):
        raise ValidationError(
            field, f"must have parts of at most {_MAX_PATH_PART} characters", value
        )
    if within is not None:
        root = validate_path(within, f"{field} root")
        if root != "/" and text != root and not text.startswith(root + "/"):
            raise ValidationError(field, f"must be inside {root}", value)
    return text


def _url_part(text: str, pattern: re.Pattern[str], field: str, what: str, value: object) -> str:
    """A path, query or fragment of whitelisted characters, its '%' escapes canonical
    (upper-case hex) and none of them encoding a control character."""
    if not pattern.fullmatch(text):
        raise ValidationError(field, f"{what} has characters outside the URL whitelist", value)

    def escape(match: re.Match[str]) -> str:
        digits = match.group(1)
        if digits is None:
            raise ValidationError(field, f"{what} has a '%' not followed by two hex digits", value)
        code = int(digits, 16)
        if code < 0x20 or code == 0x7F:
            raise ValidationError(field, f"{what} encodes a control character", value)
        return "%" + digits.upper()

    return _PERCENT_RE.sub(escape, text)


def validate_url(
    value: object, field: str = "url", *, schemes: Iterable[str] = ("http", "https")
) -> str:
    """An absolute http(s) URL with a valid host and no characters a config could trip on.

    It comes back rebuilt: lowercase scheme and host, an IDN host as A-labels, the port
    as a plain number, '%' escapes in upper case.
    """
    allowed = tuple(schemes)
    text = _require_str(value, field)
    if len(text) > _MAX_URL:
        raise ValidationError(field, f"must be at most {_MAX_URL} characters", value)
    if any(ch.isspace() for ch in text) or not text.isprintable():
        raise ValidationError(field, "must not contain whitespace or control characters", value)
    try:
        parts = urlsplit(text)
    except ValueError as exc:
        raise ValidationError(field, f"is not a valid URL: {exc}", value) from None
    if parts.scheme not in allowed:
        raise ValidationError(field, f"scheme must be one of {', '.join(allowed)}", value)
    if "@" in parts.netloc:
        raise ValidationError(field, "must not carry credentials", value)
    netloc = _URL_NETLOC_RE.fullmatch(parts.netloc)
    if not netloc or not netloc.group(1):
        raise ValidationError(field, "must name a host, and a port only as digits", value)
    host, port_text = netloc.group(1), netloc.group(2)
    if host.startswith("["):
        try:
            host_text = str(ipaddress.IPv6Address(host[1:-1]))
        except ValueError:
            raise ValidationError(field, "has an invalid IPv6 address", value) from None
        if "%" in host_text:
            raise ValidationError(field, "must not carry an IPv6 scope", value)
        netloc_text = f"[{host_text}]"
    else:
        try:
            netloc_text = str(ipaddress.IPv4Address(host))
        except ValueError:
            netloc_text = validate_hostname(host, field)
    if port_text is not None:
        netloc_text += f":{validate_port(port_text, field)}"
    path = _url_part(parts.path, _URL_PATH_RE, field, "path", value)
    query = _url_part(parts.query, _URL_QUERY_RE, field, "query", value)
    fragment = _url_part(parts.fragment, _URL_PATH_RE, field, "fragment", value)
    rebuilt = f"{parts.scheme}://{netloc_text}{path}"
    if query:
        rebuilt += f"?{query}"
    if fragment:
        rebuilt += f"#{fragment}"
    return rebuilt


def validate_email(value: object, field: str = "contact") -> str:
    """An e-mail address: a dot-atom local part (no leading '-', no '%' routing) at a
    host name of two labels or more; the domain comes back lowercase, as A-labels."""
    text = _require_str(value, field)
    local, at, domain = text.rpartition("@")
    if not at or len(local) > 64 or not _EMAIL_LOCAL_RE.fullmatch(local):
        raise ValidationError(field, "must be an e-mail address", value)
    ascii_domain = validate_hostname(domain, field, min_labels=2)
    address = f"{local}@{ascii_domain}"
    if len(address) > 254:
        raise ValidationError(field, "must be at most 254 characters", value)
    return address


def validate_type_name(value: object, field: str = "type") -> str:
    text = _require_str(value, field)
    if not _TYPE_RE.fullmatch(text):
        raise ValidationError(field, "must be a lowercase word of a-z, 0-9, '_'", value)
    return text


def _validate_settings(value: object, field: str) -> dict[str, str | int | bool]:
    """Plain settings: safe keys, scalar values, no secrets (those live in the secrets file).

    A string value is at most 1024 characters of ``A-Z a-z 0-9 . _ : / @ + , = % ~ -``
    and inner spaces: nothing a config file or a shell gives a meaning to.
    """
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValidationError(field, "must be a mapping", value)
    out: dict[str, str | int | bool] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not _SETTING_KEY_RE.fullmatch(key):
            raise ValidationError(f"{field}.{key}", "key must be a lowercase identifier", key)
        if _SECRET_KEY_RE.search(key):
            raise ValidationError(
                f"{field}.{key}", "secrets belong in the secrets file, not in the inventory"
            )
        if isinstance(item, bool | int):
            out[key] = item
        elif isinstance(item, str):
            if len(item) > 1024 or not _SETTING_VALUE_RE.fullmatch(item):
                raise ValidationError(
                    f"{field}.{key}",
                    "must be at most 1024 of A-Z, a-z, 0-9, '._:/@+,=%~-' and inner spaces",
                    item,
                )
            out[key] = item
        else:
            raise ValidationError(f"{field}.{key}", "must be a string, a number or a boolean", item)
    return dict(sorted(out.items()))


# ---------------------------------------------------------------------------
# Derived names
# ---------------------------------------------------------------------------

#: Identifier length limits: MariaDB/MySQL databases 64, users 32 (MySQL 5.7+; MariaDB
#: allows 80, the lower bound keeps one name valid on both); PostgreSQL 63 for both.
DB_NAME_LIMITS: Final[Mapping[DbEngine, tuple[int, int]]] = {
    DbEngine.MYSQL: (64, 32),
    DbEngine.PGSQL: (63, 63),
}
_DB_IDENT_RE: Final = re.compile(r"[a-z][a-z0-9_]*")
#: Names the servers keep for themselves (system schemas, roles, role keywords); a
#: site's database or user must never be one of them. PostgreSQL also reserves ``pg_``.
RESERVED_DB_NAMES: Final = frozenset(
    {
        "mysql",
        "information_schema",
        "performance_schema",
        "sys",
        "root",
        "postgres",
        "template0",
        "template1",
        "public",
        "none",
        "current_role",
        "current_user",
        "session_user",
    }
)
_DIGEST_LEN: Final = 12


def _derive(domain: str, limit: int, prefix: str = "") -> str:
    """A safe identifier from a domain: ``[a-z][a-z0-9_]*`` within ``limit`` characters.

    Distinct domains always give distinct names. The plain form (dots turned into
    ``_``: ``shop.example`` -> ``shop_example``) is used only when it is unambiguous: the
    domain has no hyphen, starts with a letter, fits, and is not a reserved name. Every
    other domain gets a readable head and ``__`` + 12 hex digits of its SHA-256; a plain
    form never contains ``__``, so the two kinds cannot meet.
    """
    ascii_domain = validate_domain(domain)
    base = prefix + ascii_domain.replace(".", "_")
    if (
        "-" not in ascii_domain
        and base[0].isalpha()
        and len(base) <= limit
        and not base.startswith("pg_")
        and base not in RESERVED_DB_NAMES
    ):
        return base
    head = base.replace("-", "_")
    if not head[0].isalpha() or head.startswith("pg_"):
        head = "s" + head
    digest = hashlib.sha256(ascii_domain.encode("ascii")).hexdigest()[:_DIGEST_LEN]
    head = head[: limit - _DIGEST_LEN - 2].rstrip("_")
    return f"{head}__{digest}"


def validate_db_identifier(value: object, engine: DbEngine | str, field: str, *, user: bool) -> str:
    """A database or user name: ``[a-z][a-z0-9_]*`` within the engine's limit, not a
    system name, and for PostgreSQL not in the reserved ``pg_`` namespace."""
    eng = DbEngine.parse(engine, "engine")
    text = _require_str(value, field)
    limit = DB_NAME_LIMITS[eng][1 if user else 0]
    if not _DB_IDENT_RE.fullmatch(text) or len(text) > limit:
        raise ValidationError(
            field, f"must be 1-{limit} of a-z, 0-9, '_' starting with a letter ({eng})", value
        )
    if text in RESERVED_DB_NAMES or (eng is DbEngine.PGSQL and text.startswith("pg_")):
        raise ValidationError(field, f"is a name {eng} reserves for itself", value)
    return text


def derive_db_name(domain: str, engine: DbEngine | str) -> str:
    eng = DbEngine.parse(engine, "engine")
    return _derive(domain, DB_NAME_LIMITS[eng][0])


def derive_db_user(domain: str, engine: DbEngine | str) -> str:
    eng = DbEngine.parse(engine, "engine")
    return _derive(domain, DB_NAME_LIMITS[eng][1])


def derive_unix_user(domain: str) -> str:
    """The Unix user a site's PHP runs as: ``s_`` + the domain, at most 32 characters."""
    return _derive(domain, 32, prefix="s_")


# ---------------------------------------------------------------------------
# Entities
# ---------------------------------------------------------------------------

Environment = str
_ENV_RE: Final = re.compile(r"[a-z][a-z0-9-]{0,31}")

#: SSH options a server may carry, and their types.
SSH_OPTION_TYPES: Final[Mapping[str, type]] = {
    "identity_file": str,
    "proxy_jump": str,
    "connect_timeout": int,
    "keepalive_interval": int,
    "keepalive_count": int,
    "sudo": bool,
    "config_host": str,
}

#: Quota keys a client or site may carry (all whole numbers).
QUOTA_KEYS: Final = frozenset(
    {"disk_mb", "bandwidth_mb_month", "sites", "cpu_seconds_day", "warn_percent", "crit_percent"}
)


def _set(obj: object, name: str, value: object) -> None:
    object.__setattr__(obj, name, value)


def validate_environment(value: object, field: str = "environment") -> str:
    text = _require_str(value, field)
    if not _ENV_RE.fullmatch(text):
        raise ValidationError(
            field, "must be a lowercase word of a-z, 0-9 and '-' (prod, staging…)", value
        )
    return text


def _validate_ssh_options(value: object, field: str) -> dict[str, str | int | bool]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValidationError(field, "must be a mapping", value)
    out: dict[str, str | int | bool] = {}
    for key, item in value.items():
        kind = SSH_OPTION_TYPES.get(key) if isinstance(key, str) else None
        if kind is None:
            valid = ", ".join(sorted(SSH_OPTION_TYPES))
            raise ValidationError(f"{field}.{key}", f"unknown SSH option; valid: {valid}", key)
        name = f"{field}.{key}"
        if kind is bool:
            if not isinstance(item, bool):
                raise ValidationError(name, "must be true or false", item)
            out[key] = item
        elif kind is int:
            if isinstance(item, bool) or not isinstance(item, int) or not 0 <= item <= 86400:
                raise ValidationError(name, "must be a whole number from 0 to 86400", item)
            out[key] = item
        elif key == "identity_file":
            out[key] = validate_path(item, name)
        elif key == "proxy_jump":
            text = _require_str(item, name)
            hops = []
            for hop in text.split(","):
                user, at, hostport = hop.rpartition("@")
                host, colon, port = hostport.partition(":")
                rebuilt = validate_unix_name(user, name) + "@" if at else ""
                rebuilt += validate_address(host, name)
                if colon:
                    rebuilt += f":{validate_port(port, name)}"
                hops.append(rebuilt)
            out[key] = ",".join(hops)
        else:
            out[key] = validate_name(item, name)
    return dict(sorted(out.items()))


@dataclass(frozen=True, slots=True)
class Service:
    """A service a server offers: its kind (http, db…), its type (nginx, mysql…)."""

    kind: ServiceKind
    type: str
    settings: Mapping[str, str | int | bool] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _set(self, "kind", ServiceKind.parse(self.kind, "service.kind"))
        _set(self, "type", validate_type_name(self.type, "service.type"))
        _set(self, "settings", _validate_settings(self.settings, f"service.{self.type}.settings"))


def _sequence(value: object, field: str, what: str) -> tuple[object, ...]:
    """A list or tuple given for a sequence field (None is empty); not a string or mapping."""
    if value is None:
        return ()
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise ValidationError(field, f"must be a list of {what}", value)
    return tuple(value)


@dataclass(frozen=True, slots=True)
class Server:
    name: str
    address: str
    port: int = 22
    user: str = "root"
    transport: Transport = Transport.SSH
    root: str = "/var/lib/cockpit"
    environment: Environment = "prod"
    ssh_options: Mapping[str, str | int | bool] = field(default_factory=dict)
    services: tuple[Service, ...] = ()
    id: int | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        _set(self, "name", validate_name(self.name, "server.name"))
        _set(self, "address", validate_address(self.address, "server.address"))
        _set(self, "port", validate_port(self.port, "server.port"))
        _set(self, "user", validate_unix_name(self.user, "server.user"))
        _set(self, "transport", Transport.parse(self.transport, "server.transport"))
        _set(self, "root", validate_path(self.root, "server.root"))
        if self.root == "/":
            raise ValidationError("server.root", "must not be / itself", self.root)
        _set(self, "environment", validate_environment(self.environment, "server.environment"))
        _set(self, "ssh_options", _validate_ssh_options(self.ssh_options, "server.ssh_options"))
        services: list[Service] = []
        for svc in _sequence(self.services, "server.services", "services"):
            if not isinstance(svc, Service):
                raise ValidationError("server.services", "must be Service objects", svc)
            services.append(svc)
        seen: set[tuple[ServiceKind, str]] = set()
        for svc in services:
            if (svc.kind, svc.type) in seen:
                raise ValidationError("server.services", f"{svc.kind}/{svc.type} is listed twice")
            seen.add((svc.kind, svc.type))
        _set(self, "services", tuple(sorted(services, key=lambda s: (s.kind.value, s.type))))

    def service(self, kind: ServiceKind | str) -> Service | None:
        """The first service of a kind, or None."""
        wanted = ServiceKind.parse(kind, "kind")
        return next((s for s in self.services if s.kind is wanted), None)


@dataclass(frozen=True, slots=True)
class Platform:
    name: str
    server: str
    type: PlatformType
    root: str
    release: str = ""
    locked: bool = False
    id: int | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        _set(self, "name", validate_name(self.name, "platform.name"))
        _set(self, "server", validate_name(self.server, "platform.server"))
        _set(self, "type", PlatformType.parse(self.type, "platform.type"))
        _set(self, "root", validate_path(self.root, "platform.root"))
        if self.release is None:
            _set(self, "release", "")
        if not isinstance(self.release, str) or (
            self.release and not re.fullmatch(r"[A-Za-z0-9._+~-]{1,64}", self.release)
        ):
            raise ValidationError(
                "platform.release",
                "must be a version of A-Z, a-z, 0-9, '.', '_', '+', '~', '-'",
                self.release,
            )
        if not isinstance(self.locked, bool):
            raise ValidationError("platform.locked", "must be true or false", self.locked)


@dataclass(frozen=True, slots=True)
class Client:
    name: str
    contact: str = ""
    quotas: Mapping[str, int] = field(default_factory=dict)
    id: int | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        _set(self, "name", validate_name(self.name, "client.name"))
        if self.contact is None:
            _set(self, "contact", "")
        if not isinstance(self.contact, str):
            raise ValidationError("client.contact", "must be a string", self.contact)
        if self.contact:
            _set(self, "contact", validate_email(self.contact, "client.contact"))
        _set(self, "quotas", _validate_quotas(self.quotas, "client.quotas"))


def _validate_quotas(value: object, field: str) -> dict[str, int]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValidationError(field, "must be a mapping", value)
    out: dict[str, int] = {}
    for key, item in value.items():
        if key not in QUOTA_KEYS:
            raise ValidationError(
                f"{field}.{key}", f"unknown quota; valid: {', '.join(sorted(QUOTA_KEYS))}", key
            )
        if isinstance(item, bool) or not isinstance(item, int) or item < 0:
            raise ValidationError(f"{field}.{key}", "must be a whole number >= 0", item)
        out[key] = item
    return dict(sorted(out.items()))


@dataclass(frozen=True, slots=True)
class Site:
    domain: str
    platform: str
    client: str | None = None
    aliases: tuple[str, ...] = ()
    redirection: str | None = None
    db_server: str | None = None
    https: HttpsMode = HttpsMode.OFF
    status: SiteStatus = SiteStatus.ENABLED
    id: int | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        _set(self, "domain", validate_domain(self.domain, "site.domain"))
        _set(self, "platform", validate_name(self.platform, "site.platform"))
        if self.client is not None:
            _set(self, "client", validate_name(self.client, "site.client"))
        aliases = tuple(
            validate_domain(a, "site.aliases", wildcard=True)
            for a in _sequence(self.aliases, "site.aliases", "domains")
        )
        if self.domain in aliases:
            raise ValidationError(
                "site.aliases", "must not repeat the site's own domain", self.domain
            )
        if len(set(aliases)) != len(aliases):
            raise ValidationError("site.aliases", "must not list a domain twice")
        _set(self, "aliases", tuple(sorted(aliases)))
        if self.redirection is not None:
            target = validate_domain(self.redirection, "site.redirection")
            if target != self.domain and target not in aliases:
                raise ValidationError(
                    "site.redirection", "must be the site's domain or one of its aliases", target
                )
            _set(self, "redirection", target)
        if self.db_server is not None:
            _set(self, "db_server", validate_name(self.db_server, "site.db_server"))
        _set(self, "https", HttpsMode.parse(self.https, "site.https"))
        _set(self, "status", SiteStatus.parse(self.status, "site.status"))


class BackupReason(_StrEnum):
    """Why a backup was made, which decides how long retention keeps it."""

    BACKUP = "backup"  # site.backup, by hand or on a schedule: pruned by the policy
    SAFETY = "safety"  # taken by site.restore before it changes anything
    DELETE = "delete"  # taken by site.delete before it removes anything


@dataclass(frozen=True, slots=True)
class Backup:
    """A backup of a site: ``location`` on ``server`` (the server it was made on, which
    the site may since have left). A backup not yet recorded may leave ``server`` None:
    the store then records the site's current server, where ``site.backup`` makes them."""

    site: str
    location: str
    size: int
    sha256: str
    created: datetime
    backend: str = "tar"
    server: str | None = None
    reason: BackupReason = BackupReason.BACKUP
    id: int | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        _set(self, "site", validate_domain(self.site, "backup.site"))
        _set(self, "location", validate_path(self.location, "backup.location"))
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 0:
            raise ValidationError("backup.size", "must be a whole number >= 0", self.size)
        if not isinstance(self.sha256, str) or not re.fullmatch(r"[0-9a-f]{64}", self.sha256):
            raise ValidationError("backup.sha256", "must be 64 lowercase hex digits", self.sha256)
        if not isinstance(self.created, datetime):
            raise ValidationError("backup.created", "must be a datetime", self.created)
        if self.created.tzinfo is None:
            _set(self, "created", self.created.replace(tzinfo=UTC))
        _set(self, "backend", validate_type_name(self.backend, "backup.backend"))
        if self.server is not None:
            _set(self, "server", validate_name(self.server, "backup.server"))
        _set(self, "reason", BackupReason.parse(self.reason, "backup.reason"))


class Health(_StrEnum):
    UNKNOWN = "unknown"  # never verified
    OK = "ok"
    FAILED = "failed"  # reached, but a check failed
    UNREACHABLE = "unreachable"


@dataclass(frozen=True, slots=True)
class ServerHealth:
    """What the last verify of a server found: its health, why, and its facts."""

    server: str
    health: Health = Health.UNKNOWN
    reason: str = ""
    checked_at: datetime | None = None
    facts: Mapping[str, Any] = field(default_factory=dict)
