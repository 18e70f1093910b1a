"""Cockpit's configuration: where files live, and the optional ``config.yaml``.

Paths follow the XDG base directory spec: the config file is
``$XDG_CONFIG_HOME/cockpit/config.yaml`` (``~/.config/cockpit/config.yaml``), unless
``$COCKPIT_CONFIG`` names another file; data (the store, known_hosts) lives in
``$XDG_DATA_HOME/cockpit`` (``~/.local/share/cockpit``).

The file is optional, and an empty one means the defaults. It is validated into frozen
dataclasses; an unknown key (with a "did you mean"), a wrong type or a value out of
range is a :class:`ConfigError` naming the file, the line, the column and the key.
Example::

    store: ~/cockpit/cockpit.db
    theme: cockpit-dark
    read_only: false
    ssh:
      user: deploy
      identity_files: [~/.ssh/id_ed25519]
      connect_timeout: 10
      keepalive_interval: 15
      keepalive_count: 3
      known_hosts: ~/.local/share/cockpit/known_hosts
    concurrency:
      global_limit: 16
      per_server: 4
    retention:
      keep_per_target: 20
      failed_days: 30
    backups:
      keep_last: 10
      keep_days: 30
    keymap:
      task.backup: b,B

The config holds no secrets, by design: a key that looks like one (``password``,
``secret``, ``token``…) is refused. Secrets live in a separate file that only its
owner may read; :func:`check_secret_file`, :func:`read_secret_file` and
:func:`write_secret_file` enforce that.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

from cockpit.fileio import write_atomic
from cockpit.model import ValidationError, validate_domain, validate_name, validate_unix_name
from cockpit.yamlerror import YamlError

if TYPE_CHECKING:
    from cockpit.yamlio import Node

# PyYAML and cockpit.yamlio load when a config file is read or dumped, not before: a
# process that only builds a Config (a script reaching servers) does not pay for them.

__all__ = [
    "CONFIG_ENV",
    "BackupRetention",
    "Concurrency",
    "Config",
    "ConfigError",
    "Retention",
    "SecretFileError",
    "SshDefaults",
    "StatsSettings",
    "StatusSettings",
    "check_secret_file",
    "config_dir",
    "config_path",
    "config_to_dict",
    "data_dir",
    "dump_config",
    "load_config",
    "read_secret_file",
    "write_secret_file",
]

#: Environment variable naming the config file, overriding the XDG location.
CONFIG_ENV: Final = "COCKPIT_CONFIG"
APP_DIR: Final = "cockpit"


class ConfigError(YamlError):
    """An invalid config file or override: names the file, line, column and key."""


class SecretFileError(Exception):
    """A secrets file that others could read, or that is not ours."""


# ---------------------------------------------------------------------------
# Paths
# ---------------------------------------------------------------------------


def _xdg(variable: str, fallback: str) -> Path:
    value = os.environ.get(variable, "")
    # The spec says relative values are invalid and must be ignored.
    if value and Path(value).is_absolute():
        return Path(value)
    return Path.home() / fallback


def config_dir() -> Path:
    """``$XDG_CONFIG_HOME/cockpit`` (default ``~/.config/cockpit``)."""
    return _xdg("XDG_CONFIG_HOME", ".config") / APP_DIR


def data_dir() -> Path:
    """``$XDG_DATA_HOME/cockpit`` (default ``~/.local/share/cockpit``)."""
    return _xdg("XDG_DATA_HOME", ".local/share") / APP_DIR


def config_path() -> Path:
    """The config file: ``$COCKPIT_CONFIG`` if set, else ``config_dir()/config.yaml``."""
    override = os.environ.get(CONFIG_ENV, "")
    if override:
        return Path(override).expanduser()
    return config_dir() / "config.yaml"


# ---------------------------------------------------------------------------
# The typed config
# ---------------------------------------------------------------------------


def _default_store() -> Path:
    return data_dir() / "cockpit.db"


def _default_known_hosts() -> Path:
    return data_dir() / "known_hosts"


@dataclass(frozen=True, slots=True)
class SshDefaults:
    """Defaults for every SSH connection; a server's own options win over these.

    ``user`` ``None`` means "the server's own login user".
    ``keepalive_interval`` 0 turns keepalives off.
    """

    user: str | None = None
    identity_files: tuple[Path, ...] = ()
    connect_timeout: float = 10.0
    keepalive_interval: float = 15.0
    keepalive_count: int = 3
    known_hosts: Path = field(default_factory=_default_known_hosts)


@dataclass(frozen=True, slots=True)
class Concurrency:
    """How many tasks run at once: in all, and on one server."""

    global_limit: int = 16
    per_server: int = 4


@dataclass(frozen=True, slots=True)
class Retention:
    """How many finished tasks (with their logs) to keep per target; failed ones, how long."""

    keep_per_target: int = 20
    failed_days: int = 30


@dataclass(frozen=True, slots=True)
class BackupRetention:
    """What ``site.backup-prune`` keeps of each site's backups: its ``keep_last`` newest
    ordinary backups and every one younger than ``keep_days`` days; a restore's safety
    backups and a delete's backup for ``safety_days`` and ``delete_days`` (None: until
    deleted by hand). ``sites`` holds whole policies of their own, by domain."""

    keep_last: int = 10
    keep_days: int = 30
    safety_days: int | None = None
    delete_days: int | None = None
    sites: Mapping[str, BackupRetention] = field(default_factory=lambda: MappingProxyType({}))

    def for_site(self, domain: str) -> BackupRetention:
        """The policy of ``domain``: its own, or this one."""
        return self.sites.get(domain, self)


@dataclass(frozen=True, slots=True)
class StatsSettings:
    """How long statistics are kept: per minute, per hour, and collector tasks' records."""

    minute_hours: int = 48
    hour_days: int = 90
    task_hours: int = 1


@dataclass(frozen=True, slots=True)
class StatusSettings:
    """Thresholds of ``cockpit status`` and the default quotas of sites (0: no limit)."""

    cert_warn_days: int = 14
    cert_crit_days: int = 3
    disk_warn_percent: int = 90
    disk_crit_percent: int = 95
    disk_full_warn_days: int = 7
    disk_full_crit_days: int = 1
    stale_minutes: int = 10
    failed_hours: int = 24
    clock_warn_ms: int = 1000
    clock_crit_ms: int = 30000
    quota_warn_percent: int = 80
    quota_crit_percent: int = 100
    site_disk_mb: int = 0
    site_bandwidth_mb_month: int = 0


#: Each setting of the ``stats`` and ``status`` sections: (minimum, maximum).
_STATS_RANGES: Final = {
    "minute_hours": (1, 24 * 366),
    "hour_days": (1, 36_500),
    "task_hours": (0, 24 * 366),
}
_STATUS_RANGES: Final = {name: (0, 10**9) for name in StatusSettings.__dataclass_fields__}


@dataclass(frozen=True, slots=True)
class Config:
    store: Path = field(default_factory=_default_store)
    ssh: SshDefaults = field(default_factory=SshDefaults)
    concurrency: Concurrency = field(default_factory=Concurrency)
    theme: str = "cockpit-dark"
    #: binding id → comma-separated keys, e.g. ``{"task.backup": "b,B"}``.
    keymap: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    read_only: bool = False
    retention: Retention = field(default_factory=Retention)
    backups: BackupRetention = field(default_factory=BackupRetention)
    stats: StatsSettings = field(default_factory=StatsSettings)
    status: StatusSettings = field(default_factory=StatusSettings)
    #: The file the config was read from, or None for pure defaults (not dumped).
    source: Path | None = field(default=None, compare=False)


# ---------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------

_SECRET_KEY_RE: Final = re.compile(r"pass|secret|token|private|credential|api_?key", re.IGNORECASE)
_BINDING_ID_RE: Final = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)*")
_KEY_RE: Final = re.compile(r"[A-Za-z0-9_]+(?:\+[A-Za-z0-9_]+)*|[!-~]")

_TOP_KEYS: Final = (
    "store",
    "ssh",
    "concurrency",
    "theme",
    "keymap",
    "read_only",
    "retention",
    "backups",
    "stats",
    "status",
)
_SSH_KEYS: Final = (
    "user",
    "identity_files",
    "connect_timeout",
    "keepalive_interval",
    "keepalive_count",
    "known_hosts",
)
_CONCURRENCY_KEYS: Final = ("global_limit", "per_server")
_RETENTION_KEYS: Final = ("keep_per_target", "failed_days")
_BACKUP_POLICY_KEYS: Final = ("keep_last", "keep_days", "safety_days", "delete_days")
_OVERRIDE_KEYS: Final = ("store", "theme", "read_only")


def _section(node: Node, allowed: tuple[str, ...]) -> dict[str, Node]:
    """The entries of a mapping section, after refusing secrets and unknown keys."""
    mapping = node.as_mapping()
    for key in mapping:
        if isinstance(key, str) and _SECRET_KEY_RE.search(key):
            raise node.error(
                "secrets go in the secrets file, never in the config "
                "(it is shown by 'cockpit config show')",
                key,
            )
    node.check_keys(allowed)
    if node.value is None:
        return {}
    return dict(node.items())


def _path(node: Node) -> Path:
    text = node.as_str()
    if not text or "\x00" in text:
        raise node.error("must be a path")
    try:
        path = Path(text).expanduser()
    except RuntimeError:  # ~user of an unknown user
        raise node.error(f"must be an absolute path or start with ~ (got {text!r})") from None
    if not path.is_absolute():
        raise node.error(f"must be an absolute path or start with ~ (got {text!r})")
    return path


def _keys(node: Node) -> str:
    raw = node.value
    items = [item.as_str() for item in node] if isinstance(raw, list) else node.as_str().split(",")
    keys = [item.strip() for item in items]
    if not keys or any(not _KEY_RE.fullmatch(key) for key in keys):
        raise node.error(
            "must be keys separated by commas, such as 'b,B' (got " + repr(raw)[:60] + ")"
        )
    return ",".join(keys)


def _ssh(node: Node) -> SshDefaults:
    entries = _section(node, _SSH_KEYS)
    kwargs: dict[str, Any] = {}
    if (n := entries.get("user")) is not None and n.value is not None:
        with n.validating():
            kwargs["user"] = validate_unix_name(n.as_str(), "user")
    if (n := entries.get("identity_files")) is not None:
        items = [n] if isinstance(n.value, str) else list(n) if n.value is not None else []
        kwargs["identity_files"] = tuple(_path(item) for item in items)
    if (n := entries.get("connect_timeout")) is not None:
        kwargs["connect_timeout"] = n.as_float(minimum=0.1, maximum=3600)
    if (n := entries.get("keepalive_interval")) is not None:
        kwargs["keepalive_interval"] = n.as_float(minimum=0, maximum=3600)
    if (n := entries.get("keepalive_count")) is not None:
        kwargs["keepalive_count"] = n.as_int(minimum=1, maximum=100)
    if (n := entries.get("known_hosts")) is not None:
        kwargs["known_hosts"] = _path(n)
    return SshDefaults(**kwargs)


def _concurrency(node: Node) -> Concurrency:
    entries = _section(node, _CONCURRENCY_KEYS)
    kwargs: dict[str, Any] = {}
    if (n := entries.get("global_limit")) is not None:
        kwargs["global_limit"] = n.as_int(minimum=1, maximum=1024)
    if (n := entries.get("per_server")) is not None:
        kwargs["per_server"] = n.as_int(minimum=1, maximum=1024)
    result = Concurrency(**kwargs)
    if result.per_server > result.global_limit:
        where = entries.get("per_server") or node
        raise where.error(
            f"must not exceed global_limit ({result.per_server} > {result.global_limit})"
        )
    return result


def _retention(node: Node) -> Retention:
    entries = _section(node, _RETENTION_KEYS)
    kwargs: dict[str, Any] = {}
    if (n := entries.get("keep_per_target")) is not None:
        kwargs["keep_per_target"] = n.as_int(minimum=1, maximum=1_000_000)
    if (n := entries.get("failed_days")) is not None:
        kwargs["failed_days"] = n.as_int(minimum=0, maximum=36_500)
    return Retention(**kwargs)


def _backup_policy(entries: Mapping[str, Node], base: BackupRetention) -> BackupRetention:
    kwargs: dict[str, Any] = {}
    if (n := entries.get("keep_last")) is not None:
        kwargs["keep_last"] = n.as_int(minimum=1, maximum=1_000_000)
    if (n := entries.get("keep_days")) is not None:
        kwargs["keep_days"] = n.as_int(minimum=0, maximum=36_500)
    for key in ("safety_days", "delete_days"):
        if (n := entries.get(key)) is not None:
            kwargs[key] = None if n.value is None else n.as_int(minimum=0, maximum=36_500)
    values = {key: getattr(base, key) for key in _BACKUP_POLICY_KEYS}
    values.update(kwargs)
    return BackupRetention(**values)


def _backups(node: Node) -> BackupRetention:
    entries = _section(node, (*_BACKUP_POLICY_KEYS, "sites"))
    policy = _backup_policy(entries, BackupRetention())
    sites: dict[str, BackupRetention] = {}
    if (n := entries.get("sites")) is not None:
        for domain, site in n.items() if n.as_mapping() else ():
            try:
                name = validate_domain(domain, "domain")
            except ValidationError as exc:
                raise n.error(f"{exc.reason} (got {domain!r})", domain) from None
            if name in sites:
                raise n.error(f"names the site {name} twice", domain)
            sites[name] = _backup_policy(_section(site, _BACKUP_POLICY_KEYS), policy)
    return BackupRetention(
        policy.keep_last,
        policy.keep_days,
        policy.safety_days,
        policy.delete_days,
        MappingProxyType(dict(sorted(sites.items()))),
    )


def _ranged(node: Node, ranges: Mapping[str, tuple[int, int]]) -> dict[str, int]:
    entries = _section(node, tuple(ranges))
    return {
        key: n.as_int(minimum=ranges[key][0], maximum=ranges[key][1]) for key, n in entries.items()
    }


def _keymap(node: Node) -> Mapping[str, str]:
    keymap: dict[str, str] = {}
    for binding, value in node.items() if node.value is not None else ():
        if not isinstance(binding, str) or not _BINDING_ID_RE.fullmatch(binding):
            raise node.error(
                "a binding id is dotted lowercase words, such as 'site.backup'", binding
            )
        keymap[binding] = _keys(value)
    return MappingProxyType(dict(sorted(keymap.items())))


def _config(root: Node, source: Path) -> Config:
    if root.value is None:
        return Config(source=source)
    entries = _section(root, _TOP_KEYS)
    kwargs: dict[str, Any] = {"source": source}
    if (n := entries.get("store")) is not None:
        kwargs["store"] = _path(n)
    if (n := entries.get("ssh")) is not None:
        kwargs["ssh"] = _ssh(n)
    if (n := entries.get("concurrency")) is not None:
        kwargs["concurrency"] = _concurrency(n)
    if (n := entries.get("theme")) is not None:
        with n.validating():
            kwargs["theme"] = validate_name(n.as_str(), "theme")
    if (n := entries.get("keymap")) is not None:
        n.as_mapping()
        kwargs["keymap"] = _keymap(n)
    if (n := entries.get("read_only")) is not None:
        kwargs["read_only"] = n.as_bool()
    if (n := entries.get("retention")) is not None:
        kwargs["retention"] = _retention(n)
    if (n := entries.get("backups")) is not None:
        kwargs["backups"] = _backups(n)
    if (n := entries.get("stats")) is not None:
        kwargs["stats"] = StatsSettings(**_ranged(n, _STATS_RANGES))
    if (n := entries.get("status")) is not None:
        kwargs["status"] = StatusSettings(**_ranged(n, _STATUS_RANGES))
    return Config(**kwargs)


def _apply_overrides(config: Config, overrides: Mapping[str, Any]) -> Config:
    changes: dict[str, Any] = {}
    for key, value in overrides.items():
        if value is None:
            continue

        def bad(reason: str, key: str = key) -> ConfigError:
            return ConfigError("command line", None, None, key, reason)

        if key == "store":
            if not isinstance(value, str | os.PathLike) or not os.fspath(value):
                raise bad("must be a path")
            try:
                changes["store"] = Path(value).expanduser().absolute()
            except RuntimeError:  # ~user of an unknown user
                raise bad(f"cannot expand {os.fspath(value)!r}") from None
        elif key == "theme":
            try:
                changes["theme"] = validate_name(value, "theme")
            except ValueError as exc:
                raise bad(getattr(exc, "reason", str(exc))) from None
        elif key == "read_only":
            if not isinstance(value, bool):
                raise bad("must be true or false")
            changes["read_only"] = value
        else:
            from cockpit.yamlio import suggest

            raise bad(f"cannot be set from the command line{suggest(key, _OVERRIDE_KEYS)}")
    if not changes:
        return config
    kwargs = {name: getattr(config, name) for name in Config.__dataclass_fields__}
    kwargs.update(changes)
    return Config(**kwargs)


def load_config(path: Path | None = None, *, overrides: Mapping[str, Any] | None = None) -> Config:
    """The effective config: defaults, then the config file, then the command line.

    Without ``path``, :func:`config_path` is used and a missing file means the
    defaults. A ``path`` given here or through ``$COCKPIT_CONFIG`` must exist.
    ``overrides`` come from command-line flags: ``store``, ``theme``, ``read_only``
    (``None`` values are ignored).
    """
    explicit = path is not None or bool(os.environ.get(CONFIG_ENV))
    file = path if path is not None else config_path()
    if not explicit and not file.exists():
        config = Config()
    else:
        from cockpit import yamlio

        try:
            config = _config(yamlio.load(file), file)
        except ConfigError:
            raise
        except YamlError as exc:
            raise ConfigError(exc.source, exc.line, exc.column, exc.key_path, exc.reason) from None
    return _apply_overrides(config, overrides or {})


def config_to_dict(config: Config) -> dict[str, Any]:
    """The effective config as plain data (what :func:`dump_config` writes)."""
    return {
        "store": str(config.store),
        "theme": config.theme,
        "read_only": config.read_only,
        "ssh": {
            "user": config.ssh.user,
            "identity_files": [str(p) for p in config.ssh.identity_files],
            "connect_timeout": float(config.ssh.connect_timeout),
            "keepalive_interval": float(config.ssh.keepalive_interval),
            "keepalive_count": config.ssh.keepalive_count,
            "known_hosts": str(config.ssh.known_hosts),
        },
        "concurrency": {
            "global_limit": config.concurrency.global_limit,
            "per_server": config.concurrency.per_server,
        },
        "retention": {
            "keep_per_target": config.retention.keep_per_target,
            "failed_days": config.retention.failed_days,
        },
        "backups": {
            **_policy_dict(config.backups),
            "sites": {domain: _policy_dict(p) for domain, p in config.backups.sites.items()},
        },
        "keymap": dict(config.keymap),
        "stats": {k: getattr(config.stats, k) for k in _STATS_RANGES},
        "status": {k: getattr(config.status, k) for k in _STATUS_RANGES},
    }


def _policy_dict(policy: BackupRetention) -> dict[str, int | None]:
    return {key: getattr(policy, key) for key in _BACKUP_POLICY_KEYS}


def dump_config(config: Config) -> str:
    """The effective config as YAML (``cockpit config show``); it reads back equal."""
    import yaml

    return yaml.safe_dump(
        config_to_dict(config), sort_keys=False, default_flow_style=False, allow_unicode=True
    )


# ---------------------------------------------------------------------------
# The secrets file
# ---------------------------------------------------------------------------


def _check_stat(path: Path, st: os.stat_result) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise SecretFileError(f"{path}: refusing to use the secrets file: not a regular file")
    euid = os.geteuid()
    if st.st_uid != euid:
        raise SecretFileError(
            f"{path}: refusing to use the secrets file: it is owned by uid {st.st_uid}, "
            f"not by you (uid {euid})"
        )
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        raise SecretFileError(
            f"{path}: refusing to use the secrets file: its mode {mode:04o} lets group or "
            f"others access it; run: chmod 600 {path}"
        )


def check_secret_file(path: Path) -> None:
    """Refuse a secrets file that is not ours or that group/others may access.

    Raises :class:`SecretFileError` (naming the file and its mode or owner), or
    ``FileNotFoundError`` when there is no such file.
    """
    _check_stat(path, os.stat(path))


def read_secret_file(path: Path) -> bytes:
    """The content of a secrets file, checked on the open file itself (no race)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY)
    with os.fdopen(fd, "rb") as fh:
        _check_stat(path, os.fstat(fh.fileno()))
        return fh.read()


def write_secret_file(path: Path, data: bytes) -> None:
    """Write a secrets file atomically, mode 0600: a temp file beside it, fsync, rename.

    The directory is created 0700 when missing. Readers see the old or the new
    content, never a mix, and the content is on disk when this returns.
    """
    if not isinstance(data, bytes):
        raise TypeError("secrets are written as bytes")
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_atomic(path, data, mode=0o600)
