"""The http kind: per-site vhosts, applied with a config test, a reload, a probe, a rollback.

Applying a vhost (:meth:`HttpService.apply_site`):

1. render it from the template (a refused value or a template error stops here, before
   anything is sent);
2. upload it next to the live file (``.<domain>.conf.cockpit-new``, atomically);
3. on the server, under a per-service ``flock``: keep the live file as a hard link
   (``.<domain>.conf.cockpit-old``), rename the new file over it, link it into the
   enabled dir, and run the server's config test with it in place;
4. reload, then probe the site over HTTP on the server's own loopback address (a Host
   name pinned to it with ``curl --resolve``) until the response carries the new
   config's id in its ``X-Cockpit-Config`` header, which proves the reload took;
5. on any failure, rename the kept link back (the previous file returns byte for byte,
   same inode), remove a link it created, test and reload again.

A vhost whose content is already live is only probed (``changed`` is False).
"""

from __future__ import annotations

import abc
import hashlib
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Final

from cockpit.backends.services.base import (
    Check,
    ServiceError,
    ServicePlugin,
    Setting,
    SettingKind,
    run_step,
)
from cockpit.backends.services.php import PhpFpm, PhpFpmSettings
from cockpit.backends.services.render import (
    TemplateError,
    render_template,
    template_environment,
)
from cockpit.backends.transport import LineHandler, Transport, TransportError
from cockpit.model import (
    HttpsMode,
    ServiceKind,
    Site,
    SiteStatus,
    ValidationError,
    validate_domain,
    validate_path,
)
from cockpit.textsafe import sanitize_line

__all__ = [
    "CONFIG_HEADER",
    "ApplyError",
    "ApplyResult",
    "CertificatePaths",
    "HealthResult",
    "HttpService",
    "ProbeResult",
    "RenderedVhost",
    "Vhost",
]

#: The response header every Cockpit vhost sends: the id of the config that answered.
CONFIG_HEADER: Final = "X-Cockpit-Config"
_CONFIG_ID_RE: Final = re.compile(CONFIG_HEADER + r"\s+([0-9a-f]{16})\b")
#: Placeholder id used to compute a rendered config's own id.
_ID_PLACEHOLDER: Final = "0" * 16

# Exit codes of the apply script.
_EXIT_TEST: Final = 10
_EXIT_RELOAD: Final = 11
_EXIT_PROBE: Final = 12
_EXIT_SETUP: Final = 70
_EXIT_LOCK: Final = 75
_STAGES: Final[Mapping[int, str]] = {
    _EXIT_TEST: "config test",
    _EXIT_RELOAD: "reload",
    _EXIT_PROBE: "probe",
    _EXIT_SETUP: "install",
    _EXIT_LOCK: "lock",
}

_DISABLED_PAGE: Final = "disabled/index.html.j2"
DISABLED_FILE: Final = "cockpit-disabled.html"


@dataclass(frozen=True, slots=True)
class CertificatePaths:
    """Where a site's certificate (full chain, PEM) and private key are on the server."""

    certificate: str
    key: str

    def __post_init__(self) -> None:
        validate_path(self.certificate, "certificate")
        validate_path(self.key, "certificate key")


@dataclass(frozen=True, slots=True)
class Vhost:
    """What a site's vhost needs beyond the :class:`~cockpit.model.Site` itself."""

    site: Site
    docroot: str
    php_socket: str | None = None
    certificate: CertificatePaths | None = None

    def __post_init__(self) -> None:
        validate_path(self.docroot, "vhost.docroot")
        if self.php_socket is not None:
            validate_path(self.php_socket, "vhost.php_socket")
        if self.site.https is not HttpsMode.OFF and self.certificate is None:
            raise ValidationError(
                "vhost.certificate", f"HTTPS {self.site.https} needs a certificate", None
            )

    @property
    def disabled(self) -> bool:
        return self.site.status is not SiteStatus.ENABLED

    @property
    def primary(self) -> str:
        """The name the site is served under (the redirection target, if any)."""
        return self.site.redirection or self.site.domain


@dataclass(frozen=True, slots=True)
class RenderedVhost:
    domain: str
    text: str
    config_id: str
    template: str


@dataclass(frozen=True, slots=True)
class ApplyResult:
    domain: str
    path: str
    config_id: str
    changed: bool
    status: int | None
    url: str

    def to_json(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "path": self.path,
            "config_id": self.config_id,
            "changed": self.changed,
            "status": self.status,
            "url": self.url,
        }


@dataclass(frozen=True, slots=True)
class ProbeResult:
    url: str
    status: int | None
    config_id: str | None


@dataclass(frozen=True, slots=True)
class HealthResult:
    """What a site answered to its health request: the status, whether the body held
    the expected text, and the start of the body (sanitised) when it did not."""

    url: str
    status: int | None
    matched: bool
    ok: bool
    excerpt: str = ""


class ApplyError(ServiceError):
    """Applying (or removing) a vhost failed at ``stage``; ``restored`` says the previous
    config is back in place."""

    def __init__(
        self, message: str, *, stage: str, restored: bool, output: list[str] | None = None
    ) -> None:
        super().__init__(message, output=output or [])
        self.stage = stage
        self.restored = restored


# The shell side of apply/remove. Arguments (all values, never code):
#  1 lock file   2 new file ("" = remove)   3 live file   4 link in the enabled dir ("")
#  5 probe host ("" = no probe)   6 probe address   7 probe port   8 probe scheme
#  9 wanted config id   10 extra accepted status ("" or e.g. 503)   11 probe timeout (s)
#  12.. the service's own arguments (see ``service_args``)
_APPLY: Final = r"""
lock=$1 new=$2 live=$3 link=$4 phost=$5 paddr=$6 pport=$7 pscheme=$8 want=$9
shift 9
special=$1 ptimeout=$2
shift 2
#@SERVICE@
say() { printf 'cockpit: %s\n' "$*" >&2; }
dir=$(dirname -- "$live")
backup="$dir/.$(basename -- "$live").cockpit-old"
drop_new() { if [ -n "$new" ]; then rm -f -- "$new"; fi; }
mkdir -p -- "$(dirname -- "$lock")" && exec 9>>"$lock" || { say "cannot open the lock $lock"; drop_new; exit 70; }
if ! flock -w 120 9; then say "another change to this web server did not finish within 120 s"; drop_new; exit 75; fi

probe_once() {
    case $paddr in *:*) pa="[$paddr]" ;; *) pa=$paddr ;; esac
    if command -v curl >/dev/null 2>&1; then
        headers=$(curl -sS -k -o /dev/null -D - --max-time 5 --resolve "$phost:$pport:$pa" \
            -- "$pscheme://$phost:$pport/" 2>&1)
    elif command -v wget >/dev/null 2>&1; then
        headers=$(wget -S -q -O /dev/null --no-check-certificate --timeout=5 --tries=1 \
            --max-redirect=0 --header="Host: $phost" -- "$pscheme://$pa:$pport/" 2>&1)
    else
        say "neither curl nor wget is installed: cannot probe the site"
        return 2
    fi
    status=$(printf '%s\n' "$headers" | tr -d '\r' | sed -n 's/^ *HTTP\/[0-9.]* \([0-9][0-9][0-9]\).*/\1/p' | tail -n 1)
    got=$(printf '%s\n' "$headers" | tr -d '\r' | sed -n 's/^ *[Xx]-[Cc][Oo][Cc][Kk][Pp][Ii][Tt]-[Cc][Oo][Nn][Ff][Ii][Gg]: *//p' | tail -n 1)
    case $want in
        !*) [ "$got" != "${want#!}" ] && return 0; return 1 ;;
    esac
    [ "$got" = "$want" ] || return 1
    case $status in
        "$special") return 0 ;;
        [1-4][0-9][0-9]) return 0 ;;
    esac
    return 1
}
# Passed when three answers in a row (new connections) come from the wanted config: the
# old workers of a reloading server may still accept for a moment.
probe() {
    deadline=$(( $(date +%s) + ptimeout ))
    good=0
    while :; do
        probe_once
        rc=$?
        if [ "$rc" = 0 ]; then
            good=$((good + 1))
            [ "$good" -ge 3 ] && return 0
            sleep 0.05
            continue
        fi
        good=0
        [ "$rc" = 2 ] && return 1
        if [ "$(date +%s)" -ge "$deadline" ]; then
            say "probe of $pscheme://$phost:$pport/ (at $paddr): status ${status:-none}, config ${got:-none}, wanted $want"
            printf '%s\n' "$headers" | head -n 5 >&2
            return 1
        fi
        sleep 0.2
    done
}

had_live=0 old_id=
if [ -e "$live" ] || [ -L "$live" ]; then
    had_live=1
    old_id=$(sed -n 's/.*X-Cockpit-Config \([0-9a-f]\{16\}\).*/\1/p' -- "$live" 2>/dev/null | head -n 1)
fi
new_id=$want
made_link=0 removed_link=0 link_target=
restore() {
    if [ "$had_live" = 1 ]; then mv -f -- "$backup" "$live"; else rm -f -- "$live"; fi
    if [ "$made_link" = 1 ]; then rm -f -- "$link"; fi
    if [ "$removed_link" = 1 ]; then ln -s -- "$link_target" "$link"; fi
    say "the previous configuration is back"
}
# After a rollback and its reload: wait until the server answers as it did before.
settle() {
    [ -n "$phost" ] || return 0
    special=
    case $new_id in
        !*) want=${new_id#!} ;;
        *) if [ -n "$old_id" ]; then want=$old_id; else want="!$new_id"; fi ;;
    esac
    if probe; then say "the server answers with the previous configuration again"; fi
}

changed=1
if [ -n "$new" ] && [ "$had_live" = 1 ] && cmp -s -- "$new" "$live" &&
    { [ -z "$link" ] || [ -e "$link" ]; }; then
    changed=0
    rm -f -- "$new"
elif [ -z "$new" ] && [ "$had_live" = 0 ] && { [ -z "$link" ] || ! [ -L "$link" ]; }; then
    changed=0
fi
if [ "$changed" = 1 ]; then
    rm -f -- "$backup"
    if [ "$had_live" = 1 ]; then
        ln -- "$live" "$backup" || { say "cannot keep the live file $live"; drop_new; exit 70; }
    fi
    if [ -n "$new" ]; then
        mv -f -- "$new" "$live" || { say "cannot install $live"; drop_new; restore; exit 70; }
        if [ -n "$link" ] && ! [ -e "$link" ]; then
            if [ -L "$link" ]; then rm -f -- "$link"; fi
            ln -s -- "$live" "$link" || { restore; exit 70; }
            made_link=1
        fi
    else
        rm -f -- "$live"
        if [ -n "$link" ] && [ -L "$link" ]; then
            link_target=$(readlink -- "$link")
            rm -f -- "$link"
            removed_link=1
        fi
    fi
    if ! svc_test; then
        say "the configuration test failed"
        restore
        exit 10
    fi
    if ! svc_reload; then
        say "the reload failed"
        restore
        svc_test && svc_reload && settle
        exit 11
    fi
fi
status=
if [ -n "$phost" ]; then
    if ! probe; then
        if [ "$changed" = 1 ]; then
            restore
            svc_test && svc_reload && settle
        fi
        exit 12
    fi
fi
rm -f -- "$backup"
printf 'cockpit-result changed=%s status=%s\n' "$changed" "${status:-}"
"""

_RELOAD: Final = r"""
lock=$1
shift
#@SERVICE@
mkdir -p -- "$(dirname -- "$lock")" && exec 9>>"$lock" || exit 70
flock -w 120 9 || { echo "cockpit: another change to this web server is in progress" >&2; exit 75; }
svc_test || exit 10
svc_reload || exit 11
"""

_PROBE_TOOL: Final = r"""
command -v curl || command -v wget || exit 3
"""

_TEST: Final = r"""
#@SERVICE@
svc_test
"""


_HEALTH_PATH_RE: Final = re.compile(r"/[A-Za-z0-9._~/=&%?+-]*")
_HEALTH_TEXT_RE: Final = re.compile(r"[ -~]{0,200}")

#: Args: host, address, port, scheme, path, wanted status, wanted text, seconds.
_HEALTH: Final = r"""
host=$1 addr=$2 port=$3 scheme=$4 path=$5 want=$6 text=$7 limit=$8
case $addr in *:*) addr="[$addr]" ;; esac
command -v curl >/dev/null 2>&1 || { echo "cockpit: curl is not installed" >&2; exit 3; }
body=$(mktemp) || exit 1
trap 'rm -f -- "$body"' EXIT
deadline=$(( $(date +%s) + limit ))
while :; do
    code=$(curl -sS -k -o "$body" -w '%{http_code}' --max-time 10         --resolve "$host:$port:$addr" -- "$scheme://$host:$port$path" 2>/dev/null)
    match=0
    if [ -z "$text" ] || grep -qF -- "$text" "$body"; then match=1; fi
    if [ "$code" = "$want" ] && [ "$match" = 1 ]; then
        printf 'cockpit-health status=%s match=1
' "$code"
        exit 0
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
        printf 'cockpit-health status=%s match=%s
' "$code" "$match"
        head -c 2000 -- "$body" | head -n 20 | sed 's/^/| /'
        exit 1
    fi
    sleep 0.3
done
"""


class HttpService(ServicePlugin, abc.ABC):
    """Base of the http plugins (nginx, apache)."""

    kind: ClassVar[ServiceKind] = ServiceKind.HTTP
    #: The vhost template, relative to the templates dir.
    template: ClassVar[str]
    #: Shell functions ``svc_test`` and ``svc_reload`` (reading ``$svc_*`` variables
    #: set from :meth:`service_args`), prepended to the scripts.
    service_functions: ClassVar[str]
    #: The shell assignments reading the service's own arguments.
    service_vars: ClassVar[str]

    common_settings: ClassVar[Mapping[str, Setting]] = {
        "listen_address": Setting(
            SettingKind.OPTIONAL_ADDRESS, "", "address the vhosts listen on (empty: all)"
        ),
        "http_port": Setting(SettingKind.PORT, 80, "port of plain HTTP"),
        "https_port": Setting(SettingKind.PORT, 443, "port of HTTPS"),
        "probe_address": Setting(
            SettingKind.OPTIONAL_ADDRESS,
            "",
            "address the probe connects to on the server (empty: listen_address or 127.0.0.1)",
        ),
        "probe_timeout": Setting(
            SettingKind.INT, 15, "seconds to wait for the new config", maximum=600
        ),
        "probe": Setting(SettingKind.BOOL, True, "probe each site after a change"),
        "certificates": Setting(
            SettingKind.CHOICE, "acme", "where certificates come from", ("acme", "selfsigned")
        ),
        "acme_directory": Setting(
            SettingKind.URL,
            "https://acme-v02.api.letsencrypt.org/directory",
            "the ACME server's directory URL",
        ),
        "acme_email": Setting(
            SettingKind.OPTIONAL_EMAIL, "", "contact address for the ACME account"
        ),
        "acme_ca_bundle": Setting(
            SettingKind.OPTIONAL_PATH, "", "CA bundle trusted for the ACME server (tests)"
        ),
        "acme_client": Setting(SettingKind.CHOICE, "lego", "the ACME client", ("lego",)),
        "web_user": Setting(
            SettingKind.UNIX_USER, "www-data", "the web server's user (connects to PHP sockets)"
        ),
        "web_group": Setting(
            SettingKind.UNIX_USER, "www-data", "the web server's group (reads the sites' files)"
        ),
        "php_fpm_binary": Setting(
            SettingKind.OPTIONAL_PATH, "", "php-fpm (empty: the newest /usr/sbin/php-fpmX.Y)"
        ),
        "php_fpm_conf": Setting(
            SettingKind.OPTIONAL_PATH, "", "php-fpm's main config (empty: Debian's)"
        ),
        "php_fpm_pool_dir": Setting(
            SettingKind.OPTIONAL_PATH, "", "where site pools are written (empty: Debian's pool.d)"
        ),
        "php_fpm_pid": Setting(
            SettingKind.OPTIONAL_PATH, "", "php-fpm's pid file (reload = signal; empty: Debian's)"
        ),
        "php_fpm_reload": Setting(
            SettingKind.CHOICE, "systemctl", "how to reload php-fpm", ("systemctl", "signal")
        ),
        "php_fpm_unit": Setting(
            SettingKind.OPTIONAL_WORD, "", "php-fpm's systemd unit (empty: phpX.Y-fpm)"
        ),
    }

    # -- paths -------------------------------------------------------------------------

    def vhost_path(self, domain: str) -> str:
        return f"{self.setting('sites_dir')}/{validate_domain(domain)}.conf"

    def link_path(self, domain: str) -> str:
        enabled = self.setting("enabled_dir")
        return f"{enabled}/{validate_domain(domain)}.conf" if enabled else ""

    def _temp_path(self, domain: str) -> str:
        return f"{self.setting('sites_dir')}/.{validate_domain(domain)}.conf.cockpit-new"

    @property
    def lock_path(self) -> str:
        return self.paths.lock(f"http-{self.type}")

    @property
    def probe_address(self) -> str:
        return self.setting("probe_address") or self.setting("listen_address") or "127.0.0.1"

    def listen(self, port: int) -> str:
        address = self.setting("listen_address")
        if not address:
            return str(port)
        if ":" in address:
            return f"[{ipaddress.ip_address(address)}]:{port}"
        return f"{address}:{port}"

    def php_fpm(self) -> PhpFpm:
        """The server's php-fpm, as this service's ``php_fpm_*`` settings describe it."""
        settings = PhpFpmSettings(
            binary=self.setting("php_fpm_binary"),
            main_conf=self.setting("php_fpm_conf"),
            pool_dir=self.setting("php_fpm_pool_dir"),
            pid_file=self.setting("php_fpm_pid"),
            reload=self.setting("php_fpm_reload"),
            unit=self.setting("php_fpm_unit"),
        )
        return PhpFpm(settings, self.paths.lock("php-fpm"))

    def php_socket(self, pool: str) -> str:
        """Where a site pool's socket is: ``<root>/run/php/<pool>.sock``."""
        return validate_path(f"{self.paths.run}/php/{pool}.sock", "php socket")

    def certificate_paths(self, domain: str) -> CertificatePaths:
        """Where Cockpit keeps a site's certificate on this server."""
        base = f"{self.paths.certs}/{validate_domain(domain)}"
        return CertificatePaths(f"{base}/fullchain.pem", f"{base}/privkey.pem")

    # -- rendering ---------------------------------------------------------------------

    def context(self, vhost: Vhost) -> dict[str, Any]:
        """The template's variables (every string one that :func:`refuse_unsafe` takes).

        ``servers`` lists the server blocks (nginx ``server``, apache ``VirtualHost``) the
        vhost needs, each a mapping of ``listen`` (list), ``ssl`` (bool), ``names``
        (list, the first is the canonical one), ``redirect_to`` (a scheme://name[:port]
        every request is sent to, or ""), ``to_https`` (send plain HTTP to HTTPS on the
        same name) and ``content`` (serve the site).
        """
        site = vhost.site
        https = site.https
        primary = vhost.primary
        # Plain names before wildcards: the first name of a block is its canonical one
        # (Apache's ServerName), which must not be a wildcard.
        names = sorted([site.domain, *site.aliases], key=lambda n: n.startswith("*."))
        served = [primary] if site.redirection else names
        others = [n for n in names if n != primary] if site.redirection else []
        http_port = self.int_setting("http_port")
        https_port = self.int_setting("https_port")
        http_suffix = "" if http_port == 80 else f":{http_port}"
        https_suffix = "" if https_port == 443 else f":{https_port}"
        servers: list[dict[str, Any]] = []
        if others:
            listen = [self.listen(http_port)]
            if https is not HttpsMode.OFF:
                target = f"https://{primary}{https_suffix}"
            else:
                target = f"http://{primary}{http_suffix}"
            servers.append(_block(listen, False, others, redirect_to=target))
            if https is not HttpsMode.OFF:
                servers.append(_block([self.listen(https_port)], True, others, redirect_to=target))
        servers.append(
            _block([self.listen(http_port)], False, served, to_https=https is HttpsMode.REQUIRED)
        )
        if https is not HttpsMode.OFF:
            servers.append(_block([self.listen(https_port)], True, served))
        return {
            "domain": site.domain,
            "primary": primary,
            "servers": servers,
            "https": https.value,
            "http_port_suffix": http_suffix,
            "https_port_suffix": https_suffix,
            "docroot": vhost.docroot,
            "php_socket": vhost.php_socket or "",
            "certificate": vhost.certificate.certificate if vhost.certificate else "",
            "certificate_key": vhost.certificate.key if vhost.certificate else "",
            "acme_root": self.paths.acme_webroot,
            "disabled": vhost.disabled,
            "disabled_root": self.paths.disabled_root,
            "disabled_file": DISABLED_FILE,
            "log_dir": self.setting("log_dir"),
            "config_header": CONFIG_HEADER,
        }

    def render(self, vhost: Vhost) -> RenderedVhost:
        """Render the vhost. Its id is a digest of the text rendered with a placeholder
        id, so the same inputs always give the same file."""
        env = template_environment()
        context = self.context(vhost)
        draft = render_template(self.template, {**context, "config_id": _ID_PLACEHOLDER}, env=env)
        config_id = hashlib.sha256(draft.encode("utf-8")).hexdigest()[:16]
        text = render_template(self.template, {**context, "config_id": config_id}, env=env)
        return RenderedVhost(vhost.site.domain, text, config_id, self.template)

    def render_disabled_page(self) -> str:
        return render_template(_DISABLED_PAGE, {})

    # -- the service's own arguments ------------------------------------------------------

    @abc.abstractmethod
    def service_args(self) -> list[str]:
        """The values the ``svc_*`` shell functions read (binary, main config…)."""

    def _script(self, body: str) -> str:
        assert "#@SERVICE@\n" in body
        return body.replace("#@SERVICE@\n", self.service_vars + self.service_functions, 1)

    # -- operations --------------------------------------------------------------------

    async def install_disabled_page(self, transport: Transport) -> None:
        """Put the disabled-site page in place (idempotent)."""
        page = self.render_disabled_page().encode("utf-8")
        root = self.paths.disabled_root
        result = await run_step(
            transport, "create the disabled-page dir", 'mkdir -p -m 755 -- "$1"', [root], sudo=True
        )
        if not result.ok:
            raise ServiceError(f"cannot create {root}", output=result.stderr)
        try:
            await transport.upload(page, f"{root}/{DISABLED_FILE}", mode=0o644, sudo=True)
        except TransportError as exc:
            raise ServiceError(f"cannot write the disabled-site page: {exc}") from exc

    async def apply_site(
        self, transport: Transport, vhost: Vhost, *, on_line: LineHandler | None = None
    ) -> ApplyResult:
        """Render, install, test, reload and probe a site's vhost; roll back on failure."""
        try:
            rendered = self.render(vhost)
        except TemplateError as exc:
            raise ApplyError(
                f"{vhost.site.domain}: cannot render the vhost: {exc}",
                stage="render",
                restored=True,
            ) from exc
        domain = vhost.site.domain
        live = self.vhost_path(domain)
        if vhost.disabled:
            await self.install_disabled_page(transport)
        temp = self._temp_path(domain)
        try:
            await transport.upload(rendered.text.encode("utf-8"), temp, mode=0o644, sudo=True)
        except TransportError as exc:
            raise ApplyError(
                f"{domain}: cannot upload the vhost to {temp}: {exc}", stage="upload", restored=True
            ) from exc
        https_served = vhost.site.https is HttpsMode.REQUIRED
        scheme = "https" if https_served else "http"
        port = self.int_setting("https_port" if https_served else "http_port")
        probe = self.bool_setting("probe")
        args = [
            self.lock_path,
            temp,
            live,
            self.link_path(domain),
            vhost.primary if probe else "",
            self.probe_address,
            str(port),
            scheme,
            rendered.config_id,
            "503" if vhost.disabled else "",
            str(self.int_setting("probe_timeout")),
            *self.service_args(),
        ]
        url = f"{scheme}://{vhost.primary}:{port}/"
        result = await run_step(
            transport,
            f"apply the vhost of {domain}",
            self._script(_APPLY),
            args,
            sudo=True,
            on_line=on_line,
            time_limit=self.int_setting("probe_timeout") + 300,
        )
        if not result.ok:
            code = result.exit_code or 0
            stage = _STAGES.get(code, "apply")
            restored = code in (_EXIT_TEST, _EXIT_RELOAD, _EXIT_PROBE, _EXIT_LOCK, _EXIT_SETUP)
            raise ApplyError(
                f"{domain}: the {self.type} {stage} failed (exit {result.exit_code}); "
                + ("the previous config is back" if restored else "the config may have changed"),
                stage=stage,
                restored=restored,
                output=[*result.stdout, *result.stderr],
            )
        changed, status = _parse_result(result.stdout)
        return ApplyResult(domain, live, rendered.config_id, changed, status, url)

    async def remove_site(
        self, transport: Transport, domain: str, *, on_line: LineHandler | None = None
    ) -> bool:
        """Remove a site's vhost (and its link), test and reload; restore on failure.
        Returns whether anything was removed."""
        domain = validate_domain(domain)
        live = self.vhost_path(domain)
        # Wait until the server no longer answers with the removed config's id.
        gone = ""
        try:
            match = _CONFIG_ID_RE.search(
                (await transport.download(live, sudo=True)).decode("utf-8", "replace")
            )
            gone = match.group(1) if match else ""
        except TransportError:
            pass  # no live file: nothing to wait for
        probe = bool(gone) and self.bool_setting("probe")
        args = [
            self.lock_path, "", live, self.link_path(domain),
            domain if probe else "", self.probe_address, str(self.int_setting("http_port")),
            "http", f"!{gone}", "", str(self.int_setting("probe_timeout")), *self.service_args(),
        ]  # fmt: skip
        result = await run_step(
            transport,
            f"remove the vhost of {domain}",
            self._script(_APPLY),
            args,
            sudo=True,
            on_line=on_line,
        )
        if not result.ok:
            stage = _STAGES.get(result.exit_code or 0, "remove")
            raise ApplyError(
                f"{domain}: removing the vhost failed at the {stage}; the previous config is back",
                stage=stage,
                restored=True,
                output=[*result.stdout, *result.stderr],
            )
        changed, _ = _parse_result(result.stdout)
        return changed

    async def read_vhost(self, transport: Transport, domain: str) -> str | None:
        """The live vhost file of ``domain``, or None when there is none."""
        result = await run_step(
            transport,
            f"read the vhost of {domain}",
            '[ -e "$1" ] || exit 3\ncat -- "$1"',
            [self.vhost_path(domain)],
            sudo=True,
        )
        if result.exit_code == 3:
            return None
        if not result.ok:
            raise ServiceError(f"cannot read the vhost of {domain}", output=result.stderr)
        return "".join(line + "\n" for line in result.stdout)

    async def restore_site(
        self,
        transport: Transport,
        domain: str,
        text: str | None,
        *,
        on_line: LineHandler | None = None,
    ) -> None:
        """Put a vhost back exactly as it was (``text``, read by :meth:`read_vhost`
        before a change), or remove it (None); test and reload. Used to undo an
        applied vhost when a later step of a task fails."""
        domain = validate_domain(domain)
        if text is None:
            await self.remove_site(transport, domain, on_line=on_line)
            return
        temp = self._temp_path(domain)
        try:
            await transport.upload(text.encode("utf-8"), temp, mode=0o644, sudo=True)
        except TransportError as exc:
            raise ApplyError(
                f"{domain}: cannot upload the vhost to {temp}: {exc}",
                stage="upload",
                restored=False,
            ) from exc
        args = [
            self.lock_path, temp, self.vhost_path(domain), self.link_path(domain),
            "", self.probe_address, str(self.int_setting("http_port")), "http", "", "",
            str(self.int_setting("probe_timeout")), *self.service_args(),
        ]  # fmt: skip
        result = await run_step(
            transport,
            f"restore the vhost of {domain}",
            self._script(_APPLY),
            args,
            sudo=True,
            on_line=on_line,
        )
        if not result.ok:
            stage = _STAGES.get(result.exit_code or 0, "restore")
            raise ApplyError(
                f"{domain}: restoring the previous vhost failed at the {stage}",
                stage=stage,
                restored=False,
                output=[*result.stdout, *result.stderr],
            )

    async def check_health(
        self,
        transport: Transport,
        host: str,
        path: str = "/",
        *,
        https: bool = False,
        status: int = 200,
        contains: str = "",
        time_limit: float = 30,
    ) -> HealthResult:
        """Ask the site for ``path`` through the web server (from the server itself, the
        name pinned to the probe address) until it answers ``status`` with ``contains``
        in the body, or ``time_limit`` seconds pass."""
        if not _HEALTH_PATH_RE.fullmatch(path):
            raise ValidationError("health path", "must be a plain absolute URL path", path)
        if not _HEALTH_TEXT_RE.fullmatch(contains):
            raise ValidationError("health text", "must be plain printable ASCII", contains)
        host = validate_domain(host, wildcard=False)
        port = self.int_setting("https_port" if https else "http_port")
        scheme = "https" if https else "http"
        url = f"{scheme}://{host}:{port}{path}"
        result = await run_step(
            transport,
            f"probe {url}",
            _HEALTH,
            [host, self.probe_address, str(port), scheme, path, str(status), contains,
             str(int(time_limit))],
            time_limit=time_limit + 60,
        )  # fmt: skip
        code: int | None = None
        matched = False
        excerpt: list[str] = []
        for line in result.stdout:
            if line.startswith("cockpit-health "):
                fields = dict(p.split("=", 1) for p in line.split()[1:] if "=" in p)
                code = int(fields["status"]) if fields.get("status", "").isdigit() else None
                matched = fields.get("match") == "1"
            elif line.startswith("| "):
                excerpt.append(sanitize_line(line[2:]))
        return HealthResult(
            url, code, matched, result.ok and code == status and matched, "\n".join(excerpt)
        )

    async def reload(self, transport: Transport, *, on_line: LineHandler | None = None) -> None:
        """Test the config and reload the server (after a certificate renewal, say)."""
        result = await run_step(
            transport,
            f"reload {self.type}",
            self._script(_RELOAD),
            [self.lock_path, *self.service_args()],
            sudo=True,
            on_line=on_line,
        )
        if not result.ok:
            stage = _STAGES.get(result.exit_code or 0, "reload")
            raise ServiceError(
                f"{self.type}: the {stage} failed", output=[*result.stdout, *result.stderr]
            )

    async def config_test(self, transport: Transport) -> Check:
        name = f"{self.label}: config test"
        try:
            result = await run_step(
                transport, name, self._script(_TEST), self.service_args(), sudo=True, time_limit=120
            )
        except (ServiceError, TransportError) as exc:
            return Check.failed(name, str(exc))
        if result.ok:
            return Check.passed(name, "the configuration test passed")
        lines = [*result.stdout, *result.stderr]
        return Check.failed(name, "the configuration test failed: " + " / ".join(lines[-5:]))

    async def probe_tool_check(self, transport: Transport) -> Check:
        """The apply probe needs curl (or wget) on the server."""
        name = f"{self.label}: probe tool"
        if not self.bool_setting("probe"):
            return Check.skipped(name, "probing is off (probe: false)")
        result = await run_step(transport, name, _PROBE_TOOL, time_limit=60)
        if result.ok and result.stdout:
            return Check.passed(name, result.stdout[-1])
        return Check.failed(
            name,
            "neither curl nor wget is installed: applying a vhost probes the site with one "
            "(apt-get install curl), or set probe: false",
        )

    async def probe(
        self, transport: Transport, host: str, *, https: bool = False, time_limit: float = 10
    ) -> ProbeResult:
        """One HTTP request from the server to its own listen address, with ``host``."""
        port = self.int_setting("https_port" if https else "http_port")
        scheme = "https" if https else "http"
        script = r"""
host=$1 addr=$2 port=$3 scheme=$4
case $addr in *:*) addr="[$addr]" ;; esac
curl -sS -k -o /dev/null -D - --max-time 5 --resolve "$host:$port:$addr" -- "$scheme://$host:$port/"
"""
        result = await run_step(
            transport,
            f"probe {host}",
            script,
            [validate_domain(host, wildcard=True), self.probe_address, str(port), scheme],
            time_limit=time_limit,
        )
        status, config_id = _parse_headers(result.stdout)
        return ProbeResult(f"{scheme}://{host}:{port}/", status, config_id)


def _block(
    listen: list[str],
    ssl: bool,
    names: list[str],
    *,
    redirect_to: str = "",
    to_https: bool = False,
) -> dict[str, Any]:
    return {
        "listen": listen,
        "ssl": ssl,
        "names": names,
        "redirect_to": redirect_to,
        "to_https": to_https,
        "content": not redirect_to and not to_https,
    }


def _parse_result(lines: list[str]) -> tuple[bool, int | None]:
    for line in reversed(lines):
        if line.startswith("cockpit-result "):
            fields = dict(part.split("=", 1) for part in line.split()[1:] if "=" in part)
            status = fields.get("status", "")
            return fields.get("changed") == "1", int(status) if status.isdigit() else None
    return True, None


def _parse_headers(lines: list[str]) -> tuple[int | None, str | None]:
    status: int | None = None
    config_id: str | None = None
    for raw in lines:
        line = raw.strip()
        if line.startswith("HTTP/"):
            parts = line.split()
            if len(parts) > 1 and parts[1].isdigit():
                status = int(parts[1])
        elif line.lower().startswith(CONFIG_HEADER.lower() + ":"):
            config_id = line.split(":", 1)[1].strip()
    return status, config_id
