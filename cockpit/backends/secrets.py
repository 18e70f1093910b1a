"""The secrets store: database passwords and the like, one 0600 file each.

Secrets live under ``data_dir()/secrets`` (``~/.local/share/cockpit/secrets``), in
directories of mode 0700, one file per secret, written atomically with mode 0600 and
read back only if they are still ours and private
(:func:`~cockpit.config.read_secret_file`). Never in the store, the inventory, a log,
an argv or an environment.

Keys are tuples of plain names (``("servers", "web1", "db", "mysql", "admin")``); the
helpers below build the ones Cockpit uses.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
from pathlib import Path
from typing import Final

from cockpit.config import SecretFileError, data_dir, read_secret_file, write_secret_file
from cockpit.model import validate_domain, validate_name, validate_type_name

__all__ = [
    "SecretStore",
    "db_admin_key",
    "site_db_password_key",
]

_PART_RE: Final = re.compile(r"[a-z0-9][a-z0-9._-]{0,127}")


def db_admin_key(server: str, service_type: str) -> tuple[str, ...]:
    """The admin password of a server's database service (mysql, pgsql)."""
    return (
        "servers",
        validate_name(server, "server"),
        "db",
        validate_type_name(service_type),
        "admin",
    )


def site_db_password_key(domain: str) -> tuple[str, ...]:
    """The password of a site's database user."""
    return ("sites", validate_domain(domain), "db-password")


class SecretStore:
    """Secrets as private files under ``directory`` (default ``data_dir()/secrets``)."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory if directory is not None else data_dir() / "secrets"

    def __repr__(self) -> str:
        return f"SecretStore({str(self.directory)!r})"

    def path(self, *parts: str) -> Path:
        if not parts:
            raise ValueError("a secret needs a key")
        for part in parts:
            if not isinstance(part, str) or not _PART_RE.fullmatch(part) or ".." in part:
                raise ValueError(f"invalid secret key part {part!r}")
        return self.directory.joinpath(*parts)

    def _ensure_dirs(self, path: Path) -> None:
        """Create the secret's directories 0700 (each level), refusing a shared one."""
        current = self.directory
        for part in (None, *path.relative_to(self.directory).parts[:-1]):
            if part is not None:
                current = current / part
            with contextlib.suppress(FileExistsError):
                os.mkdir(current, 0o700)
            st = os.lstat(current)
            if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
                raise SecretFileError(f"{current}: not a directory of ours")
            if stat.S_IMODE(st.st_mode) & 0o077:
                os.chmod(current, 0o700)

    def get(self, *parts: str) -> str | None:
        """The secret, or None when there is none (a file others may read is an error)."""
        path = self.path(*parts)
        try:
            data = read_secret_file(path)
        except FileNotFoundError:
            return None
        return data.decode("utf-8").removesuffix("\n")

    def put(self, *parts: str, value: str) -> None:
        if "\n" in value or "\x00" in value:
            raise ValueError("a secret is one line without NUL")
        path = self.path(*parts)
        self.directory.parent.mkdir(parents=True, exist_ok=True)
        self._ensure_dirs(path)
        write_secret_file(path, value.encode("utf-8") + b"\n")

    def delete(self, *parts: str) -> bool:
        path = self.path(*parts)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        return True
