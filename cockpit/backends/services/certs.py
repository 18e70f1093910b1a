"""Certificates for HTTPS sites: self-signed (openssl on the server) or ACME (lego).

Every site's certificate lives at the same place whatever its source
(:meth:`HttpService.certificate_paths`): ``<root>/certs/<domain>/fullchain.pem`` and
``privkey.pem`` (0600), replaced atomically (temp file, rename).

- :class:`SelfSigned` makes an EC P-256 certificate with ``openssl req -x509``.
- :class:`Acme` runs `lego <https://go-acme.github.io/lego/>`_ (Debian package
  ``lego``) on the server with the HTTP-01 challenge in webroot mode: the token files
  go to ``<root>/www/acme``, which every Cockpit vhost serves at
  ``/.well-known/acme-challenge/``. Its account and state stay in
  ``<root>/certs/acme/lego`` (0700).

:meth:`CertificateAuthority.ensure` converges: a missing certificate, one that does not
cover the site's names, one from the other kind of authority, or one expiring within
``renew_days`` is (re)issued and the web server reloaded; a valid one is left alone.
Expiry is tracked through :class:`CertificateInfo` (``not_after``, ``days_left``). A
failure raises :class:`CertificateError` with the client's output, and leaves the
certificate in place untouched.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Final

from cockpit.backends.services.base import ServiceError, run_step
from cockpit.backends.services.http import CertificatePaths, HttpService
from cockpit.backends.transport import LineHandler, Transport
from cockpit.model import Site, validate_domain

__all__ = [
    "Acme",
    "CertificateAuthority",
    "CertificateError",
    "CertificateInfo",
    "EnsureResult",
    "IssueStep",
    "SelfSigned",
    "authority_for",
    "read_certificate",
    "site_names",
]

_READ: Final = r"""
[ -e "$1" ] || exit 3
openssl x509 -in "$1" -noout -subject -issuer -serial -startdate -enddate \
    -fingerprint -sha256 -ext subjectAltName -nameopt RFC2253
"""

#: Install a key and certificate atomically: args key_src crt_src key_dest crt_dest.
_INSTALL: Final = r"""
install_pair() {
    ksrc=$1 csrc=$2 kdst=$3 cdst=$4
    d=$(dirname -- "$kdst")
    mkdir -p -m 700 -- "$d" || return 1
    kt=$(mktemp -- "$d/.privkey.XXXXXX") && ct=$(mktemp -- "$d/.fullchain.XXXXXX") || return 1
    if cat -- "$ksrc" > "$kt" && chmod 600 -- "$kt" && cat -- "$csrc" > "$ct" &&
        chmod 644 -- "$ct" && sync -- "$kt" "$ct" 2>/dev/null; then
        mv -f -- "$kt" "$kdst" && mv -f -- "$ct" "$cdst" && return 0
    fi
    rm -f -- "$kt" "$ct"
    return 1
}
"""

_SELF_SIGNED: Final = (
    _INSTALL
    + r"""
key=$1 crt=$2 days=$3 cn=$4
shift 4
san=
for name do san="${san:+$san,}DNS:$name"; done
umask 077
work=$(mktemp -d) || exit 1
trap 'rm -rf -- "$work"' EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$work/key.pem" -out "$work/crt.pem" -days "$days" \
    -subj "/CN=$cn" -addext "subjectAltName=$san" -addext "basicConstraints=critical,CA:FALSE" \
    2>&1 || exit 1
install_pair "$work/key.pem" "$work/crt.pem" "$key" "$crt" || exit 1
"""
)

_LEGO: Final = (
    _INSTALL
    + r"""
state=$1 server=$2 email=$3 webroot=$4 ca=$5 key=$6 crt=$7 domain=$8
shift 8
command -v lego >/dev/null 2>&1 || { echo "cockpit: lego is not installed (apt-get install lego)" >&2; exit 127; }
if [ -n "$ca" ]; then LEGO_CA_CERTIFICATES=$ca; export LEGO_CA_CERTIFICATES; fi
umask 022
mkdir -p -m 755 -- "$webroot/.well-known/acme-challenge" || exit 1
umask 077
mkdir -p -m 700 -- "$state" || exit 1
first=1
for name do
    # "for" expanded the names already: rebuilding "$@" as we go is safe.
    if [ "$first" = 1 ]; then set --; first=0; fi
    set -- "$@" -d "$name"
done
umask 022
lego --accept-tos --server "$server" --email "$email" --path "$state" \
    --http --http.webroot "$webroot" --key-type ec256 "$@" run 2>&1 || exit 1
umask 077
install_pair "$state/certificates/$domain.key" "$state/certificates/$domain.crt" "$key" "$crt" ||
    { echo "cockpit: lego succeeded but its files are missing" >&2; exit 1; }
"""
)


@dataclass(frozen=True, slots=True)
class IssueStep:
    """How an authority makes a certificate on the server: a script that installs the
    key and certificate at their paths, its arguments, and what its failure says
    (``{exit_code}`` is replaced by the script's exit status)."""

    what: str
    script: str
    args: list[str]
    time_limit: float
    failure: str


class CertificateError(ServiceError):
    """A certificate could not be issued or read; the old one (if any) is untouched."""


@dataclass(frozen=True, slots=True)
class CertificateInfo:
    """What a certificate on a server says about itself."""

    path: str
    subject: str
    issuer: str
    names: tuple[str, ...]
    serial: str
    fingerprint: str
    not_before: datetime
    not_after: datetime

    @property
    def self_signed(self) -> bool:
        return self.subject == self.issuer

    def days_left(self, now: datetime | None = None) -> float:
        delta = self.not_after - (now or datetime.now(UTC))
        return delta.total_seconds() / 86400

    def expires_within(self, days: float, now: datetime | None = None) -> bool:
        return self.days_left(now) <= days

    def covers(self, names: Sequence[str]) -> bool:
        return set(names) <= set(self.names)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "subject": self.subject,
            "issuer": self.issuer,
            "names": list(self.names),
            "serial": self.serial,
            "fingerprint": self.fingerprint,
            "not_before": self.not_before.isoformat(),
            "not_after": self.not_after.isoformat(),
            "days_left": round(self.days_left(), 2),
        }


@dataclass(frozen=True, slots=True)
class EnsureResult:
    info: CertificateInfo
    issued: bool
    reason: str  # why it was (re)issued, or why not

    def to_json(self) -> dict[str, Any]:
        return {"issued": self.issued, "reason": self.reason, "certificate": self.info.to_json()}


def _date(value: str) -> datetime:
    # "Nov 25 21:36:22 2031 GMT" (openssl pads single-digit days with a space)
    return datetime.strptime(" ".join(value.split()), "%b %d %H:%M:%S %Y %Z").replace(tzinfo=UTC)


def parse_x509(path: str, lines: Sequence[str]) -> CertificateInfo:
    fields: dict[str, str] = {}
    names: list[str] = []
    in_san = False
    for raw in lines:
        line = raw.strip()
        if in_san and line:
            names += [p.strip()[4:] for p in line.split(",") if p.strip().startswith("DNS:")]
            in_san = False
            continue
        if line.startswith("X509v3 Subject Alternative Name"):
            in_san = True
            continue
        key, eq, value = line.partition("=")
        if eq:
            fields[key.strip().lower()] = value.strip()
    try:
        return CertificateInfo(
            path=path,
            subject=fields.get("subject", ""),
            issuer=fields.get("issuer", ""),
            names=tuple(names),
            serial=fields.get("serial", ""),
            fingerprint=fields.get("sha256 fingerprint", ""),
            not_before=_date(fields["notbefore"]),
            not_after=_date(fields["notafter"]),
        )
    except (KeyError, ValueError) as exc:
        raise CertificateError(f"cannot read the certificate {path}: {exc}", output=lines) from exc


async def read_certificate(transport: Transport, path: str) -> CertificateInfo | None:
    """The certificate at ``path`` on the server, or None when there is none."""
    result = await run_step(transport, f"read {path}", _READ, [path], sudo=True, time_limit=60)
    if result.exit_code == 3:
        return None
    if not result.ok:
        raise CertificateError(f"cannot read the certificate {path}", output=result.stderr)
    return parse_x509(path, result.stdout)


def site_names(site: Site) -> list[str]:
    """The names a site's certificate must cover: its domain first, then its aliases."""
    return [site.domain, *site.aliases]


class CertificateAuthority(abc.ABC):
    """Issues certificates for the sites of one http service."""

    name: ClassVar[str]

    def __init__(self, http: HttpService) -> None:
        self.http = http

    def paths(self, domain: str) -> CertificatePaths:
        return self.http.certificate_paths(domain)

    @abc.abstractmethod
    def issued_by_us(self, info: CertificateInfo) -> bool:
        """Whether ``info`` comes from this kind of authority."""

    @abc.abstractmethod
    def issue_step(self, domain: str, names: Sequence[str], paths: CertificatePaths) -> IssueStep:
        """How to issue a certificate for ``names`` (validated, ``domain`` first) and
        install it at ``paths``."""

    async def issue(
        self,
        transport: Transport,
        domain: str,
        names: Sequence[str],
        *,
        on_line: LineHandler | None = None,
    ) -> CertificateInfo:
        """Issue a certificate for ``names`` (``domain`` first) and install it."""
        domain = validate_domain(domain)
        names = _names(domain, names)
        step = self.issue_step(domain, names, self.paths(domain))
        result = await run_step(
            transport,
            step.what,
            step.script,
            step.args,
            sudo=True,
            on_line=on_line,
            time_limit=step.time_limit,
        )
        if not result.ok:
            raise CertificateError(
                f"{domain}: {step.failure.format(exit_code=result.exit_code)}",
                output=[*result.stdout, *result.stderr],
            )
        info = await self.status(transport, domain)
        if info is None:
            raise CertificateError(f"{domain}: the new certificate is missing")
        return info

    async def status(self, transport: Transport, domain: str) -> CertificateInfo | None:
        return await read_certificate(transport, self.paths(domain).certificate)

    async def ensure(
        self,
        transport: Transport,
        domain: str,
        names: Sequence[str],
        *,
        renew_days: float = 30,
        reload: bool = True,
        on_line: LineHandler | None = None,
    ) -> EnsureResult:
        """Issue or renew when due (see the module doc); reload the web server after."""
        domain = validate_domain(domain)
        names = _names(domain, names)
        current = await self.status(transport, domain)
        if current is None:
            reason = "no certificate yet"
        elif not current.covers(names):
            reason = f"the certificate does not cover {', '.join(sorted(set(names) - set(current.names)))}"
        elif not self.issued_by_us(current):
            reason = f"the certificate is not from {self.name}"
        elif current.expires_within(renew_days):
            reason = f"the certificate expires in {current.days_left():.1f} days"
        else:
            return EnsureResult(current, False, f"valid for {current.days_left():.0f} more days")
        info = await self.issue(transport, domain, names, on_line=on_line)
        if reload:
            await self.http.reload(transport, on_line=on_line)
        return EnsureResult(info, True, reason)


def _names(domain: str, names: Sequence[str]) -> list[str]:
    out = [domain]
    for name in names:
        checked = validate_domain(name, "certificate name", wildcard=True)
        if checked not in out:
            out.append(checked)
    return out


class SelfSigned(CertificateAuthority):
    """A self-signed certificate made by openssl on the server."""

    name: ClassVar[str] = "selfsigned"
    days: ClassVar[int] = 825

    def issued_by_us(self, info: CertificateInfo) -> bool:
        return info.self_signed

    def issue_step(self, domain: str, names: Sequence[str], paths: CertificatePaths) -> IssueStep:
        return IssueStep(
            f"make a self-signed certificate for {domain}",
            _SELF_SIGNED,
            [paths.key, paths.certificate, str(self.days), domain, *names],
            time_limit=120,
            failure="openssl could not make a certificate",
        )


class Acme(CertificateAuthority):
    """ACME (Let's Encrypt or any RFC 8555 server) through lego, HTTP-01 by webroot."""

    name: ClassVar[str] = "acme"

    @property
    def state_dir(self) -> str:
        return f"{self.http.paths.certs}/acme/lego"

    def issued_by_us(self, info: CertificateInfo) -> bool:
        return not info.self_signed

    def issue_step(self, domain: str, names: Sequence[str], paths: CertificatePaths) -> IssueStep:
        email = self.http.setting("acme_email")
        if not email:
            raise CertificateError(
                f"{domain}: ACME needs a contact address: set acme_email in the settings of "
                f"{self.http.server.name}'s {self.http.label} service"
            )
        return IssueStep(
            f"get a certificate for {domain} from {self.http.setting('acme_directory')}",
            _LEGO,
            [
                self.state_dir,
                self.http.setting("acme_directory"),
                email,
                self.http.paths.acme_webroot,
                self.http.setting("acme_ca_bundle"),
                paths.key,
                paths.certificate,
                domain,
                *names,
            ],
            time_limit=600,
            failure="the ACME server did not issue a certificate (lego exit {exit_code})",
        )


def authority_for(http: HttpService) -> CertificateAuthority:
    """The authority an http service's settings name (``certificates``)."""
    if http.setting("certificates") == "selfsigned":
        return SelfSigned(http)
    return Acme(http)
