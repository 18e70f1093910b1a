"""What every service plugin shares: settings, checks, errors, remote scripts, the layout.

A service plugin is a class bound to one server and one of its configured services
(``Service(kind, type, settings)``). Its methods are coroutines that take the
:class:`~cockpit.backends.transport.Transport` to act through, so the same plugin works
over SSH and on this machine. Every remote step is a fixed script run by
``transport.run_script`` with its values as arguments: no user data is ever spliced
into a command line or a script.

Plugins declare their settings (:class:`Setting`) with production defaults; a server's
inventory overrides them (``settings`` of its :class:`~cockpit.model.Service`). Unknown
keys and values of the wrong shape are refused when the plugin is built.
"""

from __future__ import annotations

import abc
import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final

from cockpit.backends.secrets import SecretStore
from cockpit.backends.transport import LineHandler, Result, Transport
from cockpit.model import (
    Server,
    Service,
    ServiceKind,
    ValidationError,
    validate_address,
    validate_email,
    validate_path,
    validate_port,
    validate_unix_name,
    validate_url,
)
from cockpit.textsafe import sanitize_line

__all__ = [
    "PRELUDE",
    "Check",
    "CheckStatus",
    "Detected",
    "ServerPaths",
    "ServiceError",
    "ServicePlugin",
    "Setting",
    "SettingKind",
    "output_tail",
    "run_step",
    "server_paths",
]

#: Put at the top of every remote script: a PATH with the sbin dirs (a non-root login
#: shell often lacks them) and the C locale, so tools print what the parsers expect.
PRELUDE: Final = """\
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
LC_ALL=C
export LC_ALL
"""

#: How many lines of remote output an error message carries.
TAIL_LINES: Final = 20


class ServiceError(Exception):
    """A service operation failed. The message says what and why, with the remote
    output's last lines (sanitised: safe for a terminal and a log)."""

    def __init__(self, message: str, *, output: Sequence[str] = ()) -> None:
        self.output = [sanitize_line(line) for line in output]
        tail = output_tail(self.output)
        super().__init__(message + (f"\n{tail}" if tail else ""))
        self.summary = message


def output_tail(lines: Sequence[str], count: int = TAIL_LINES) -> str:
    """The last ``count`` non-empty lines, sanitised, indented for an error message."""
    kept = [sanitize_line(line) for line in lines if line.strip()][-count:]
    return "\n".join(f"  | {line}" for line in kept)


class CheckStatus(enum.StrEnum):
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class Check:
    """One verified fact about a server: what was checked, how it went, and why."""

    name: str
    status: CheckStatus
    reason: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status is not CheckStatus.FAILED

    @classmethod
    def passed(cls, name: str, reason: str = "", **details: Any) -> Check:
        return cls(name, CheckStatus.OK, reason, details)

    @classmethod
    def failed(cls, name: str, reason: str, **details: Any) -> Check:
        return cls(name, CheckStatus.FAILED, reason, details)

    @classmethod
    def skipped(cls, name: str, reason: str) -> Check:
        return cls(name, CheckStatus.SKIPPED, reason)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status.value,
            "reason": self.reason,
            "details": dict(self.details),
        }


@dataclass(frozen=True, slots=True)
class Detected:
    """Whether a service's software is installed on a server, and which version."""

    installed: bool
    version: str | None = None
    path: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"installed": self.installed, "version": self.version, "path": self.path}


# ---------------------------------------------------------------------------
# Cockpit's layout on a server
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServerPaths:
    """Cockpit's directories under a server's root (see :mod:`cockpit.backends.verify`)."""

    root: str

    def _sub(self, *parts: str) -> str:
        return "/".join((self.root, *parts))

    @property
    def platforms(self) -> str:
        return self._sub("platforms")

    @property
    def sites(self) -> str:
        return self._sub("sites")

    @property
    def backups(self) -> str:
        return self._sub("backups")

    @property
    def run(self) -> str:
        """Lock files and small state (world-traversable: web servers read nothing here)."""
        return self._sub("run")

    @property
    def tmp(self) -> str:
        """Private scratch space (0700): DB client option files live here briefly."""
        return self._sub("tmp")

    @property
    def certs(self) -> str:
        """Certificates and keys, one dir per site, and the ACME client's state (0700)."""
        return self._sub("certs")

    @property
    def www(self) -> str:
        """Files Cockpit itself serves: the ACME webroot and the disabled-site page."""
        return self._sub("www")

    @property
    def acme_webroot(self) -> str:
        return self._sub("www", "acme")

    @property
    def disabled_root(self) -> str:
        return self._sub("www", "disabled")

    def lock(self, name: str) -> str:
        return self._sub("run", f"{name}.lock")

    def layout(self) -> list[tuple[str, int]]:
        """Every directory Cockpit keeps, with its mode, parents first."""
        return [
            (self.root, 0o755),
            (self.platforms, 0o755),
            (self.sites, 0o755),
            (self.backups, 0o700),
            (self.run, 0o755),
            (self.tmp, 0o700),
            (self.certs, 0o700),
            (self.www, 0o755),
            (self.acme_webroot, 0o755),
            (self.disabled_root, 0o755),
        ]


def server_paths(server: Server) -> ServerPaths:
    return ServerPaths(server.root)


# ---------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------


class SettingKind(enum.Enum):
    PATH = "an absolute path"
    OPTIONAL_PATH = "an absolute path or empty"
    PORT = "a port number"
    INT = "a whole number"
    BOOL = "true or false"
    CHOICE = "one of"
    ADDRESS = "an IP address or host name"
    OPTIONAL_ADDRESS = "an IP address, a host name or empty"
    UNIX_USER = "a Unix user name"
    OPTIONAL_UNIX_USER = "a Unix user name or empty"
    WORD = "a word"
    OPTIONAL_WORD = "a word or empty"
    WORD_LIST = "words separated by commas"
    URL = "an http(s) URL"
    OPTIONAL_EMAIL = "an e-mail address or empty"


_WORD_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+@:/-]*")
_WORD_LIST_RE: Final = re.compile(
    r"[A-Za-z0-9%_][A-Za-z0-9._%:-]*(?:,[A-Za-z0-9%_][A-Za-z0-9._%:-]*)*"
)


@dataclass(frozen=True, slots=True)
class Setting:
    """A plugin setting: its kind, its production default, and what it is for."""

    kind: SettingKind
    default: str | int | bool
    help: str = ""
    choices: tuple[str, ...] = ()
    minimum: int = 0
    maximum: int = 86400

    def parse(self, value: object, name: str) -> str | int | bool:
        kind = self.kind
        if kind is SettingKind.BOOL:
            if not isinstance(value, bool):
                raise ValidationError(name, "must be true or false", value)
            return value
        if kind is SettingKind.PORT:
            return validate_port(value, name)
        if kind is SettingKind.INT:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValidationError(name, "must be a whole number", value)
            if not self.minimum <= value <= self.maximum:
                raise ValidationError(
                    name, f"must be between {self.minimum} and {self.maximum}", value
                )
            return value
        if not isinstance(value, str):
            raise ValidationError(name, f"must be {kind.value}", value)
        if value == "" and kind.name.startswith("OPTIONAL_"):
            return ""
        if kind in (SettingKind.PATH, SettingKind.OPTIONAL_PATH):
            return validate_path(value, name)
        if kind is SettingKind.CHOICE:
            if value not in self.choices:
                raise ValidationError(name, f"must be one of {', '.join(self.choices)}", value)
            return value
        if kind in (SettingKind.ADDRESS, SettingKind.OPTIONAL_ADDRESS):
            return validate_address(value, name)
        if kind in (SettingKind.UNIX_USER, SettingKind.OPTIONAL_UNIX_USER):
            return validate_unix_name(value, name)
        if kind is SettingKind.URL:
            return validate_url(value, name)
        if kind is SettingKind.OPTIONAL_EMAIL:
            return validate_email(value, name)
        if kind is SettingKind.WORD_LIST:
            if not _WORD_LIST_RE.fullmatch(value) or len(value) > 1024:
                raise ValidationError(
                    name, "must be words of A-Z, a-z, 0-9 and '._%:-' separated by commas", value
                )
            return value
        if kind in (SettingKind.WORD, SettingKind.OPTIONAL_WORD):
            if not _WORD_RE.fullmatch(value) or len(value) > 255:
                raise ValidationError(name, "must be a word of A-Z, a-z, 0-9 and '._+@:/-'", value)
            return value
        raise AssertionError(kind)


# ---------------------------------------------------------------------------
# Running remote steps
# ---------------------------------------------------------------------------


async def run_step(
    transport: Transport,
    what: str,
    script: str,
    args: Sequence[str] = (),
    *,
    sudo: bool = False,
    on_line: LineHandler | None = None,
    time_limit: float | None = 300,
) -> Result:
    """Run a remote step, capturing its output; an unknown outcome is an error (never
    success). The caller judges the exit code."""
    result = await transport.run_script(
        PRELUDE + script, args, sudo=sudo, on_line=on_line, capture=True, timeout=time_limit
    )
    if result.unknown:
        raise ServiceError(
            f"{what}: the outcome is unknown ({result.reason or 'connection lost'})",
            output=[*result.stdout, *result.stderr],
        )
    return result


# ---------------------------------------------------------------------------
# The plugin base class
# ---------------------------------------------------------------------------


class ServicePlugin(abc.ABC):
    """A service type (``nginx``, ``mysql``…) bound to one server's configured service.

    Subclasses set ``kind``, ``type``, ``description`` and ``settings_spec``; they are
    registered under the ``cockpit.services`` entry point group as ``<kind>.<type>``.
    """

    kind: ClassVar[ServiceKind]
    type: ClassVar[str]
    description: ClassVar[str] = ""
    settings_spec: ClassVar[Mapping[str, Setting]] = {}

    def __init__(
        self,
        server: Server,
        service: Service | None = None,
        *,
        secret_store: SecretStore | None = None,
    ) -> None:
        if service is None:
            service = Service(self.kind, self.type)
        if service.kind is not self.kind or service.type != self.type:
            raise ValidationError(
                "service",
                f"a {self.kind}/{self.type} plugin cannot run a {service.kind}/{service.type} service",
            )
        self.server = server
        self.service = service
        #: Where the plugin finds the secrets it needs (a DB admin password…), if any.
        self.secret_store = secret_store
        self.paths = server_paths(server)
        self.settings = self.parse_settings(service.settings)

    @classmethod
    def parse_settings(cls, given: Mapping[str, str | int | bool]) -> dict[str, str | int | bool]:
        """The effective settings: defaults, overridden by ``given``, each validated."""
        spec = cls.settings_spec
        unknown = sorted(set(given) - set(spec))
        if unknown:
            valid = ", ".join(sorted(spec)) or "none"
            raise ValidationError(
                f"service.{cls.type}.settings.{unknown[0]}",
                f"unknown setting for {cls.kind}/{cls.type}; valid: {valid}",
            )
        out: dict[str, str | int | bool] = {}
        for key, setting in spec.items():
            value = given.get(key, setting.default)
            out[key] = setting.parse(value, f"service.{cls.type}.settings.{key}")
        return out

    def setting(self, key: str) -> str:
        value = self.settings[key]
        assert isinstance(value, str), key
        return value

    def int_setting(self, key: str) -> int:
        value = self.settings[key]
        assert isinstance(value, int) and not isinstance(value, bool), key
        return value

    def bool_setting(self, key: str) -> bool:
        value = self.settings[key]
        assert isinstance(value, bool), key
        return value

    @property
    def label(self) -> str:
        return f"{self.kind}/{self.type}"

    @abc.abstractmethod
    async def detect(self, transport: Transport) -> Detected:
        """Is the software installed, and which version."""

    @abc.abstractmethod
    async def check(self, transport: Transport) -> list[Check]:
        """Does the configured service really work (config test, scratch database…)."""
