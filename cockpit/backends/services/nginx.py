"""nginx: vhosts in ``sites-available`` linked from ``sites-enabled`` (Debian's layout).

The defaults are a stock Debian/Ubuntu nginx; a server (or a test bed running its own
nginx master from a private tree) overrides them in the service's settings::

    Service("http", "nginx", {"main_conf": "/srv/nginx/nginx.conf",
                              "sites_dir": "/srv/nginx/sites", "enabled_dir": "",
                              "listen_address": "127.0.0.2", "http_port": 8080})
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Final

from cockpit.backends.services.base import Check, Detected, Setting, SettingKind, run_step
from cockpit.backends.services.http import HttpService
from cockpit.backends.transport import Transport, TransportError

__all__ = ["NginxService"]

_DETECT: Final = r"""
bin=$1
command -v -- "$bin" >/dev/null 2>&1 || exit 3
command -v -- "$bin"
"$bin" -v 2>&1
"""


class NginxService(HttpService):
    type: ClassVar[str] = "nginx"
    description: ClassVar[str] = "nginx web server"
    template: ClassVar[str] = "nginx/vhost.conf.j2"
    settings_spec: ClassVar[Mapping[str, Setting]] = {
        **HttpService.common_settings,
        "binary": Setting(SettingKind.WORD, "nginx", "the nginx program"),
        "main_conf": Setting(SettingKind.PATH, "/etc/nginx/nginx.conf", "the main config file"),
        "sites_dir": Setting(
            SettingKind.PATH, "/etc/nginx/sites-available", "where vhost files are written"
        ),
        "enabled_dir": Setting(
            SettingKind.OPTIONAL_PATH,
            "/etc/nginx/sites-enabled",
            "where vhosts are linked to be enabled (empty: sites_dir is included directly)",
        ),
        "log_dir": Setting(SettingKind.PATH, "/var/log/nginx", "where per-site logs go"),
        "reload": Setting(SettingKind.CHOICE, "signal", "how to reload", ("signal", "systemctl")),
        "unit": Setting(SettingKind.WORD, "nginx", "the systemd unit (reload = systemctl)"),
    }

    service_vars: ClassVar[str] = "svc_bin=$1 svc_main=$2 svc_mode=$3 svc_unit=$4\nshift 4\n"
    service_functions: ClassVar[str] = r"""
svc_test() { "$svc_bin" -t -q -c "$svc_main"; }
svc_reload() {
    case $svc_mode in
        systemctl) systemctl reload -- "$svc_unit" ;;
        *) "$svc_bin" -c "$svc_main" -s reload ;;
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

    async def detect(self, transport: Transport) -> Detected:
        result = await run_step(transport, "detect nginx", _DETECT, [self.setting("binary")])
        if not result.ok or not result.stdout:
            return Detected(False)
        version = None
        for line in result.stdout[1:]:
            if "nginx/" in line:
                version = line.split("nginx/", 1)[1].split()[0]
        return Detected(True, version, result.stdout[0])

    async def check(self, transport: Transport) -> list[Check]:
        checks: list[Check] = []
        try:
            detected = await self.detect(transport)
        except TransportError as exc:
            return [Check.failed(f"{self.label}: installed", str(exc))]
        if not detected.installed:
            return [Check.failed(f"{self.label}: installed", f"{self.setting('binary')} not found")]
        checks.append(
            Check.passed(
                f"{self.label}: installed", f"nginx {detected.version}", version=detected.version
            )
        )
        checks.append(await self.config_test(transport))
        checks.append(await self.probe_tool_check(transport))
        return checks
