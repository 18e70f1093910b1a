"""The domain model's validation: a hostile corpus, normalisation of valid values,
the error type, and property tests (hypothesis) over arbitrary text.

Every hostile table is checked as a whole: a test collects the values a validator
accepted and asserts that list is empty, so a failure names every value that got in.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cockpit.model import (
    Backup,
    Client,
    DbEngine,
    Platform,
    Server,
    Service,
    Site,
    ValidationError,
    derive_db_name,
    derive_db_user,
    derive_unix_user,
    validate_address,
    validate_db_identifier,
    validate_domain,
    validate_email,
    validate_environment,
    validate_hostname,
    validate_name,
    validate_path,
    validate_port,
    validate_type_name,
    validate_unix_name,
    validate_url,
)

ROOT = "/srv/root"
SHA = "0" * 64
WHEN = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def punycode(ulabel: str) -> str:
    """The raw ``xn--`` form of a label, with none of IDNA's checks (to smuggle it in)."""
    return "xn--" + ulabel.encode("punycode").decode("ascii")


# ---------------------------------------------------------------------------
# The hostile corpus
# ---------------------------------------------------------------------------

#: Characters no validator accepts anywhere in a value.
UNIVERSAL_BAD: dict[str, str] = {
    "newline": "\n",
    "cr": "\r",
    "crlf": "\r\n",
    "tab": "\t",
    "vtab": "\x0b",
    "formfeed": "\x0c",
    "nul": "\x00",
    "soh": "\x01",
    "esc": "\x1b",
    "del": "\x7f",
    "nel": "\x85",
    "semicolon": ";",
    "lbrace": "{",
    "rbrace": "}",
    "dollar-paren": "$(id)",
    "dollar-brace": "${IFS}",
    "backtick": "`id`",
    "squote": "'",
    "dquote": '"',
    "backslash": "\\",
    "pipe": "|",
    "gt": ">",
    "lt": "<",
    "bang": "!",
    "caret": "^",
    "lparen": "(",
    "rparen": ")",
    "lbracket": "[",
    "rbracket": "]",
    "star": "*",
    "nbsp": "\u00a0",
    "soft-hyphen": "\u00ad",
    "zwsp": "\u200b",
    "zwnj": "\u200c",
    "zwj": "\u200d",
    "word-joiner": "\u2060",
    "bom": "\ufeff",
    "rlo": "\u202e",
    "lri": "\u2066",
    "line-sep": "\u2028",
    "para-sep": "\u2029",
    "ideographic-space": "\u3000",
    "hangul-filler": "\u3164",
    "fullwidth-semicolon": "\uff1b",
}

#: Characters an identifier (name, Unix user, database, environment, domain, type) never
#: holds, though a path, URL, e-mail address or setting may.
IDENT_BAD: dict[str, str] = {
    "space": " ",
    "amp": "&",
    "question": "?",
    "hash": "#",
    "at": "@",
    "percent": "%",
    "colon": ":",
    "slash": "/",
    "equals": "=",
    "comma": ",",
    "plus": "+",
    "tilde": "~",
    "cyrillic-a": "\u0430",  # mixes scripts in a domain label
    "fullwidth-a": "\uff41",
}
#: Letters a name is never made of, though an internationalised domain may be.
ASCII_IDENT_BAD: dict[str, str] = {"e-acute": "é", "han": "屋", "greek-alpha": "α"}


def spliced(base: str, bad: Iterable[str]) -> list[str]:
    """``base`` with each bad piece put in front, in the middle and at the end."""
    mid = len(base) // 2
    out = []
    for piece in bad:
        out += [piece + base, base[:mid] + piece + base[mid:], base + piece]
    return out


#: Hand-written hostile values, by what they pretend to be.
DOMAINS_BAD: list[str] = [
    "",
    " example.com",
    "example.com ",
    "exa mple.com",
    "example.com\n",
    "example.com\r\nHost: evil.com",
    "example.com;rm -rf /",
    "example.com{",
    "$(reboot).example.com",
    "`id`.example.com",
    "'example.com'",
    '"example.com"',
    "example\\.com",
    "example.com|id",
    "example.com&",
    "example.com>/etc/passwd",
    "<x>.example.com",
    "ex*ample.com",
    "example?.com",
    "example.com#",
    "exam\x00ple.com",
    "exam\x1bple.com",
    "exam\u200bple.com",
    "exam\u200dple.com",
    "\ufeffexample.com",
    "\u202eexample.com",
    "moc.elpmaxe\u202e",
    "ex\u00adample.com",
    "ex\u034fample.com",  # combining grapheme joiner, ignored by UTS #46
    "\u3164.example.com",
    "ｅｘａｍｐｌｅ.com",
    "example．com",
    "example。com",
    "ﬁle.example.com",
    "аррӏе.com",
    "xn--80ak6aa92e.com",  # the A-label of "аррӏе"
    "pаypal.com",
    punycode("pаypal") + ".com",
    "gοοgle.com",
    punycode("gοοgle") + ".com",
    "ροκ.com",
    "օօ.com",
    "שלוםabc.com",
    "☃.com",
    "example.com.",
    "example..com",
    ".example.com",
    "a" * 64 + ".com",
    ".".join(["a" * 63] * 4) + ".com",  # 259 characters
    "-example.com",
    "example-.com",
    "example.-com",
    "xn--.com",
    "xn--a.com",
    "xn--zz-.com",
    "xn--bcher-kva-.example",
    "ab--cd.example.com",
    "zz--top.com",
    "my_site.com",
    "_dmarc.example.com",
    "1.2.3.4",
    "127.1",
    "example.123",
    "0x7f.0x0.0x0.0x1",
    "example.com/",
    "example.com:80",
    "user@example.com",
    "http://example.com",
    "example.com\x85",
    "example.com\u2028",
    "*",
    "*.",
    ".",
]
#: Fine host names, but a site's domain needs two labels.
DOMAINS_SINGLE_LABEL: list[str] = ["example", "localhost", "com", "xn--bcher-kva"]
#: Wildcards that are wrong even where a wildcard is allowed.
WILDCARDS_BAD: list[str] = [
    "*.com",
    "*.*.example.com",
    "**.example.com",
    "*example.com",
    "a.*.example.com",
    "example.*",
    "*.example.com.",
    "*\n.example.com",
    ".*.example.com",
    "* .example.com",
    "*.exa mple.com",
    "*.аррӏе.com",
]
NAMES_BAD: list[str] = [
    "",
    "Web01",
    "-web",
    ".web",
    "_web",
    "..",
    "../etc",
    "web/01",
    "web 01",
    " web",
    "web ",
    "web\n",
    "a" * 64,
    "wéb",
    "ｗｅｂ",
    "wеb",  # Cyrillic е
    "web;x",
    "$(id)",
    "`id`",
    "web@host",
    "web:1",
    "web*",
    "web\u200b",
]
UNIX_BAD: list[str] = [
    "",
    "Root",
    "-oProxyCommand=sh",
    "1user",
    "user name",
    "a" * 33,
    "user:x",
    "user/x",
    "user.name",
    "user$",
    "usér",
    "r\u200boot",
    "root\n",
    "..",
    "user@host",
    "rооt",  # Cyrillic о
]
DB_BAD: list[str] = [
    "",
    "Shop",
    "1shop",
    "_shop",
    "shop-db",
    "shop.db",
    "shop;drop database x",
    "shop`",
    "shop db",
    "shöp",
    "shop\n",
    "shop\x00",
    "mysql",
    "information_schema",
    "performance_schema",
    "sys",
    "postgres",
    "template0",
    "template1",
    "public",
    "current_user",
    "a" * 65,
]
ENVIRONMENTS_BAD: list[str] = [
    "",
    "Prod",
    "prod ",
    "pro d",
    "-prod",
    "1prod",
    "prod_x",
    "prod\n",
    "a" * 33,
    "prød",
    "prod;",
    "prod\u202e",
]
PATHS_BAD: list[str] = [
    "",
    "srv/root/x",
    "./x",
    "~/x",
    "\\srv\\root",
    f"{ROOT}/../etc",
    f"{ROOT}/x/../../etc",
    f"{ROOT}/..",
    f"{ROOT}/./x",
    f"{ROOT}/x/.",
    f"{ROOT}//x",
    f"{ROOT}/",
    "//srv/root",
    "/srv/rootx",
    "/srv/roo",
    "/srv",
    "/",
    "/etc/passwd",
    f"{ROOT}/x\n",
    f"{ROOT}/x;rm -rf /",
    f"{ROOT}/$(id)",
    f"{ROOT}/`id`",
    f"{ROOT}/a b",
    f"{ROOT}/~x",
    f"{ROOT}/x*",
    f"{ROOT}/x?",
    f"{ROOT}/\u200bx",
    f"{ROOT}/x\x00",
    f"{ROOT}/ü",
    f"{ROOT}/" + "a" * 256,
    ROOT + "/a" * 2100,
]
URLS_BAD: list[str] = [
    "",
    "javascript:alert(1)",
    "JAVASCRIPT:alert(1)",
    "data:text/html,<script>",
    "file:///etc/passwd",
    "ftp://example.com/",
    "//example.com/",
    "example.com",
    "http://",
    "http:///x",
    "http://user:pass@example.com/",
    "http://user@example.com/",
    "http://:pass@example.com/",
    "http://@example.com/",
    "http://example.com@evil.com/",
    "http://evil.com\\@example.com/",
    "http://exa mple.com/",
    "http://example.com/a b",
    " http://example.com/",
    "http://example.com/ ",
    "http://example.com/\r\nSet-Cookie: x=1",
    "http://example.com/%0d%0aSet-Cookie:x=1",
    "http://example.com/%0A",
    "http://example.com/%00",
    "http://example.com/?q=%7f",
    "http://example.com/'onmouseover='x",
    'http://example.com/"><script>',
    "http://example.com/<script>",
    "http://example.com/`id`",
    "http://example.com/$(id)",
    "http://example.com/;rm",
    "http://example.com/{x}",
    "http://example.com/a|b",
    "http://example.com/a\\b",
    "http://example.com/a*b",
    "http://example.com/a(b)",
    "http://example.com/a!b",
    "http://example.com/%zz",
    "http://example.com/%",
    "http://example.com/%4",
    "http://example.com/\u202e",
    "http://example.com/\u200b",
    "http://example.com/\x7f",
    "http://example.com/ü",
    "http://example.com/#\n",
    "http://example.com/?a=b;c",
    "http://example.com:0/",
    "http://example.com:65536/",
    "http://example.com:８０/",
    "http://example.com:-1/",
    "http://example.com:+80/",
    "http://example.com:80:80/",
    "http://example.com:/",
    "http://example.com:http/",
    "http://[::1/",
    "http://[1.2.3.4]/",
    "http://[fe80::1%25eth0]/",
    "http://[fe80::1%25$(id)]/",
    "http://[::1]x/",
    "http://ｅｘａｍｐｌｅ.com/",
    "http://аррӏе.com/",
    "http://xn--80ak6aa92e.com/",
    "http://example.com./",
    "http://exam_ple.com/",
    "http://127.1/",
    "http://0x7f000001/",
    "http://01.2.3.4/",
]
EMAILS_BAD: list[str] = [
    "",
    "ops",
    "@example.com",
    "ops@",
    "ops@@example.com",
    "ops@example",
    "ops@localhost",
    ".ops@example.com",
    "ops.@example.com",
    "o..ps@example.com",
    "-oProxyCommand=x@example.com",
    "-ops@example.com",
    "ops@example.com\n",
    "ops@example.com\r\nBcc: x@evil.com",
    "ops\n@example.com",
    "o ps@example.com",
    " ops@example.com",
    '"ops"@example.com',
    "ops@[127.0.0.1]",
    "ops%evil.com@example.com",
    "ops@example.com;rm",
    "ops@ex_ample.com",
    "ops@example.com.",
    "a" * 65 + "@example.com",
    "ops@аррӏе.com",
    "ops@ｅｘａｍｐｌｅ.com",
    "opş@example.com",
    "ops@xn--80ak6aa92e.com",
    "<ops@example.com>",
    "Ops <ops@example.com>",
    "ops@exam\u200bple.com",
    "o`id`@example.com",
    "o$(id)@example.com",
    "o'x@example.com",
    "o{x}@example.com",
    "o|x@example.com",
    "o&x@example.com",
    "o*x@example.com",
    "o?x@example.com",
    "o#x@example.com",
    "o/x@example.com",
    "ops@" + ".".join(["a" * 63] * 4),
]
ADDRESSES_BAD: list[str] = [
    "",
    "fe80::1%$(reboot)",
    "fe80::1%`id`",
    "fe80::1%eth0;id",
    "fe80::1%",
    "1.2.3.4;id",
    "1.2.3.4 ",
    "host name",
    "-oProxyCommand=sh",
    "127.1",
    "0x7f000001",
    "01.2.3.4",
    "1.2.3.4.5",
    "[::1]",
    "example.com.",
    "ｅｘａｍｐｌｅ.com",
]
TYPES_BAD: list[str] = ["", "Nginx", "nginx;", "1nginx", "ngi nx", "nginx-x", "a" * 33]
SETTING_KEYS_BAD: list[str] = ["", "a\nb", "A", "1a", "a-b", "a.b", "a b", "_a", "a" * 65]
SECRET_KEYS: list[str] = [
    "password",
    "db_password",
    "passwd",
    "passphrase",
    "secret",
    "client_secret",
    "token",
    "api_token",
    "apikey",
    "api_key",
    "private_key",
    "credentials",
    "pw",
    "db_pwd",
    "auth",
    "basic_auth",
    "salt",
    "hmac_salt",
    "dsn",
    "session_cookie",
    "jwt",
    "license_key",
    "ssh_keys",
]
SETTING_VALUES_BAD: list[object] = [
    " 64m",
    "64m ",
    "a" * 1025,
    1.5,
    None,
    ["x"],
    {"x": 1},
    b"x",
]

#: Base values each validator accepts, spliced with the bad characters below.
SPLICE_BASES: dict[str, str] = {
    "domain": "example.com",
    "hostname": "web-01.example.com",
    "name": "web01",
    "unix": "www-data",
    "db": "shop_db",
    "environment": "staging",
    "type": "nginx",
    "path": f"{ROOT}/site",
    "url": "https://example.com/a/b?x=1&y=2#top",
    "email": "ops@example.com",
    "address": "192.0.2.10",
    "setting": "64m",
}
HOST_KINDS = {"domain", "hostname", "address"}
ASCII_IDENT_KINDS = {"name", "unix", "db", "environment", "type"}


def generated(kind: str) -> list[str]:
    base = SPLICE_BASES[kind]
    bad = list(UNIVERSAL_BAD.values())
    if kind in HOST_KINDS | ASCII_IDENT_KINDS:
        bad += IDENT_BAD.values()
    if kind in ASCII_IDENT_KINDS:
        bad += ASCII_IDENT_BAD.values()
    return spliced(base, bad)


HAND_WRITTEN: dict[str, list[str]] = {
    "domain": DOMAINS_BAD + DOMAINS_SINGLE_LABEL + WILDCARDS_BAD,
    "hostname": [d for d in DOMAINS_BAD if d != "1.2.3.4"],
    "name": NAMES_BAD,
    "unix": UNIX_BAD,
    "db": DB_BAD,
    "environment": ENVIRONMENTS_BAD,
    "type": TYPES_BAD,
    "path": PATHS_BAD,
    # Hostile hosts too, where the URL's own delimiters cannot move them out of the host.
    "url": URLS_BAD
    + [f"https://{d}/x" for d in DOMAINS_BAD if not set(d) & set("/?#@:") and d != "1.2.3.4"],
    "email": EMAILS_BAD,
    "address": ADDRESSES_BAD,
    "setting": [],
}


def corpus(kind: str) -> list[str]:
    return HAND_WRITTEN[kind] + generated(kind)


def _db(value: object) -> object:
    """Rejected only if refused on both engines, as a database and as a user."""
    for engine in DbEngine:
        for user in (False, True):
            try:
                return validate_db_identifier(value, engine, "db", user=user)
            except ValidationError:
                pass
    raise ValidationError("db", "refused everywhere")


def _setting(value: object) -> object:
    return Service("http", "nginx", {"value": value}).settings


#: Every validator and constructor field a kind of value is fed to.
CONSUMERS: dict[str, dict[str, Callable[[Any], object]]] = {
    "domain": {
        "validate_domain": validate_domain,
        "validate_domain(wildcard)": lambda v: validate_domain(v, wildcard=True),
        "Site.domain": lambda v: Site(v, "web"),
        "Site.aliases": lambda v: Site("example.org", "web", aliases=[v]),
        "Site.redirection": lambda v: Site(v, "web", redirection=v),
        "Backup.site": lambda v: Backup(v, f"{ROOT}/b.tar", 1, SHA, WHEN),
        "derive_db_name": lambda v: derive_db_name(v, "mysql"),
        "derive_db_user": lambda v: derive_db_user(v, "pgsql"),
        "derive_unix_user": derive_unix_user,
        "Client.contact domain": lambda v: Client("acme", contact=f"ops@{v}"),
    },
    "hostname": {
        "validate_hostname": validate_hostname,
        "validate_address": validate_address,
        "Server.address": lambda v: Server("web01", v),
    },
    "name": {
        "validate_name": validate_name,
        "Server.name": lambda v: Server(v, "192.0.2.1"),
        "Platform.name": lambda v: Platform(v, "web01", "php", f"{ROOT}/p"),
        "Platform.server": lambda v: Platform("p1", v, "php", f"{ROOT}/p"),
        "Client.name": lambda v: Client(v),
        "Site.platform": lambda v: Site("example.com", v),
        "Site.client": lambda v: Site("example.com", "web", client=v),
        "Site.db_server": lambda v: Site("example.com", "web", db_server=v),
        "ssh config_host": lambda v: Server("web01", "h", ssh_options={"config_host": v}),
    },
    "unix": {
        "validate_unix_name": validate_unix_name,
        "Server.user": lambda v: Server("web01", "192.0.2.1", user=v),
        "ssh proxy_jump user": lambda v: Server("w", "h", ssh_options={"proxy_jump": f"{v}@h"}),
    },
    "db": {"validate_db_identifier": _db},
    "environment": {
        "validate_environment": validate_environment,
        "Server.environment": lambda v: Server("web01", "192.0.2.1", environment=v),
    },
    "type": {
        "validate_type_name": validate_type_name,
        "Service.type": lambda v: Service("http", v),
        "Backup.backend": lambda v: Backup("example.com", f"{ROOT}/b", 1, SHA, WHEN, backend=v),
    },
    # Some hostile paths are valid paths outside ROOT ("/etc/passwd"): the constructors do
    # not know the server's root, so their results are checked for containment here.
    "path": {
        "validate_path(within)": lambda v: validate_path(v, within=ROOT),
        "Server.root": lambda v: validate_path(Server("web01", "h", root=v).root, within=ROOT),
        "Platform.root": lambda v: validate_path(
            Platform("p1", "web01", "php", v).root, within=ROOT
        ),
        "Backup.location": lambda v: validate_path(
            Backup("example.com", v, 1, SHA, WHEN).location, within=ROOT
        ),
        "ssh identity_file": lambda v: validate_path(
            str(Server("w", "h", ssh_options={"identity_file": v}).ssh_options["identity_file"]),
            within=ROOT,
        ),
    },
    "url": {"validate_url": validate_url},
    "email": {
        "validate_email": validate_email,
        "Client.contact": lambda v: Client("acme", contact=v),
    },
    "address": {
        "validate_address": validate_address,
        "Server.address": lambda v: Server("web01", v),
    },
    "setting": {"Service.settings value": _setting},
}

CASES = [(kind, consumer) for kind, consumers in CONSUMERS.items() for consumer in consumers]


def accepted(func: Callable[[Any], object], values: Iterable[object]) -> list[object]:
    """The values ``func`` accepts. Any exception other than ValidationError propagates."""
    out = []
    for value in values:
        try:
            func(value)
        except ValidationError:
            continue
        out.append(value)
    return out


def test_corpus_is_large() -> None:
    sizes = {kind: len(corpus(kind)) for kind in CONSUMERS}
    assert sum(sizes.values()) >= 1500
    assert all(size >= 40 for size in sizes.values()), sizes


@pytest.mark.parametrize(("kind", "consumer"), CASES, ids=[f"{k}-{c}" for k, c in CASES])
def test_hostile_corpus_is_rejected(kind: str, consumer: str) -> None:
    func = CONSUMERS[kind][consumer]
    values = [v for v in corpus(kind) if v or consumer not in OPTIONAL]
    assert accepted(func, values) == []


@pytest.mark.parametrize("kind", sorted(CONSUMERS))
def test_splice_bases_are_valid(kind: str) -> None:
    """The generated corpus proves something only if its base values are accepted."""
    for func in CONSUMERS[kind].values():
        func(SPLICE_BASES[kind])


# ---------------------------------------------------------------------------
# Entities: fields that are not plain names
# ---------------------------------------------------------------------------


def server(**kw: Any) -> Server:
    return Server(**{"name": "web01", "address": "192.0.2.1", **kw})


def site(**kw: Any) -> Site:
    return Site(**{"domain": "example.com", "platform": "web", **kw})


def backup(**kw: Any) -> Backup:
    args = {"site": "example.com", "location": f"{ROOT}/b.tar", "size": 1, "sha256": SHA}
    return Backup(**{**args, "created": WHEN, **kw})


def platform(**kw: Any) -> Platform:
    return Platform(**{"name": "p1", "server": "web01", "type": "php", "root": ROOT, **kw})


ENTITY_BAD: list[tuple[str, Callable[[], object]]] = [
    ("server.port 0", lambda: server(port=0)),
    ("server.port 65536", lambda: server(port=65536)),
    ("server.port bool", lambda: server(port=True)),
    ("server.port float", lambda: server(port=22.0)),
    ("server.port '22;'", lambda: server(port="22;")),
    ("server.port arabic digits", lambda: server(port="٢٢")),
    ("server.port +22", lambda: server(port="+22")),
    ("server.port huge string", lambda: server(port="9" * 5000)),
    ("server.root /", lambda: server(root="/")),
    ("server.transport", lambda: server(transport="telnet")),
    ("server.transport upper", lambda: server(transport="SSH")),
    ("server.transport not str", lambda: server(transport=1)),
    ("ssh unknown option", lambda: server(ssh_options={"ProxyCommand": "sh"})),
    ("ssh option key newline", lambda: server(ssh_options={"sudo\n": True})),
    ("ssh option key not str", lambda: server(ssh_options={1: True})),
    ("ssh options not mapping", lambda: server(ssh_options=["sudo"])),
    ("ssh proxy_jump ;", lambda: server(ssh_options={"proxy_jump": "h;id"})),
    ("ssh proxy_jump option", lambda: server(ssh_options={"proxy_jump": "-oProxyCommand=x"})),
    ("ssh proxy_jump empty hop", lambda: server(ssh_options={"proxy_jump": "a,,b"})),
    ("ssh proxy_jump port", lambda: server(ssh_options={"proxy_jump": "h:0"})),
    ("ssh proxy_jump port text", lambda: server(ssh_options={"proxy_jump": "h:ssh"})),
    ("ssh identity ~", lambda: server(ssh_options={"identity_file": "~/.ssh/id"})),
    ("ssh identity ..", lambda: server(ssh_options={"identity_file": "/a/../b"})),
    ("ssh int negative", lambda: server(ssh_options={"connect_timeout": -1})),
    ("ssh int too big", lambda: server(ssh_options={"connect_timeout": 86401})),
    ("ssh int bool", lambda: server(ssh_options={"connect_timeout": True})),
    ("ssh int string", lambda: server(ssh_options={"connect_timeout": "10"})),
    ("ssh bool string", lambda: server(ssh_options={"sudo": "yes"})),
    ("server.services str", lambda: server(services="nginx")),
    ("server.services int", lambda: server(services=5)),
    ("server.services items", lambda: server(services=["nginx"])),
    ("server.services twice", lambda: server(services=[Service("http", "nginx")] * 2)),
    ("service.kind", lambda: Service("web", "nginx")),
    ("service.kind upper", lambda: Service("HTTP", "nginx")),
    ("service.settings list", lambda: Service("http", "nginx", ["a"])),  # type: ignore[arg-type]
    ("platform.type", lambda: platform(type="php;")),
    ("platform.release ;", lambda: platform(release="1.0;rm")),
    ("platform.release space", lambda: platform(release="1.0 beta")),
    ("platform.release long", lambda: platform(release="1" * 65)),
    ("platform.release int", lambda: platform(release=5)),
    ("platform.release newline", lambda: platform(release="1.0\n")),
    ("platform.locked int", lambda: platform(locked=1)),
    ("platform.locked str", lambda: platform(locked="yes")),
    ("client.contact int", lambda: Client("acme", contact=5)),  # type: ignore[arg-type]
    ("client.quotas unknown", lambda: Client("acme", quotas={"inodes": 1})),
    ("client.quotas key newline", lambda: Client("acme", quotas={"sites\n": 1})),
    ("client.quotas negative", lambda: Client("acme", quotas={"sites": -1})),
    ("client.quotas bool", lambda: Client("acme", quotas={"sites": True})),
    ("client.quotas str", lambda: Client("acme", quotas={"sites": "1"})),
    ("client.quotas list", lambda: Client("acme", quotas=["sites"])),  # type: ignore[arg-type]
    ("site.aliases str", lambda: site(aliases="www.example.com")),
    ("site.aliases mapping", lambda: site(aliases={"www.example.com": 1})),
    ("site.aliases int", lambda: site(aliases=5)),
    ("site.aliases own domain", lambda: site(aliases=["EXAMPLE.com"])),
    ("site.aliases twice", lambda: site(aliases=["www.example.com", "WWW.example.com"])),
    ("site.aliases twice idn", lambda: site(aliases=["bücher.de", "xn--bcher-kva.de"])),
    ("site.aliases wildcard tld", lambda: site(aliases=["*.com"])),
    ("site.domain wildcard", lambda: site(domain="*.example.com")),
    ("site.redirection elsewhere", lambda: site(redirection="evil.com")),
    (
        "site.redirection wildcard",
        lambda: site(aliases=["*.example.com"], redirection="*.example.com"),
    ),
    ("site.https", lambda: site(https="ON")),
    ("site.https bool", lambda: site(https=True)),
    ("site.status", lambda: site(status="gone")),
    ("backup.size negative", lambda: backup(size=-1)),
    ("backup.size bool", lambda: backup(size=True)),
    ("backup.size str", lambda: backup(size="1")),
    ("backup.sha256 upper", lambda: backup(sha256="A" * 64)),
    ("backup.sha256 short", lambda: backup(sha256="0" * 63)),
    ("backup.sha256 newline", lambda: backup(sha256="0" * 64 + "\n")),
    ("backup.sha256 bytes", lambda: backup(sha256=b"0" * 64)),
    ("backup.created str", lambda: backup(created="2024-05-01")),
    ("backup.created int", lambda: backup(created=0)),
    ("backup.site wildcard", lambda: backup(site="*.example.com")),
]


@pytest.mark.parametrize("build", [b for _, b in ENTITY_BAD], ids=[n for n, _ in ENTITY_BAD])
def test_entity_rejects(build: Callable[[], object]) -> None:
    with pytest.raises(ValidationError) as info:
        build()
    assert_clean(info.value)


@pytest.mark.parametrize("key", SETTING_KEYS_BAD + SECRET_KEYS)
def test_settings_keys_rejected(key: str) -> None:
    with pytest.raises(ValidationError) as info:
        Service("http", "nginx", {key: "x"})
    assert_clean(info.value)


def test_settings_values_rejected() -> None:
    values = SETTING_VALUES_BAD + corpus("setting")
    assert accepted(_setting, values) == []


def test_secret_values_are_not_echoed() -> None:
    with pytest.raises(ValidationError) as info:
        Service("db", "mysql", {"root_password": "hunter2"})
    assert "hunter2" not in str(info.value)
    assert info.value.field == "service.mysql.settings.root_password"


@pytest.mark.parametrize(
    "key", ["keepalive", "ssl_key_file", "monkey", "author", "listen_port", "max_children"]
)
def test_settings_plain_keys_accepted(key: str) -> None:
    assert Service("http", "nginx", {key: 1}).settings == {key: 1}


def test_settings_accepted_and_sorted() -> None:
    svc = Service(
        "http",
        "nginx",
        {"listen": "127.0.0.1:8080", "types": "text/html text/css", "gzip": True, "workers": 4},
    )
    assert list(svc.settings) == ["gzip", "listen", "types", "workers"]
    assert Service("http", "nginx", None).settings == {}


# ---------------------------------------------------------------------------
# Valid values: accepted and normalised
# ---------------------------------------------------------------------------

DOMAINS_GOOD: list[tuple[str, str]] = [
    ("example.com", "example.com"),
    ("Example.COM", "example.com"),
    ("www.example.co.uk", "www.example.co.uk"),
    ("123.example.com", "123.example.com"),
    ("a--b.example.com", "a--b.example.com"),
    ("abc--d.example.com", "abc--d.example.com"),
    ("0x7f.example.com", "0x7f.example.com"),
    ("bücher.example", "xn--bcher-kva.example"),
    ("BÜCHER.Example", "xn--bcher-kva.example"),
    ("bu\u0308cher.example", "xn--bcher-kva.example"),  # decomposed ü is composed
    ("xn--bcher-kva.example", "xn--bcher-kva.example"),
    ("XN--BCHER-KVA.EXAMPLE", "xn--bcher-kva.example"),
    ("straße.de", "xn--strae-oqa.de"),
    ("日本語.jp", "xn--wgv71a119e.jp"),
    ("ひらがな.jp", "xn--v8j0cwa6g.jp"),
    ("ラーメン屋.jp", "xn--4dkp5a8a7137b.jp"),  # Katakana, the prolonged mark, Han
    ("東京タワー.jp", "xn--5ck2eqb538s34z.jp"),
    ("人々.jp", "xn--u6j473g.jp"),  # Han and the iteration mark
    ("例え.テスト", "xn--r8jz45g.xn--zckzah"),  # Han and Hiragana; Katakana TLD
    ("한국어.kr", "xn--3e0bk47br7k.kr"),
    ("москва.рф", "xn--80adxhks.xn--p1ai"),
    ("a" * 63 + ".com", "a" * 63 + ".com"),
    (".".join(["a" * 63] * 3) + "." + "b" * 61, ".".join(["a" * 63] * 3) + "." + "b" * 61),
]


@pytest.mark.parametrize(("given", "expected"), DOMAINS_GOOD)
def test_domains_normalised(given: str, expected: str) -> None:
    assert validate_domain(given) == expected
    assert validate_hostname(given) == expected
    assert validate_domain(expected) == expected
    assert Site(given, "web").domain == expected
    if len(expected) <= 240:
        assert validate_url(f"https://{given}/x") == f"https://{expected}/x"
        assert validate_email(f"Ops@{given}") == f"Ops@{expected}"


def test_longest_domain_is_253() -> None:
    name = ".".join(["a" * 63] * 3) + "." + "b" * 61
    assert len(name) == 253
    with pytest.raises(ValidationError):
        validate_domain(name + "b")


@pytest.mark.parametrize("host", ["localhost", "web01", "Db-1", "xn--bcher-kva"])
def test_single_label_hostnames(host: str) -> None:
    assert validate_hostname(host) == host.lower()
    with pytest.raises(ValidationError):
        validate_domain(host)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("*.example.com", "*.example.com"),
        ("*.EXAMPLE.com", "*.example.com"),
        ("*.bücher.example", "*.xn--bcher-kva.example"),
    ],
)
def test_wildcards_only_where_allowed(given: str, expected: str) -> None:
    assert validate_domain(given, wildcard=True) == expected
    assert site(aliases=[given]).aliases == (expected,)
    for refuse in (
        lambda: validate_domain(given),
        lambda: validate_hostname(given),
        lambda: site(domain=given),
        lambda: site(aliases=[given], redirection=given),
        lambda: backup(site=given),
        lambda: derive_db_name(given, "mysql"),
    ):
        with pytest.raises(ValidationError):
            refuse()


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("192.0.2.1", "192.0.2.1"),
        ("127.0.0.1", "127.0.0.1"),
        ("::1", "::1"),
        ("2001:DB8:0:0:0:0:0:1", "2001:db8::1"),
        ("fe80::1%eth0", "fe80::1%eth0"),
        ("fe80::1%2", "fe80::1%2"),
        ("Web01.Example.com", "web01.example.com"),
        ("localhost", "localhost"),
        ("bücher.example", "xn--bcher-kva.example"),
    ],
)
def test_addresses(given: str, expected: str) -> None:
    assert validate_address(given) == expected
    assert server(address=given).address == expected


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://example.com", "https://example.com"),
        ("HTTPS://Example.COM/Path", "https://example.com/Path"),
        ("http://example.com:0080/a%2fb?x=1&y=2#f", "http://example.com:80/a%2Fb?x=1&y=2#f"),
        ("https://bücher.example/", "https://xn--bcher-kva.example/"),
        ("http://192.0.2.1:8080/", "http://192.0.2.1:8080/"),
        ("http://[::1]:8080/", "http://[::1]:8080/"),
        ("http://[2001:DB8::0:1]/", "http://[2001:db8::1]/"),
        (
            "https://example.com/~user/a_b-c.d?q=a+b,c:d@e/f",
            "https://example.com/~user/a_b-c.d?q=a+b,c:d@e/f",
        ),
        ("https://localhost:65535/", "https://localhost:65535/"),
    ],
)
def test_urls_rebuilt(given: str, expected: str) -> None:
    assert validate_url(given) == expected
    assert validate_url(expected) == expected


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://user@example.com/", "credentials"),
        ("http://user:pass@example.com/", "credentials"),
        ("javascript:alert(1)", "scheme"),
        ("http://example.com/%0d%0a", "control character"),
        ("http://example.com/%zz", "two hex digits"),
        ("http://example.com/'", "whitelist"),
        ("http://[fe80::1%25eth0]/", "scope"),
        ("http://example.com:99999/", "65535"),
    ],
)
def test_url_reasons(url: str, reason: str) -> None:
    with pytest.raises(ValidationError, match=reason) as info:
        validate_url(url, "site.url")
    assert info.value.field == "site.url"


def test_url_schemes_parameter() -> None:
    assert validate_url("ftp://example.com/f", schemes=iter(["ftp"])) == "ftp://example.com/f"
    with pytest.raises(ValidationError, match="scheme must be one of ftp"):
        validate_url("https://example.com/", schemes=iter(["ftp"]))


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("ops@example.com", "ops@example.com"),
        ("Ops.Team+cockpit@Example.COM", "Ops.Team+cockpit@example.com"),
        ("first_last-1@mail.example.co.uk", "first_last-1@mail.example.co.uk"),
        ("a@bücher.example", "a@xn--bcher-kva.example"),
    ],
)
def test_emails(given: str, expected: str) -> None:
    assert validate_email(given) == expected
    assert Client("acme", contact=given).contact == expected


@pytest.mark.parametrize(
    ("validator", "value"),
    [
        (validate_name, "web01"),
        (validate_name, "a"),
        (validate_name, "0"),
        (validate_name, "web-01.prod_x"),
        (validate_name, "a" * 63),
        (validate_unix_name, "root"),
        (validate_unix_name, "_apt"),
        (validate_unix_name, "www-data"),
        (validate_unix_name, "a" * 32),
        (validate_environment, "prod"),
        (validate_environment, "staging-2"),
        (validate_environment, "a" * 32),
        (validate_type_name, "nginx"),
        (validate_type_name, "php_fpm"),
        (lambda v: validate_path(v), "/"),
        (lambda v: validate_path(v, within=ROOT), ROOT),
        (lambda v: validate_path(v, within=ROOT), f"{ROOT}/a/b.c/d@e+f-g_h/..."),
        (lambda v: validate_path(v, within="/"), "/etc"),
        (lambda v: validate_path(v, within=ROOT), f"{ROOT}/" + "a" * 255),
    ],
)
def test_plain_values_accepted_unchanged(validator: Callable[[str], str], value: str) -> None:
    assert validator(value) == value


@pytest.mark.parametrize(
    ("engine", "user", "limit"),
    [("mysql", False, 64), ("mysql", True, 32), ("pgsql", False, 63), ("pgsql", True, 63)],
)
def test_db_identifier_limits(engine: str, user: bool, limit: int) -> None:
    name = "a" * limit
    assert validate_db_identifier(name, engine, "db", user=user) == name
    with pytest.raises(ValidationError):
        validate_db_identifier(name + "a", engine, "db", user=user)
    with pytest.raises(ValidationError):
        validate_db_identifier("shop", "oracle", "db", user=user)


def test_pg_namespace_reserved_on_postgres_only() -> None:
    assert validate_db_identifier("pg_shop", "mysql", "db", user=False) == "pg_shop"
    with pytest.raises(ValidationError, match="reserves"):
        validate_db_identifier("pg_shop", "pgsql", "db", user=True)


@pytest.mark.parametrize(
    ("port", "expected"), [(22, 22), ("22", 22), (1, 1), (65535, 65535), ("00080", 80)]
)
def test_ports(port: object, expected: int) -> None:
    assert validate_port(port) == expected


def test_entities_normalise() -> None:
    srv = server(
        address="Web01.Example.com",
        port="2222",
        services=[Service("http", "nginx"), Service("db", "mysql"), Service("db", "pgsql")],
        ssh_options={"proxy_jump": "jump@Bastion.Example.com:2200,bücher.example", "sudo": True},
    )
    assert srv.address == "web01.example.com"
    assert srv.port == 2222
    assert [(s.kind.value, s.type) for s in srv.services] == [
        ("db", "mysql"),
        ("db", "pgsql"),
        ("http", "nginx"),
    ]
    assert srv.ssh_options == {
        "proxy_jump": "jump@bastion.example.com:2200,xn--bcher-kva.example",
        "sudo": True,
    }
    assert server(services=None).services == ()

    st_ = site(
        domain="Example.com",
        aliases=("WWW.example.com", "*.Example.com"),
        redirection="www.EXAMPLE.com",
        https="required",
        status="disabled",
    )
    assert st_.aliases == ("*.example.com", "www.example.com")
    assert st_.redirection == "www.example.com"
    assert (st_.https.value, st_.status.value) == ("required", "disabled")
    assert site(aliases=None).aliases == ()
    assert site(redirection="EXAMPLE.com").redirection == "example.com"

    naive = backup(created=datetime(2024, 5, 1, 12, 0))
    assert naive.created.tzinfo is UTC
    assert platform(release=None).release == ""  # type: ignore[arg-type]
    assert platform(release="6.4.3+deb12u1~x").release == "6.4.3+deb12u1~x"
    assert Client("acme", contact=None).contact == ""  # type: ignore[arg-type]
    assert Client("acme", quotas={"sites": 5, "disk_mb": 0}).quotas == {"disk_mb": 0, "sites": 5}


# ---------------------------------------------------------------------------
# The error
# ---------------------------------------------------------------------------


def assert_clean(err: ValidationError) -> None:
    """The error names a field and a reason, and prints no control or format character."""
    assert err.field
    assert err.reason
    for text in (str(err), err.field, err.reason):
        bad = [ch for ch in text if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp")]
        assert bad == [], text
    assert len(str(err)) < 2000


def errors_of(kind: str) -> Iterator[ValidationError]:
    for func in CONSUMERS[kind].values():
        for value in corpus(kind):
            try:
                func(value)
            except ValidationError as err:
                yield err


@pytest.mark.parametrize("kind", sorted(CONSUMERS))
def test_error_messages_are_clean(kind: str) -> None:
    for err in errors_of(kind):
        assert_clean(err)


def test_error_carries_field_and_reason() -> None:
    with pytest.raises(ValidationError) as info:
        validate_domain("exa mple.com", "site.domain")
    err = info.value
    assert err.field == "site.domain"
    assert "whitespace" in err.reason
    assert err.value == "exa mple.com"
    assert str(err) == "site.domain: must not contain whitespace (got 'exa mple.com')"
    assert isinstance(err, ValueError)


def test_error_escapes_hostile_keys_in_field() -> None:
    with pytest.raises(ValidationError) as info:
        Service("http", "nginx", {"a\x1b[2J\u202eb": 1})
    assert info.value.field == "service.nginx.settings.a\\x1b[2J\\u202eb"
    assert_clean(info.value)


def test_error_shows_value_short_and_ascii() -> None:
    with pytest.raises(ValidationError) as info:
        validate_name("Ж\n" + "x" * 500)
    message = str(info.value)
    assert message.isascii()
    assert "\\u0416\\n" in message
    assert message.endswith("...')")
    assert len(message) < 200


def test_error_survives_a_value_whose_repr_fails() -> None:
    class Hostile:
        def __repr__(self) -> str:
            raise RuntimeError("no")

    with pytest.raises(ValidationError, match="got <Hostile>"):
        validate_name(Hostile())


#: Fields where None means "none" and a number or a boolean is a fine value.
OPTIONAL = {"Site.client", "Site.db_server", "Client.contact"}


@pytest.mark.parametrize(
    "value", [None, 5, 1.5, b"example.com", ["example.com"], {"a": 1}, object(), True]
)
def test_non_strings_rejected(value: object) -> None:
    for kind, consumers in CONSUMERS.items():
        for consumer, func in consumers.items():
            if value is None and consumer in OPTIONAL:
                continue
            if kind == "setting" and isinstance(value, int):
                continue
            with pytest.raises(ValidationError):
                func(value)


@pytest.mark.parametrize(
    "root",
    [
        "",
        "srv",
        "/srv/",
        "//srv",
        "/srv/../etc",
        "/srv/./x",
        *spliced(ROOT, UNIVERSAL_BAD.values()),
    ],
)
def test_hostile_roots_rejected(root: str) -> None:
    with pytest.raises(ValidationError) as info:
        validate_path(f"{ROOT}/x", within=root)
    assert info.value.field == "path root"


# ---------------------------------------------------------------------------
# Properties (hypothesis)
# ---------------------------------------------------------------------------

#: Pieces likely to build almost-valid values, so the properties reach deep branches.
PIECES = [
    *"abcxyzABZ0129.-_:/@%*+~=&?#[] ';$()!",
    "xn--",
    "xn--bcher-kva",
    "http://",
    "https://",
    "::",
    "..",
    "/srv/",
    "com",
    "0x",
    "ü",
    "ß",
    "а",
    "о",
    "ӏ",
    "ο",
    "ラ",
    "ー",
    "屋",
    "々",
    "한",
    "ｅ",
    "。",
    "\u200b",
    "\u202e",
    "\u3164",
    "\u0308",
    "\n",
    "\x00",
    "%0a",
    "%41",
]
texts = st.one_of(
    st.text(max_size=80),
    st.lists(st.sampled_from(PIECES), max_size=24).map("".join),
)
PROPERTY_SETTINGS = settings(max_examples=300, deadline=None, database=None)

_LABELS = r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)"
_HOST = re.compile(rf"{_LABELS}(?:\.{_LABELS})*")
_URL_RE = re.compile(
    r"https?://(?:[a-z0-9.-]+|\[[0-9a-f:.]+\])(?::[0-9]{1,5})?"
    r"(?:/[A-Za-z0-9._~@:+,=/%-]*)?(?:\?[A-Za-z0-9._~@:+,=/%&?-]*)?(?:#[A-Za-z0-9._~@:+,=/%-]*)?"
)


def _host_ok(text: str) -> bool:
    return (
        bool(_HOST.fullmatch(text))
        and len(text) <= 253
        and all(len(label) <= 63 for label in text.split("."))
        and not text.split(".")[-1].isdigit()
    )


def _path_ok(text: str) -> bool:
    return (
        bool(re.fullmatch(r"/[A-Za-z0-9._@+/-]*", text))
        and (text == "/" or not text.endswith("/"))
        and "//" not in text
        and all(part not in (".", "..") for part in text.split("/"))
    )


@dataclass(frozen=True)
class Whitelist:
    func: Callable[[Any], Any]
    ok: Callable[[Any], bool]


WHITELISTS: dict[str, Whitelist] = {
    "domain": Whitelist(validate_domain, lambda r: _host_ok(r) and "." in r),
    "domain wildcard": Whitelist(
        lambda v: validate_domain(v, wildcard=True),
        lambda r: _host_ok(r.removeprefix("*.")) and "." in r.removeprefix("*."),
    ),
    "hostname": Whitelist(validate_hostname, _host_ok),
    "address": Whitelist(
        validate_address,
        lambda r: _host_ok(r) or bool(re.fullmatch(r"[0-9a-f:.]+(?:%[A-Za-z0-9_.-]{1,15})?", r)),
    ),
    "name": Whitelist(validate_name, lambda r: bool(re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,62}", r))),
    "unix": Whitelist(
        validate_unix_name, lambda r: bool(re.fullmatch(r"[a-z_][a-z0-9_-]{0,31}", r))
    ),
    "environment": Whitelist(
        validate_environment, lambda r: bool(re.fullmatch(r"[a-z][a-z0-9-]{0,31}", r))
    ),
    "type": Whitelist(validate_type_name, lambda r: bool(re.fullmatch(r"[a-z][a-z0-9_]{0,31}", r))),
    "db mysql": Whitelist(
        lambda v: validate_db_identifier(v, "mysql", "db", user=False),
        lambda r: bool(re.fullmatch(r"[a-z][a-z0-9_]{0,63}", r)),
    ),
    "db user pgsql": Whitelist(
        lambda v: validate_db_identifier(v, "pgsql", "db", user=True),
        lambda r: bool(re.fullmatch(r"[a-z][a-z0-9_]{0,62}", r)) and not r.startswith("pg_"),
    ),
    "path": Whitelist(validate_path, _path_ok),
    "path within": Whitelist(
        lambda v: validate_path(v, within="/srv"),
        lambda r: _path_ok(r) and (r == "/srv" or r.startswith("/srv/")),
    ),
    "url": Whitelist(validate_url, lambda r: bool(_URL_RE.fullmatch(r))),
    "email": Whitelist(
        validate_email,
        lambda r: (
            bool(re.fullmatch(r"[A-Za-z0-9_+][A-Za-z0-9_+.-]*@[a-z0-9.-]+", r))
            and _host_ok(r.split("@")[1])
        ),
    ),
    "port": Whitelist(validate_port, lambda r: type(r) is int and 1 <= r <= 65535),
}


#: Prefixes that make arbitrary text look like a path, a URL or an e-mail address.
_PREFIXES = ["", "", "/", "/srv/", "https://", "http://[", "ops@", "*.", "fe80::1%"]
candidates = st.builds(lambda prefix, text: prefix + text, st.sampled_from(_PREFIXES), texts)


@PROPERTY_SETTINGS
@given(candidates)
def test_validators_whitelist_or_validation_error(text: str) -> None:
    """Every validator either raises ValidationError (and nothing else) or returns a value
    of its strict ASCII whitelist, which validates again to itself."""
    for kind, rule in WHITELISTS.items():
        try:
            result = rule.func(text)
        except ValidationError as err:
            assert_clean(err)
            continue
        assert rule.ok(result), (kind, text, result)
        assert rule.func(result) == result, (kind, text, result)


# Valid domains: plain ASCII labels, labels from a tiny alphabet (so that near-collisions
# such as "a-b.ab" and "a.b-ab" come up), internationalised labels, and long ones.


def _trim(label: str) -> str:
    """A label without the hyphens it may not start or end with ("x" if none is left)."""
    return label.strip("-") or "x"


_ascii_label = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=22)
_ascii_label = _ascii_label.map(_trim)
_near_label = st.text(alphabet="ab1-", min_size=1, max_size=6).map(_trim)
_idn_label = st.one_of(
    st.text(alphabet="abcäöüßé", min_size=1, max_size=6),
    st.text(alphabet="あいラー屋日", min_size=1, max_size=6),
    st.text(alphabet="한국어", min_size=1, max_size=6),
)
_long_label = st.integers(min_value=40, max_value=63).map(lambda n: "l" * n)
_tld = st.sampled_from(["com", "org", "example", "xn--p1ai", "co", "b-com", "a1", "ab"])


def _valid_domain(labels: list[str], tld: str) -> str | None:
    """The domain of ``labels`` and ``tld`` if valid (None otherwise)."""
    try:
        return validate_domain(".".join([*labels, tld]))
    except ValidationError:
        return None


domains = (
    st.builds(
        _valid_domain,
        st.lists(
            st.one_of(
                _ascii_label, _near_label, _ascii_label, _near_label, _idn_label, _long_label
            ),
            min_size=1,
            max_size=4,
        ),
        _tld,
    )
    .filter(lambda d: d is not None)
    .map(str)
)

DERIVED: list[tuple[str, Callable[[str], str], Callable[[str], object]]] = [
    (
        "db name mysql",
        lambda d: derive_db_name(d, "mysql"),
        lambda n: validate_db_identifier(n, "mysql", "db", user=False),
    ),
    (
        "db name pgsql",
        lambda d: derive_db_name(d, "pgsql"),
        lambda n: validate_db_identifier(n, "pgsql", "db", user=False),
    ),
    (
        "db user mysql",
        lambda d: derive_db_user(d, "mysql"),
        lambda n: (
            validate_db_identifier(n, "mysql", "db", user=True),
            validate_db_identifier(n, "pgsql", "db", user=True),
        ),
    ),
    (
        "db user pgsql",
        lambda d: derive_db_user(d, DbEngine.PGSQL),
        lambda n: validate_db_identifier(n, "pgsql", "db", user=True),
    ),
    ("unix user", derive_unix_user, validate_unix_name),
]


@PROPERTY_SETTINGS
@given(st.lists(domains, min_size=1, max_size=3, unique=True))
def test_derived_names_valid_deterministic_distinct(batch: list[str]) -> None:
    """For each derivation: valid for its engine (the validators hold the limits: MySQL
    64/32, PostgreSQL 63/63, Unix 32), the same every time, and distinct per domain."""
    for label, derive, check in DERIVED:
        names = [derive(domain) for domain in batch]
        for domain, name in zip(batch, names, strict=True):
            check(name)
            assert derive(domain.upper()) == name  # the same again, whatever the case
        assert len(set(names)) == len(batch), (label, batch, names)


def twins(domain: str) -> set[str]:
    """The valid domains that differ from ``domain`` only where a lossy mapping would not
    see it: any '.' and '-' swapped, an 's' in front."""
    seps = [i for i, ch in enumerate(domain) if ch in ".-"]
    out = set()
    for mask in range(2 ** len(seps)):
        chars = list(domain)
        for bit, i in enumerate(seps):
            chars[i] = "-" if mask >> bit & 1 else "."
        out |= {"".join(chars), "s" + "".join(chars)}
    return {d for d in out if _valid_domain([], d)}


@PROPERTY_SETTINGS
@given(st.lists(st.text(alphabet="as1", min_size=1, max_size=3), min_size=2, max_size=3))
def test_derived_names_distinct_for_twins(labels: list[str]) -> None:
    """Domains that differ only by '.' versus '-', or by a leading 's', still differ."""
    family = twins(".".join(labels))
    for label, derive, _ in DERIVED:
        names = {derive(domain) for domain in family}
        assert len(names) == len(family), (label, sorted(family))


@PROPERTY_SETTINGS
@given(
    st.text(alphabet="abc", min_size=58, max_size=58).map(
        lambda t: f"{t[:20]}.{t[20:40]}.{t[40:]}"
    ),
    st.lists(_ascii_label, min_size=2, max_size=4, unique=True),
    st.sampled_from(["com", "org", "net"]),
)
def test_derived_names_distinct_for_long_shared_prefix(
    prefix: str, tails: list[str], tld: str
) -> None:
    """Long domains sharing their first 60 characters get distinct names everywhere."""
    assert len(prefix) == 60
    fqdns = [validate_domain(f"{prefix}{tail}.{tld}") for tail in tails]
    for label, derive, _ in DERIVED:
        names = {derive(domain) for domain in fqdns}
        assert len(names) == len(fqdns), (label, fqdns)


def test_derived_names_distinct_for_a_60_char_prefix() -> None:
    prefix = "a" * 30 + "." + "b" * 29
    fqdns = [f"{prefix}{tail}.com" for tail in ("", "c", "d", "cc", "c-d", "cd")]
    for _, derive, _ in DERIVED:
        assert len({derive(d) for d in fqdns}) == len(fqdns)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("a-b.com", "a.b-com"),
        ("a-b.com", "a.b.com"),
        ("my-shop.example", "my.shop.example"),
        ("1a.com", "s1a.com"),
        ("information.schema", "information-schema.com"),
        ("pg.example", "spg.example"),
        ("x" * 60 + ".example.com", "x" * 60 + ".example.org"),
    ],
)
def test_derived_names_distinct_for_known_collisions(a: str, b: str) -> None:
    for _, derive, _ in DERIVED:
        assert derive(a) != derive(b)


@pytest.mark.parametrize(
    ("domain", "db", "unix"),
    [
        ("shop.example", "shop_example", "s_shop_example"),
        ("Shop.Example", "shop_example", "s_shop_example"),
        ("information.schema", "information_schema__a6c5f4d22196", "s_information_schema"),
        ("pg.example", "spg_example__0c902dda92ee", "s_pg_example"),
        ("my-shop.example", "my_shop_example__", "s_my_shop_example__"),
    ],
)
def test_derived_name_forms(domain: str, db: str, unix: str) -> None:
    """Plain when unambiguous; otherwise a readable head, ``__`` and a digest."""
    assert derive_db_name(domain, "pgsql").startswith(db)
    assert derive_unix_user(domain).startswith(unix)
    for engine in DbEngine:
        name = derive_db_name(domain, engine)
        validate_db_identifier(name, engine, "db", user=False)


# -- the fast path of validate_hostname agrees with the full check -----------------------

from hypothesis import example  # noqa: E402

from cockpit.model import _validate_hostname_full  # noqa: E402


@settings(max_examples=500, deadline=None, database=None)
@given(st.from_regex(r"[a-z0-9.\-]{1,80}", fullmatch=True) | st.text(max_size=40))
@example("ab--cd.example")
@example("0---0.com")
@example("a.b---c.example")
@example("xn--80ak6aa92e.com")
@example("127.1")
@example("0x7f.1")
@example("a." + "b" * 63 + ".com")
def test_hostname_fast_path_agrees_with_full_check(text: str) -> None:
    for min_labels in (1, 2):
        try:
            full: str | None = _validate_hostname_full(text, "h", min_labels=min_labels)
        except ValidationError:
            full = None
        try:
            fast: str | None = validate_hostname(text, "h", min_labels=min_labels)
        except ValidationError:
            fast = None
        assert fast == full
