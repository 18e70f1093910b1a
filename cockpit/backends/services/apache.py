"""Apache httpd 2.4: vhosts in ``sites-available`` linked from ``sites-enabled`` (Debian).

The config test is ``apache2ctl -t`` (``-f MAIN`` when ``main_conf`` is set), the reload
``apache2ctl -k graceful`` (or ``systemctl reload apache2``). The vhost template needs
mod_headers (the probe's ``X-Cockpit-Config`` header) and mod_alias; mod_ssl for
HTTPS and mod_proxy_fcgi for PHP. :meth:`ApacheService.check` says which are missing.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import ClassVar, Final

from cockpit.backends.services.base import Check, Detected, Setting, SettingKind, run_step
from cockpit.backends.services.http import HttpService
from cockpit.backends.transport import Transport, TransportError

__all__ = ["ApacheService"]

#: Modules the vhost template cannot work without, and those some sites need.
REQUIRED_MODULES: Final = ("headers_module", "alias_module", "dir_module", "authz_core_module")
OPTIONAL_MODULES: Final = ("ssl_module", "proxy_fcgi_module", "mime_module")

_DETECT: Final = r"""
svc_bin=$1 svc_main=$2
for b in "$svc_bin" apache2 httpd; do
    if command -v -- "$b" >/dev/null 2>&1; then
        command -v -- "$b"
        if [ -n "$svc_main" ]; then "$b" -f "$svc_main" -v 2>&1; else "$b" -v 2>&1; fi
        exit 0
    fi
done
exit 3
"""

_MODULES: Final = r"""
#@SERVICE@
if [ -n "$svc_main" ]; then "$svc_bin" -f "$svc_main" -M 2>&1; else "$svc_bin" -M 2>&1; fi
"""


class ApacheService(HttpService):
    type: ClassVar[str] = "apache"
    description: ClassVar[str] = "Apache httpd 2.4"
    template: ClassVar[str] = "apache/vhost.conf.j2"
    settings_spec: ClassVar[Mapping[str, Setting]] = {
        **HttpService.common_settings,
        "binary": Setting(
            SettingKind.WORD, "apache2ctl", "apache2ctl, apachectl or the httpd binary"
        ),
        "main_conf": Setting(
            SettingKind.OPTIONAL_PATH, "", "the main config file (empty: the binary's default)"
        ),
        "sites_dir": Setting(
            SettingKind.PATH, "/etc/apache2/sites-available", "where vhost files are written"
        ),
        "enabled_dir": Setting(
            SettingKind.OPTIONAL_PATH,
            "/etc/apache2/sites-enabled",
            "where vhosts are linked to be enabled (empty: sites_dir is included directly)",
        ),
        "log_dir": Setting(SettingKind.PATH, "/var/log/apache2", "where per-site logs go"),
        "reload": Setting(
            SettingKind.CHOICE, "graceful", "how to reload", ("graceful", "systemctl")
        ),
        "unit": Setting(SettingKind.WORD, "apache2", "the systemd unit (reload = systemctl)"),
    }

    service_vars: ClassVar[str] = "svc_bin=$1 svc_main=$2 svc_mode=$3 svc_unit=$4\nshift 4\n"
    service_functions: ClassVar[str] = r"""
svc_apache() {
    if [ -n "$svc_main" ]; then "$svc_bin" -f "$svc_main" "$@"; else "$svc_bin" "$@"; fi
}
svc_test() { svc_apache -t; }
svc_reload() {
    case $svc_mode in
        systemctl) systemctl reload -- "$svc_unit" ;;
        *) svc_apache -k graceful ;;
    esac
}
"""

    def service_args(self) -> list[str]:
        return [
            self.setting("binary"),
            self.setting("main_conf"),
            self.setting("reload"),
            self.setting("unit"),
        ]

    def listen(self, port: int) -> str:
        address = self.setting("listen_address")
        if not address:
            return f"*:{port}"
        if ":" in address:
            return f"[{ipaddress.ip_address(address)}]:{port}"
        return f"{address}:{port}"

    async def detect(self, transport: Transport) -> Detected:
        result = await run_step(
            transport,
            "detect apache",
            _DETECT,
            [self.setting("binary"), self.setting("main_conf")],
            sudo=True,
        )
        if not result.ok or not result.stdout:
            return Detected(False)
        version = None
        for line in result.stdout[1:]:
            if "Apache/" in line:
                version = line.split("Apache/", 1)[1].split()[0]
        return Detected(True, version, result.stdout[0])

    async def modules(self, transport: Transport) -> set[str]:
        result = await run_step(
            transport, "list apache modules", self._script(_MODULES), self.service_args(), sudo=True
        )
        return {line.split()[0] for line in result.stdout if line.startswith(" ") and line.split()}

    async def check(self, transport: Transport) -> list[Check]:
        name = f"{self.label}: installed"
        try:
            detected = await self.detect(transport)
        except TransportError as exc:
            return [Check.failed(name, str(exc))]
        if not detected.installed:
            return [Check.failed(name, f"{self.setting('binary')} not found")]
        checks = [Check.passed(name, f"Apache {detected.version}", version=detected.version)]
        test = await self.config_test(transport)
        checks.append(test)
        if test.ok:
            loaded = await self.modules(transport)
            missing = [m for m in REQUIRED_MODULES if m not in loaded]
            absent = [m for m in OPTIONAL_MODULES if m not in loaded]
            mods = f"{self.label}: modules"
            if missing:
                checks.append(
                    Check.failed(
                        mods,
                        "missing "
                        + ", ".join(missing)
                        + " (a2enmod "
                        + " ".join(m.removesuffix("_module") for m in missing)
                        + ")",
                    )
                )
            else:
                note = f"not loaded: {', '.join(absent)}" if absent else "all loaded"
                checks.append(Check.passed(mods, note, missing_optional=absent))
        checks.append(await self.probe_tool_check(transport))
        return checks
