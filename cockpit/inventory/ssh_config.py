"""Import servers from the ``Host`` entries of an OpenSSH client config (~/.ssh/config).

One :class:`~cockpit.model.Server` per concrete ``Host`` alias, with the options
OpenSSH would use for that alias: the whole file (and what it includes) is evaluated
top-down for each alias, blocks whose patterns match apply, and the first value of
each keyword wins — so a ``Host *`` block adds defaults (a ``User``, an
``IdentityFile``) to every host, as it does for ``ssh``.

Mapped: ``HostName`` → address (default: the alias; ``%h`` and ``%%`` expanded),
``Port``, ``User``, the first ``IdentityFile`` → ``ssh_options.identity_file``
(``~``, ``${VAR}`` and the tokens ``%d %u %h %n %p %r %i %l %L %%`` expanded; any
other token and the host is skipped), ``ProxyJump`` → ``ssh_options.proxy_jump``.
``ssh_options.config_host`` records the alias so that the transport can still read
the rest of the entry (``ProxyCommand``, ciphers…) from the same config. The server
name is the alias in lower case (OpenSSH matches host names without case).

Skipped, each with a reason in :attr:`ImportResult.skipped`: patterns
(``*``, ``?``, ``!``), ``Match`` blocks (what they match depends on the moment a
connection is made), and any host whose name or values fail the model's validation
(``HostName evil;rm`` is never a server).

The parser is written from ssh_config(5) and OpenSSH's readconf.c: keywords without
case, ``Keyword value`` or ``Keyword=value``, quoted arguments (``"…"`` and
``'…'``, backslash escapes), ``#`` comments, ``Include`` with globs (relative to
~/.ssh, 16 levels deep at most). Lines end at ``\\n`` only: a ``\\r``, a vertical tab
or a Unicode line separator inside a line never starts a new one. A line OpenSSH
would refuse (unbalanced quotes, a keyword without argument) makes the import fail
with :class:`~cockpit.inventory.ImportFileError` naming file and line.
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cockpit.inventory import ImportFileError, ImportResult
from cockpit.model import Server, ValidationError

__all__ = ["import_ssh_config", "parse_args"]

MAX_INCLUDE_DEPTH: Final = 16

#: The keywords that make a server, and whether they take exactly one argument.
_MAPPED: Final = frozenset({"hostname", "port", "user", "identityfile", "proxyjump"})
_WILDCARD_CHARS: Final = frozenset("*?!")
_KEYWORD_RE: Final = re.compile(r"[ \t]*([^ \t=]+)[ \t]*(?:=[ \t]*)?(.*)", re.DOTALL)


@dataclass(frozen=True, slots=True)
class _Where:
    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


#: A block condition: the patterns of a ``Host`` line, or ``None`` for a ``Match``.
_Cond = tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class _Entry:
    conds: tuple[_Cond, ...]
    keyword: str
    args: tuple[str, ...]
    where: _Where


@dataclass(slots=True)
class _Parsed:
    entries: list[_Entry]
    #: Host aliases in order of first appearance: alias → (where, conditions of its block)
    aliases: dict[str, tuple[_Where, tuple[_Cond, ...]]]
    skipped: list[tuple[str, str]]


class _QuoteError(ValueError):
    pass


def parse_args(text: str) -> list[str]:
    """Split the arguments of a config line as OpenSSH's ``argv_split`` does.

    Whitespace separates arguments; ``"…"`` and ``'…'`` quote; a backslash escapes a
    quote, a backslash or (outside quotes) a space; a ``#`` starting an argument
    begins a comment. Raises ``ValueError`` on an unterminated quote.
    """
    args: list[str] = []
    current: list[str] = []
    in_arg = False
    quote = ""
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if not quote and ch in " \t":
            if in_arg:
                args.append("".join(current))
                current, in_arg = [], False
            i += 1
            continue
        if not in_arg and not quote and ch == "#":
            break
        in_arg = True
        if ch == "\\" and i + 1 < n:
            nxt = text[i + 1]
            if nxt in "'\"\\" or (not quote and nxt == " "):
                current.append(nxt)
                i += 2
                continue
            current.append(ch)
        elif ch in "'\"":
            if not quote:
                quote = ch
            elif ch == quote:
                quote = ""
            else:
                current.append(ch)
        else:
            current.append(ch)
        i += 1
    if quote:
        raise _QuoteError("unterminated quote")
    if in_arg:
        args.append("".join(current))
    return args


def _glob_match(pattern: str, name: str) -> bool:
    regex = "".join(
        ".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern.lower()
    )
    return re.fullmatch(regex, name.lower(), re.DOTALL) is not None


def _host_matches(alias: str, patterns: tuple[str, ...]) -> bool:
    """OpenSSH's ``Host`` semantics: any negated match excludes, else any positive one."""
    matched = False
    for pattern in patterns:
        if pattern.startswith("!"):
            if _glob_match(pattern[1:], alias):
                return False
        elif _glob_match(pattern, alias):
            matched = True
    return matched


def _applies(conds: tuple[_Cond, ...], alias: str) -> bool:
    return all(cond is not None and _host_matches(alias, cond) for cond in conds)


class _Reader:
    def __init__(self, ssh_dir: Path, home: Path) -> None:
        self.ssh_dir = ssh_dir
        self.home = home
        self.parsed = _Parsed([], {}, [])
        self._seen_patterns: set[str] = set()

    def read(self, path: Path, base: tuple[_Cond, ...], depth: int, required: bool) -> None:
        source = str(path)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            if required:
                raise ImportFileError(source, None, "cannot read: no such file") from None
            return
        except OSError as exc:
            raise ImportFileError(source, None, f"cannot read: {exc.strerror or exc}") from None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad_line = data.count(b"\n", 0, exc.start) + 1
            raise ImportFileError(source, bad_line, "is not valid UTF-8") from None
        conds = base
        for number, raw in enumerate(text.split("\n"), start=1):
            where = _Where(source, number)
            line = raw.rstrip(" \t\r\f")
            match = _KEYWORD_RE.fullmatch(line)
            if match is None or not line.strip(" \t") or match.group(1).startswith("#"):
                continue
            keyword = match.group(1).lower()
            try:
                args = tuple(parse_args(match.group(2)))
            except _QuoteError:
                raise ImportFileError(source, number, "invalid quotes") from None
            if not args:
                raise ImportFileError(
                    source, number, f"no argument after keyword {match.group(1)!r}"
                )
            if keyword == "host":
                conds = (*base, args)
                self._hosts(args, where, conds)
            elif keyword == "match":
                conds = (*base, None)
                self.parsed.skipped.append(
                    (
                        "Match " + " ".join(args),
                        f"{where}: Match blocks are not imported; their options were ignored",
                    )
                )
            elif keyword == "include":
                for arg in args:
                    self._include(arg, conds, where, depth)
            else:
                self.parsed.entries.append(_Entry(conds, keyword, args, where))

    def _hosts(self, patterns: tuple[str, ...], where: _Where, conds: tuple[_Cond, ...]) -> None:
        for pattern in patterns:
            if any(ch in _WILDCARD_CHARS for ch in pattern):
                if pattern not in self._seen_patterns:
                    self._seen_patterns.add(pattern)
                    self.parsed.skipped.append(
                        (
                            pattern,
                            f"{where}: a pattern, not a host (its options apply to the hosts it matches)",
                        )
                    )
            elif any(cond is None for cond in conds):
                self.parsed.skipped.append(
                    (pattern, f"{where}: inside a Match block, which is not imported")
                )
            elif pattern not in self.parsed.aliases:
                self.parsed.aliases[pattern] = (where, conds)

    def _include(self, arg: str, conds: tuple[_Cond, ...], where: _Where, depth: int) -> None:
        if depth >= MAX_INCLUDE_DEPTH:
            raise ImportFileError(where.file, where.line, "Include nested too deeply")
        if "\x00" in arg:
            raise ImportFileError(where.file, where.line, "Include names a path with a NUL byte")
        pattern = _expand_tilde(arg, self.home)
        if pattern is None:
            raise ImportFileError(where.file, where.line, f"cannot expand {arg!r}")
        if not os.path.isabs(pattern):
            pattern = str(self.ssh_dir / pattern)
        for name in sorted(glob.glob(pattern)):
            path = Path(name)
            if path.is_dir():
                continue
            self.read(path, conds, depth + 1, required=False)


def _expand_tilde(text: str, home: Path) -> str | None:
    if not text.startswith("~"):
        return text
    head, sep, rest = text[1:].partition("/")
    if not head:
        base = str(home)
    else:
        try:
            base = pwd.getpwnam(head).pw_dir
        except (KeyError, ValueError):  # no such user, or a name no user can have (NUL)
            return None
    return base + (sep + rest if sep else "")


_TOKEN_RE: Final = re.compile(r"%(.)|\$\{([A-Za-z_][A-Za-z0-9_]*)\}", re.DOTALL)


def _expand_tokens(text: str, tokens: dict[str, str], field: str) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group(2) is not None:
            value = os.environ.get(match.group(2))
            if value is None:
                raise ValidationError(field, f"environment variable {match.group(2)} is not set")
            return value
        token = match.group(1)
        if token not in tokens:
            raise ValidationError(field, f"cannot expand the token %{token}", text)
        return tokens[token]

    if text.endswith("%") and not text.endswith("%%"):
        raise ValidationError(field, "ends with a lone %", text)
    return _TOKEN_RE.sub(replace, text)


def _port(text: str) -> int:
    if text.isascii() and text.isdigit():
        return int(text)
    raise ValidationError("server.port", "must be a whole number", text)


def _proxy_jump(text: str) -> str:
    hops = []
    for hop in text.split(","):
        if hop.startswith("ssh://"):
            hop = hop[len("ssh://") :]
        hops.append(hop)
    return ",".join(hops)


#: Which keyword a model field comes from, to point a skip reason at the right line.
_FIELD_KEYWORD: Final = {
    "server.address": "hostname",
    "server.port": "port",
    "server.user": "user",
    "server.ssh_options.identity_file": "identityfile",
    "server.ssh_options.proxy_jump": "proxyjump",
    "identityfile": "identityfile",
    "hostname": "hostname",
}


def _server(
    alias: str,
    first: _Where,
    entries: list[_Entry],
    *,
    home: Path,
    local_user: str,
) -> Server:
    """The server OpenSSH would connect to for ``alias``; raises ValidationError."""
    values: dict[str, tuple[str, _Where]] = {}
    proxy_seen = False
    for entry in entries:
        if entry.keyword not in _MAPPED and entry.keyword != "proxycommand":
            continue
        if not _applies(entry.conds, alias):
            continue
        if entry.keyword in ("proxyjump", "proxycommand"):
            # The two exclude each other: the first one given wins.
            if proxy_seen:
                continue
            proxy_seen = True
            if entry.keyword == "proxycommand":
                continue
        if entry.keyword in values:
            continue
        if entry.keyword == "identityfile" and entry.args[0].lower() == "none":
            continue
        if len(entry.args) != 1:
            raise _Located(
                ValidationError(entry.keyword, "takes one argument", " ".join(entry.args)),
                entry.where,
            )
        values[entry.keyword] = (entry.args[0], entry.where)

    name = alias.lower()

    def get(keyword: str) -> str | None:
        found = values.get(keyword)
        return found[0] if found else None

    def at(keyword: str) -> _Where:
        found = values.get(keyword)
        return found[1] if found else first

    try:
        hostname = get("hostname")
        address = (
            _expand_tokens(hostname, {"h": name, "%": "%"}, "hostname")
            if hostname is not None
            else name
        )
        port = _port(get("port") or "22")
        user = get("user")
        options: dict[str, str | int | bool] = {"config_host": name}
        if (identity := get("identityfile")) is not None:
            expanded = _expand_tilde(identity, home)
            if expanded is None:
                raise ValidationError("identityfile", "cannot expand ~user", identity)
            tokens = {
                "%": "%",
                "d": str(home),
                "u": local_user,
                "h": address,
                "n": name,
                "p": str(port),
                "r": user or local_user,
                "i": str(os.getuid()),
                "l": socket.gethostname(),
                "L": socket.gethostname().split(".")[0],
            }
            options["identity_file"] = _expand_tokens(expanded, tokens, "identityfile")
        if (jump := get("proxyjump")) is not None and jump.lower() != "none":
            options["proxy_jump"] = _proxy_jump(jump)
        if user is not None:
            return Server(name=name, address=address, port=port, user=user, ssh_options=options)
        return Server(name=name, address=address, port=port, ssh_options=options)
    except ValidationError as exc:
        keyword = _FIELD_KEYWORD.get(exc.field)
        raise _Located(exc, at(keyword) if keyword else first) from None


class _Located(Exception):
    def __init__(self, error: ValidationError, where: _Where) -> None:
        super().__init__(error, where)
        self.error = error
        self.where = where


def _local_user() -> str:
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:  # pragma: no cover - a uid without a passwd entry
        return os.environ.get("USER", "root")


def import_ssh_config(
    path: Path | None = None,
    *,
    home: Path | None = None,
    local_user: str | None = None,
) -> ImportResult:
    """Servers from ``path`` (default ``~/.ssh/config``), and what was skipped and why.

    ``home`` (default: the current user's home directory) is where ``~`` and ``%d``
    point and where relative ``Include`` paths are looked up (``home/.ssh``);
    ``local_user`` is ``%u``.
    """
    home = home if home is not None else Path(pwd.getpwuid(os.getuid()).pw_dir)
    local_user = local_user if local_user is not None else _local_user()
    if path is None:
        path = home / ".ssh" / "config"
    reader = _Reader(home / ".ssh", home)
    reader.read(Path(path), (), 0, required=True)
    parsed = reader.parsed

    result = ImportResult(skipped=list(parsed.skipped))
    names: dict[str, str] = {}
    for alias, (where, _conds) in parsed.aliases.items():
        try:
            server = _server(alias, where, parsed.entries, home=home, local_user=local_user)
        except _Located as located:
            result.skipped.append((alias, f"{located.where}: {located.error}"))
            continue
        if server.name in names:
            result.skipped.append(
                (alias, f"{where}: same name as Host {names[server.name]} (names ignore case)")
            )
            continue
        names[server.name] = alias
        result.servers.append(server)
    return result
