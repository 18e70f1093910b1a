"""What every platform plugin shares: the site layout, config files, health checks.

A platform type (``static``, ``php``, ``wordpress``, ``drupal``) is a
:class:`PlatformPlugin` subclass bound to one :class:`~cockpit.model.Platform` (a
codebase at ``platform.root`` on one server). It knows:

- where a site's pieces live (:meth:`PlatformPlugin.layout`): its docroot, its uploaded
  files, its private dir, its tmp dir;
- which files hold the site's settings (:meth:`PlatformPlugin.config_files`, rendered
  from templates with the site's database credentials) and which paths hold its data
  (:meth:`PlatformPlugin.data_paths`, what a backup copies besides the database dump);
- how to install its codebase (:meth:`PlatformPlugin.install_codebase`), detect its
  release, fill a new site's docroot from it, run the application's installer, answer a
  health request, give a one-time login link, and rewrite URLs after a clone.

Every remote step is a fixed script run with its values as arguments (as in the
service plugins); names and paths are validated before anything is sent. Steps that
run the application's own code run as the site's Unix user (``runuser``), never as
root.
"""

from __future__ import annotations

import abc
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar, Final

from cockpit.backends.services.base import Check, ServiceError, run_step
from cockpit.backends.services.db import DbCredentials
from cockpit.backends.services.render import render_template
from cockpit.backends.transport import LineHandler, Transport, TransportError
from cockpit.model import (
    DbEngine,
    Platform,
    Site,
    ValidationError,
    derive_unix_user,
    validate_domain,
    validate_email,
    validate_path,
    validate_unix_name,
)

__all__ = [
    "ConfigFile",
    "HealthCheck",
    "InstallOptions",
    "PlatformError",
    "PlatformPlugin",
    "SiteLayout",
    "app_secret",
    "db_values",
    "site_layout",
]

#: A site's own dir under the server root: ``<root>/sites/<domain>``.
SITES_DIR: Final = "sites"
_RELEASE_RE: Final = re.compile(r"[A-Za-z0-9._+~-]{1,64}")


class PlatformError(ServiceError):
    """A platform step failed; the message says what, with the server's output."""


@dataclass(frozen=True, slots=True)
class SiteLayout:
    """Where one site's pieces live on its server. Every path is validated.

    - ``site_dir``: ``<root>/sites/<domain>``, the site user's home (0750, user:web group);
    - ``docroot``: what the web server serves (the platform decides where);
    - ``files_dir``: the site's uploaded files (writable by the site user);
    - ``private_dir``: settings and credentials outside the docroot (0750);
    - ``tmp_dir``: PHP's uploads, sessions and temp files (0700, the site user's).
    """

    domain: str
    unix_user: str
    site_dir: str
    docroot: str
    files_dir: str
    private_dir: str
    tmp_dir: str
    #: Dirs the site's PHP may open files in (``open_basedir``).
    php_dirs: tuple[str, ...]
    #: Whether the docroot is the site's own copy (made from the codebase) rather than
    #: the platform's codebase itself (Drupal's multi-site layout).
    own_docroot: bool = True

    def __post_init__(self) -> None:
        validate_domain(self.domain, "layout.domain")
        validate_unix_name(self.unix_user, "layout.unix_user")
        for name in ("site_dir", "docroot", "files_dir", "private_dir", "tmp_dir"):
            validate_path(getattr(self, name), f"layout.{name}")
        for path in self.php_dirs:
            validate_path(path, "layout.php_dirs")


def site_layout(
    server_root: str,
    domain: str,
    *,
    docroot: str | None = None,
    files_dir: str | None = None,
    extra_php_dirs: Sequence[str] = (),
) -> SiteLayout:
    """The default layout: everything under ``<root>/sites/<domain>``, served from
    its ``web`` dir, uploads in ``web`` too unless ``files_dir`` says otherwise."""
    domain = validate_domain(domain)
    site_dir = validate_path(f"{server_root}/{SITES_DIR}/{domain}", "site dir")
    web = docroot or f"{site_dir}/web"
    return SiteLayout(
        domain=domain,
        unix_user=derive_unix_user(domain),
        site_dir=site_dir,
        docroot=web,
        files_dir=files_dir or web,
        private_dir=f"{site_dir}/private",
        tmp_dir=f"{site_dir}/tmp",  # noqa: S108 - the site's own private dir
        php_dirs=(*extra_php_dirs, site_dir),
        own_docroot=docroot is None,
    )


@dataclass(frozen=True, slots=True)
class ConfigFile:
    """A file holding a site's settings: its path, its text, and its mode. It belongs
    to the site user and the web server's group, so only those two may read it."""

    path: str
    text: str
    mode: int = 0o640
    #: Whether the text holds credentials (a diff of it is never shown unredacted).
    secret: bool = True

    def __post_init__(self) -> None:
        validate_path(self.path, "config file")
        if self.mode & 0o007:
            raise ValidationError("config file mode", "must give others nothing", oct(self.mode))


@dataclass(frozen=True, slots=True)
class HealthCheck:
    """What a working site answers: ``GET path`` gives ``status`` with ``contains``."""

    path: str = "/"
    status: int = 200
    contains: str = ""


@dataclass(frozen=True, slots=True)
class InstallOptions:
    """What the application's installer needs beyond the layout and the database."""

    title: str
    admin_user: str = "admin"
    admin_email: str = ""
    url: str = ""  # the site's URL (http(s)://domain)

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9 ._-]{1,80}", self.title):
            raise ValidationError(
                "title", "must be 1-80 of A-Z, a-z, 0-9, space, '._-'", self.title
            )
        validate_unix_name(self.admin_user, "admin_user")
        if self.admin_email:
            validate_email(self.admin_email, "admin_email")


def app_secret(master: str, name: str) -> str:
    """A per-site secret derived from the site's master secret (stable across renders,
    so re-rendering a config converges instead of churning its keys)."""
    digest = hmac.new(master.encode("ascii"), name.encode("ascii"), hashlib.sha256).hexdigest()
    return digest


def db_values(credentials: DbCredentials) -> dict[str, object]:
    """A site's database credentials as its settings template reads them: ``db_host``,
    ``db_port``, ``db_name``, ``db_user``, ``db_password``."""
    return {
        "db_host": credentials.host,
        "db_port": credentials.port,
        "db_name": credentials.database,
        "db_user": credentials.user,
        "db_password": credentials.password,
    }


# -- remote scripts -----------------------------------------------------------------------

#: Build a platform's codebase at its root. Args: source (dir or tarball), platform
#: root, marker file relative to the codebase, files to leave out… Builds the codebase in
#: a temp dir beside the root, then renames it in.
_CODEBASE_INSTALL: Final = r"""
src=$1 root=$2 marker=$3
shift 3
if [ -e "$root/$marker" ]; then echo "cockpit: the codebase is already in $root"; exit 0; fi
if [ -e "$root" ] && [ -n "$(ls -A -- "$root" 2>/dev/null)" ]; then
    echo "cockpit: $root exists and is not a codebase of this platform" >&2; exit 65
fi
parent=$(dirname -- "$root")
mkdir -p -m 755 -- "$parent" || exit 1
work=$(mktemp -d -- "$parent/.cockpit-codebase.XXXXXX") || exit 1
trap 'rm -rf -- "$work"' EXIT
if [ -d "$src" ]; then
    cp -RL -- "$src/." "$work/" || { echo "cockpit: copying $src failed" >&2; exit 1; }
elif [ -f "$src" ]; then
    tar -xf "$src" -C "$work" || { echo "cockpit: unpacking $src failed" >&2; exit 1; }
    if ! [ -e "$work/$marker" ]; then
        top=$(ls -A -- "$work")
        if [ "$(printf '%s\n' "$top" | wc -l)" = 1 ] && [ -d "$work/$top" ]; then
            inner="$work/$top"
            tmp2=$(mktemp -d -- "$parent/.cockpit-codebase.XXXXXX") || exit 1
            mv -- "$inner" "$tmp2/c" && rm -rf -- "$work" && mv -- "$tmp2/c" "$work" && rmdir -- "$tmp2" || exit 1
        fi
    fi
else
    echo "cockpit: no such codebase source: $src" >&2; exit 66
fi
for f do rm -rf -- "$work/$f"; done
[ -e "$work/$marker" ] || { echo "cockpit: $src is not a codebase of this platform (no $marker)" >&2; exit 65; }
chown -R root:root -- "$work" && chmod -R u=rwX,go=rX -- "$work" && chmod 755 -- "$work" || exit 1
if [ -e "$root" ]; then rmdir -- "$root" || exit 1; fi
mv -- "$work" "$root" || exit 1
trap - EXIT
echo "cockpit: the codebase is in $root"
"""

#: Print the release from a file of the codebase: the first line a sed expression
#: prints. Args: platform root, file relative to it, sed expression. Exit 3: no file.
_RELEASE: Final = r"""
f="$1/$2"
[ -r "$f" ] || exit 3
sed -n -e "$3" -- "$f" | head -n 1
"""

#: Fill a site's docroot from the codebase: hard links where the file system allows
#: (the codebase stays read-only: it belongs to root), a copy (reflinked when it can)
#: otherwise. Args: codebase, docroot, site user, web group.
_POPULATE: Final = r"""
src=$1 dst=$2 user=$3 group=$4
[ -d "$src" ] || { echo "cockpit: the codebase $src is missing" >&2; exit 66; }
if [ -n "$(ls -A -- "$dst" 2>/dev/null)" ]; then
    echo "cockpit: $dst is not empty: its content is kept"
    exit 0
fi
mkdir -p -- "$dst" || exit 1
if [ -n "$(ls -A -- "$src")" ]; then
    if ! cp -al -- "$src/." "$dst/" 2>/dev/null; then
        rm -rf -- "$dst" && mkdir -p -- "$dst" || exit 1
        echo "cockpit: cannot hard-link the codebase into $dst: copying it"
        cp -a --reflink=auto -- "$src/." "$dst/" || { echo "cockpit: copying the codebase failed" >&2; exit 1; }
    fi
fi
chown -- "$user:$group" "$dst" && chmod 2750 -- "$dst"
"""

#: Write a file as root, owned by the site user and the web group, mode as given,
#: atomically. Args: temp file (uploaded), path, user, group, mode.
_PLACE: Final = r"""
tmp=$1 path=$2 user=$3 group=$4 mode=$5
chown -- "$user:$group" "$tmp" && chmod "$mode" -- "$tmp" && mv -f -- "$tmp" "$path" || {
    rm -f -- "$tmp"; exit 1; }
"""

#: Print a file, or exit 3 when there is none.
_READ: Final = r"""
[ -e "$1" ] || exit 3
cat -- "$1"
"""

#: Run a PHP file as the site user, then remove it. Args: user, file, dirs for open_basedir.
_RUN_PHP: Final = r"""
user=$1 file=$2 dirs=$3
cd / || exit 1
rc=0
runuser -u "$user" -- php -d "open_basedir=$dirs" -d display_errors=stderr -f "$file" || rc=$?
rm -f -- "$file"
exit "$rc"
"""


class PlatformPlugin(abc.ABC):
    """A platform type bound to one platform (its codebase on one server).

    Subclasses set ``type``, ``description``, ``uses_php``, ``db_engines`` (supported,
    the preferred first; empty: no database) and ``db_required``; they are registered
    under the ``cockpit.platforms`` entry point group by their type name.
    """

    type: ClassVar[str]
    description: ClassVar[str] = ""
    uses_php: ClassVar[bool] = False
    db_engines: ClassVar[tuple[DbEngine, ...]] = ()
    db_required: ClassVar[bool] = False
    supports_login_reset: ClassVar[bool] = False
    #: Whether installing a site runs the application's own installer.
    has_installer: ClassVar[bool] = False
    #: Whether each site has its own copy of the codebase (WordPress, static, php), so a
    #: site and its platform can be made in one step (``site.install`` with a source);
    #: False for a codebase that holds many sites itself (Drupal's multi-site).
    single_site: ClassVar[bool] = True
    #: The application's name in messages ("WordPress"); the type name when empty.
    app_name: ClassVar[str] = ""
    #: A file every codebase of this platform has, relative to its root: when set,
    #: :meth:`install_codebase` builds the codebase from a source (a dir or a tarball,
    #: whose single top dir is taken as the codebase) and refuses one without it.
    codebase_marker: ClassVar[str | None] = None
    #: Files of a source codebase that are left out of the copy.
    codebase_left_out: ClassVar[tuple[str, ...]] = ()
    #: The file of the codebase that holds its release, relative to its root, and a sed
    #: expression printing the release from it (the first line printed counts).
    release_file: ClassVar[str | None] = None
    release_sed: ClassVar[str] = ""

    def __init__(self, platform: Platform) -> None:
        if platform.type.value != self.type:
            raise ValidationError(
                "platform.type", f"a {self.type} plugin cannot run a {platform.type} platform"
            )
        self.platform = platform

    @property
    def root(self) -> str:
        return self.platform.root

    # -- where things are -------------------------------------------------------------

    @property
    def codebase(self) -> str:
        """The dir a new site's docroot is filled from (the platform root by default)."""
        return self.platform.root

    def layout(self, server_root: str, domain: str) -> SiteLayout:
        return site_layout(server_root, domain)

    def config_files(
        self,
        layout: SiteLayout,
        site: Site,
        credentials: DbCredentials | None,
        master_secret: str,
    ) -> list[ConfigFile]:
        """The files that hold a site's settings, rendered (none by default)."""
        return []

    def data_paths(self, layout: SiteLayout) -> list[str]:
        """What a backup copies besides the database dump: the site's own files."""
        paths = [layout.files_dir, layout.private_dir]
        if layout.own_docroot and layout.docroot not in paths:
            paths.insert(0, layout.docroot)
        return sorted(set(paths), key=paths.index)

    def health(self, site: Site) -> HealthCheck:
        """What a working site answers."""
        return HealthCheck("/", 200, "")

    def choose_engine(self, wanted: str | None, offered: Sequence[DbEngine]) -> DbEngine | None:
        """The database engine of a new site: ``wanted`` ("none", "mysql", "pgsql" or
        None for the platform's preference among those the database server offers)."""
        if wanted == "none":
            if self.db_required:
                raise ValidationError("db_engine", f"a {self.type} site needs a database")
            return None
        if wanted is not None:
            engine: DbEngine = DbEngine.parse(wanted, "db_engine")
            if engine not in self.db_engines:
                supported = ", ".join(e.value for e in self.db_engines) or "none"
                raise ValidationError(
                    "db_engine", f"the {self.type} platform supports: {supported}", wanted
                )
            if engine not in offered:
                raise ValidationError(
                    "db_engine", f"the database server offers no {engine} service", wanted
                )
            return engine
        for preferred in self.db_engines:
            if preferred in offered:
                return preferred
        if self.db_required:
            supported = ", ".join(e.value for e in self.db_engines)
            raise ValidationError(
                "db_engine", f"a {self.type} site needs a database ({supported}); none offered"
            )
        return None

    # -- the codebase -----------------------------------------------------------------

    @property
    def app_label(self) -> str:
        return self.app_name or self.type

    async def install_codebase(
        self, transport: Transport, source: str, *, on_line: LineHandler | None = None
    ) -> None:
        """Create the platform's codebase at its root from ``source`` (a dir on the
        server or a tarball), owned by root, left alone when already there. Without a
        ``codebase_marker`` the source is not used: an empty root is made (0755)."""
        if self.codebase_marker is None:
            result = await run_step(
                transport,
                f"create the platform root {self.root}",
                'mkdir -p -m 755 -- "$1"',
                [self.root],
                sudo=True,
                on_line=on_line,
            )
            if not result.ok:
                raise PlatformError(f"cannot create {self.root}", output=result.stderr)
            return
        source = validate_path(source, "source")
        result = await run_step(
            transport,
            f"install the {self.app_label} codebase in {self.root}",
            _CODEBASE_INSTALL,
            [source, self.root, self.codebase_marker, *self.codebase_left_out],
            sudo=True,
            on_line=on_line,
            time_limit=None,
        )
        if not result.ok:
            raise PlatformError(
                f"cannot install the {self.app_label} codebase from {source}",
                output=[*result.stdout, *result.stderr],
            )

    async def detect_release(self, transport: Transport) -> str | None:
        """The codebase's release (from ``release_file``), or None when it cannot tell."""
        if self.release_file is None:
            return None
        result = await run_step(
            transport,
            f"read the {self.app_label} release",
            _RELEASE,
            [self.root, self.release_file, self.release_sed],
        )
        if not result.ok or not result.stdout:
            return None
        return checked_release(result.stdout[-1])

    async def verify_codebase(self, transport: Transport) -> list[Check]:
        """Is the codebase there, and which release is it."""
        result = await run_step(
            transport, "look at the codebase", '[ -d "$1" ]', [self.root], sudo=True
        )
        name = f"platform {self.platform.name}: codebase"
        if not result.ok:
            return [Check.failed(name, f"{self.root} is missing")]
        checks = [Check.passed(name, f"{self.root} is there")]
        release = await self.detect_release(transport)
        rname = f"platform {self.platform.name}: release"
        if release is None:
            checks.append(Check.skipped(rname, "this platform type has no release to detect"))
        else:
            checks.append(Check.passed(rname, release, release=release))
        return checks

    # -- a site's files ---------------------------------------------------------------

    async def populate_docroot(
        self, transport: Transport, layout: SiteLayout, web_group: str
    ) -> None:
        """Fill a new site's own docroot from the codebase (kept when not empty)."""
        if not layout.own_docroot:
            return
        result = await run_step(
            transport,
            f"fill the docroot of {layout.domain}",
            _POPULATE,
            [self.codebase, layout.docroot, layout.unix_user, web_group],
            sudo=True,
            time_limit=None,
        )
        if not result.ok:
            raise PlatformError(
                f"cannot fill the docroot {layout.docroot}", output=[*result.stdout, *result.stderr]
            )

    async def prepare_site(self, transport: Transport, layout: SiteLayout, web_group: str) -> None:
        """Anything a site needs on disk beyond the layout and the codebase copy."""
        return None

    async def install_app(
        self,
        transport: Transport,
        layout: SiteLayout,
        site: Site,
        credentials: DbCredentials | None,
        options: InstallOptions,
        admin_password: str,
        *,
        on_line: LineHandler | None = None,
    ) -> bool:
        """Run the application's installer (idempotent: an installed site is left
        alone). Returns whether it installed anything."""
        return False

    async def login_link(self, transport: Transport, layout: SiteLayout, site: Site) -> str:
        """A one-time admin login link."""
        raise PlatformError(f"the {self.type} platform has no admin login to reset")

    async def rewrite_urls(
        self,
        transport: Transport,
        layout: SiteLayout,
        credentials: DbCredentials | None,
        old: str,
        new: str,
    ) -> None:
        """Rewrite the site's stored URLs from ``old`` to ``new`` (after a clone)."""
        return None

    # -- helpers for plugins ----------------------------------------------------------

    @staticmethod
    def render(template: str, context: Mapping[str, object]) -> str:
        return render_template(template, context)

    @staticmethod
    async def read_file(transport: Transport, path: str) -> str | None:
        result = await run_step(
            transport, f"read {path}", _READ, [validate_path(path, "file")], sudo=True
        )
        if result.exit_code == 3:
            return None
        if not result.ok:
            raise PlatformError(f"cannot read {path}", output=result.stderr)
        return "".join(line + "\n" for line in result.stdout)

    @staticmethod
    async def place_file(
        transport: Transport, path: str, text: str, *, user: str, group: str, mode: int
    ) -> None:
        """Write ``text`` to ``path`` atomically, owned by ``user``:``group`` with ``mode``."""
        path = validate_path(path, "file")
        validate_unix_name(user, "file owner")
        validate_unix_name(group, "file group")
        parent, _, base = path.rpartition("/")
        temp = f"{parent}/.{base}.cockpit-new"
        try:
            await transport.upload(text.encode("utf-8"), temp, mode=0o600, sudo=True)
        except TransportError as exc:
            raise PlatformError(f"cannot write {path}: {exc}") from exc
        result = await run_step(
            transport,
            f"install {path}",
            _PLACE,
            [temp, path, user, group, f"{mode:o}"],
            sudo=True,
        )
        if not result.ok:
            raise PlatformError(f"cannot install {path}", output=result.stderr)

    @staticmethod
    async def run_php_as(
        transport: Transport,
        layout: SiteLayout,
        code: str,
        *,
        what: str,
        on_line: LineHandler | None = None,
        time_limit: float | None = 600,
    ) -> list[str]:
        """Run PHP ``code`` as the site's user (confined to its dirs); the code may hold
        secrets: it travels as a 0600 file of the site user's tmp dir, removed after."""
        path = f"{layout.tmp_dir}/cockpit-{hashlib.sha256(code.encode()).hexdigest()[:12]}.php"
        try:
            await transport.upload(code.encode("utf-8"), path, mode=0o600, sudo=True)
        except TransportError as exc:
            raise PlatformError(f"{what}: cannot upload the script: {exc}") from exc
        chown = await run_step(
            transport, "hand the script to the site user", 'chown -- "$1" "$2"',
            [layout.unix_user, path], sudo=True,
        )  # fmt: skip
        if not chown.ok:
            raise PlatformError(f"{what}: cannot hand the script over", output=chown.stderr)
        result = await run_step(
            transport,
            what,
            _RUN_PHP,
            [layout.unix_user, path, ":".join(layout.php_dirs)],
            sudo=True,
            on_line=on_line,
            time_limit=time_limit,
        )
        if not result.ok:
            raise PlatformError(
                f"{what} failed (exit {result.exit_code})", output=[*result.stdout, *result.stderr]
            )
        return result.stdout


def checked_release(text: str | None) -> str | None:
    """A release string as the model accepts it, or None."""
    if text is None:
        return None
    text = text.strip()
    return text if _RELEASE_RE.fullmatch(text) else None
