"""Import servers from an Ansible inventory file, INI or YAML.

Both forms describe groups of hosts with variables:

* INI: ``[group]`` lines of hosts (``web1 ansible_host=192.0.2.1 ansible_port=2222``),
  ``[group:vars]`` (``key=value``), ``[group:children]`` (group names); hosts before
  the first section are ``ungrouped``.
* YAML: ``all: {hosts: {web1: {ansible_host: …}}, vars: {…}, children: {web: {…}}}``
  (any top-level key is a group, as for Ansible).

Host patterns with ranges are expanded as Ansible does: ``web[01:03].example.com``
(leading zeros kept), ``db-[a:c]``, ``node[0:10:5]``; ``host:2222`` sets the port.

Variables are inherited: ``all``, then parent groups before their children (siblings
by name), then the host's own; the host's win. Used variables:

* ``ansible_host`` (or ``ansible_ssh_host``) → address (default: the host's name),
  ``ansible_port``/``ansible_ssh_port`` → port, ``ansible_user``/``ansible_ssh_user``
  → login user, ``ansible_ssh_private_key_file`` → ``ssh_options.identity_file``
  (``~`` expanded), ``-J hop`` or ``-o ProxyJump=hop`` in ``ansible_ssh_common_args``
  or ``ansible_ssh_extra_args`` → ``ssh_options.proxy_jump``.
* ``ansible_connection``: ``local`` makes a local-transport server (no SSH); ``ssh``,
  ``paramiko``, ``smart`` or none make an SSH server; anything else (``winrm``,
  ``docker``…) skips the host.
* The environment label: ``cockpit_environment`` if set, else the first of the host's
  groups (its own groups first, then their parents) whose name has a word
  ``prod``/``production`` (→ prod), ``staging``/``stage`` (→ staging), ``dev`` or
  ``test``; else ``prod``.

A host whose name or values fail validation is skipped with the reason (never a
server). A file Ansible would refuse (a bad section, a bad range, a host line with
an unbalanced quote, a group that contains itself) is an
:class:`~cockpit.inventory.ImportFileError` (INI) or a
:class:`~cockpit.yamlio.YamlError` (YAML), each with the line. ``group_vars/`` and
``host_vars/`` directories beside the inventory are not read.
"""

from __future__ import annotations

import re
import shlex
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from cockpit import yamlio
from cockpit.inventory import ImportFileError, ImportResult
from cockpit.model import Server, Transport, ValidationError, validate_environment
from cockpit.yamlio import Node

__all__ = ["MAX_RANGE_HOSTS", "expand_host_pattern", "import_ansible"]

#: At most this many hosts from one range pattern (``web[0:99999999]`` is an error).
MAX_RANGE_HOSTS: Final = 100_000

_ENVIRONMENT_WORDS: Final = {
    "prod": "prod",
    "production": "prod",
    "staging": "staging",
    "stage": "staging",
    "dev": "dev",
    "test": "test",
}
_SSH_CONNECTIONS: Final = frozenset({"ssh", "paramiko", "smart", "ansible.builtin.ssh"})
_LOCAL_CONNECTIONS: Final = frozenset({"local", "ansible.builtin.local"})
_YAML_SUFFIXES: Final = frozenset({".yml", ".yaml", ".json"})
_GROUP_KEYS: Final = ("hosts", "vars", "children")


class _Problem(ValueError):
    """An error in a host pattern or a group graph, placed by the caller."""


# ---------------------------------------------------------------------------
# The inventory graph
# ---------------------------------------------------------------------------


@dataclass(slots=True)
class _Group:
    name: str
    vars: dict[str, Any] = field(default_factory=dict)
    hosts: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Host:
    name: str
    where: str
    vars: dict[str, Any] = field(default_factory=dict)
    groups: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Inventory:
    groups: dict[str, _Group] = field(default_factory=dict)
    hosts: dict[str, _Host] = field(default_factory=dict)
    parents_of: dict[str, list[str]] = field(default_factory=dict)
    _ancestors: dict[str, list[str]] = field(default_factory=dict)
    _depth: dict[str, int] = field(default_factory=dict)

    def group(self, name: str) -> _Group:
        group = self.groups.get(name)
        if group is None:
            group = self.groups[name] = _Group(name)
        return group

    def add_host(self, name: str, group: str, where: str, variables: Mapping[str, Any]) -> None:
        host = self.hosts.get(name)
        if host is None:
            host = self.hosts[name] = _Host(name, where)
        host.vars.update(variables)
        if group not in host.groups:
            host.groups.append(group)
        hosts = self.group(group).hosts
        if name not in hosts:
            hosts.append(name)

    def add_child(self, parent: str, child: str) -> None:
        if parent == child or child in self.ancestors(parent):
            raise _Problem(f"making {child!r} a child of {parent!r} makes a loop")
        self.group(parent)
        self.group(child)
        parents = self.parents_of.setdefault(child, [])
        if parent not in parents:
            parents.append(parent)
            self._ancestors.clear()
            self._depth.clear()

    def ancestors(self, name: str) -> list[str]:
        """The groups above ``name``, nearest first, each once."""
        cached = self._ancestors.get(name)
        if cached is None:
            cached = []
            queue = list(self.parents_of.get(name, ()))
            while queue:
                parent = queue.pop(0)
                if parent not in cached:
                    cached.append(parent)
                    queue.extend(self.parents_of.get(parent, ()))
            self._ancestors[name] = cached
        return cached

    def depth(self, name: str) -> int:
        """1 for a top-level group, one more than its deepest parent otherwise."""
        cached = self._depth.get(name)
        if cached is None:
            parents = self.parents_of.get(name, ())
            cached = 1 + max((self.depth(p) for p in parents), default=0)
            self._depth[name] = cached
        return cached


# ---------------------------------------------------------------------------
# Host patterns
# ---------------------------------------------------------------------------

_RANGE_RE: Final = re.compile(r"\[([^\[\]]*:[^\[\]]*)\]")


def expand_host_pattern(pattern: str) -> list[str]:
    """``web[01:03].example.com`` → web01…web03 (Ansible's rules); raises ValueError."""
    match = _RANGE_RE.search(pattern)
    if match is None:
        return [pattern]
    head, tail = pattern[: match.start()], pattern[match.end() :]
    bounds = match.group(1).split(":")
    if len(bounds) not in (2, 3):
        raise _Problem(f"host range must be begin:end or begin:end:step: {pattern!r}")
    begin, end = bounds[0] or "0", bounds[1]
    step_text = bounds[2] if len(bounds) == 3 else "1"
    if not end:
        raise _Problem(f"host range must have an end: {pattern!r}")
    if not (step_text.isascii() and step_text.isdigit()) or int(step_text) == 0:
        raise _Problem(f"host range step must be a whole number above 0: {pattern!r}")
    step = int(step_text)
    values: list[str]
    if len(begin) == 1 and len(end) == 1 and begin in string.ascii_letters:
        if end not in string.ascii_letters:
            raise _Problem(f"host range mixes letters and numbers: {pattern!r}")
        i_begin, i_end = string.ascii_letters.index(begin), string.ascii_letters.index(end)
        if i_begin > i_end:
            raise _Problem(f"host range must have begin <= end: {pattern!r}")
        values = list(string.ascii_letters[i_begin : i_end + 1 : step])
    else:
        if not (begin.isascii() and begin.isdigit() and end.isascii() and end.isdigit()):
            raise _Problem(f"host range bounds must be numbers or single letters: {pattern!r}")
        width = len(begin) if begin.startswith("0") and len(begin) > 1 else 0
        if width and len(end) != width:
            raise _Problem(f"host range must have begin and end of the same width: {pattern!r}")
        i_begin, i_end = int(begin), int(end)
        if i_begin > i_end:
            raise _Problem(f"host range must have begin <= end: {pattern!r}")
        if (i_end - i_begin) // step + 1 > MAX_RANGE_HOSTS:
            raise _Problem(f"host range makes more than {MAX_RANGE_HOSTS} hosts: {pattern!r}")
        values = [str(i).zfill(width) for i in range(i_begin, i_end + 1, step)]
    out: list[str] = []
    for value in values:
        out.extend(expand_host_pattern(head + value + tail))
        if len(out) > MAX_RANGE_HOSTS:
            raise _Problem(f"host range makes more than {MAX_RANGE_HOSTS} hosts: {pattern!r}")
    return out


def _split_port(pattern: str) -> tuple[str, str | None]:
    """``host:2222`` → (host, "2222"); ``[2001:db8::1]:22`` → (address, "22")."""
    bracketed = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\](?::([0-9]+))?", pattern)
    if bracketed and ":" in bracketed.group(1):
        return bracketed.group(1), bracketed.group(2)
    depth = 0
    colons = []
    for index, ch in enumerate(pattern):
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif ch == ":" and depth == 0:
            colons.append(index)
    if len(colons) == 1:
        head, port = pattern[: colons[0]], pattern[colons[0] + 1 :]
        if port.isascii() and port.isdigit():
            return head, port
    return pattern, None


def _hosts_of(pattern: str) -> list[tuple[str, dict[str, Any]]]:
    host, port = _split_port(pattern)
    extra: dict[str, Any] = {"ansible_port": port} if port is not None else {}
    return [(name, dict(extra)) for name in expand_host_pattern(host)]


# ---------------------------------------------------------------------------
# INI
# ---------------------------------------------------------------------------

_SECTION_RE: Final = re.compile(r"\[([^:\]\s]+)(?::(\w+))?\]\s*(?:[#;].*)?")


def _parse_ini(text: str, source: str) -> _Inventory:
    inventory = _Inventory()
    inventory.group("all")
    inventory.group("ungrouped")
    section, kind = "ungrouped", "hosts"
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.strip(" \t\r")
        if not line or line[0] in "#;":
            continue

        def fail(reason: str, number: int = number) -> ImportFileError:
            return ImportFileError(source, number, reason)

        if line.startswith("["):
            match = _SECTION_RE.fullmatch(line)
            if match is None:
                raise fail(f"invalid section header {line[:60]!r}")
            section, kind = match.group(1), match.group(2) or "hosts"
            if kind not in ("hosts", "vars", "children"):
                raise fail(f"unknown section type :{kind} (expected :vars or :children)")
            inventory.group(section)
            continue
        where = f"{source}:{number}"
        if kind == "vars":
            key, sep, value = line.partition("=")
            if not sep or not key.strip():
                raise fail("expected key=value in a :vars section")
            inventory.group(section).vars[key.strip()] = _ini_value(value.strip(), fail)
        elif kind == "children":
            try:
                words = shlex.split(line, comments=True)
            except ValueError as exc:
                raise fail(str(exc)) from None
            if len(words) != 1:
                raise fail("expected one group name per line in a :children section")
            try:
                inventory.add_child(section, words[0])
            except _Problem as exc:
                raise fail(str(exc)) from None
        else:
            try:
                words = shlex.split(line, comments=True)
            except ValueError as exc:
                raise fail(f"{exc} in host line") from None
            if not words:
                continue
            variables: dict[str, Any] = {}
            for word in words[1:]:
                key, sep, value = word.partition("=")
                if not sep or not key:
                    raise fail(f"expected key=value host variable, got {word[:60]!r}")
                variables[key] = value
            try:
                hosts = _hosts_of(words[0])
            except _Problem as exc:
                raise fail(str(exc)) from None
            for name, implied in hosts:
                inventory.add_host(name, section, where, {**implied, **variables})
    return inventory


def _ini_value(value: str, fail: Any) -> str:
    """A :vars value: quotes around the whole value are removed, as Ansible does."""
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        try:
            words = shlex.split(value)
        except ValueError as exc:
            raise fail(str(exc)) from None
        return words[0] if len(words) == 1 else value
    return value


# ---------------------------------------------------------------------------
# YAML
# ---------------------------------------------------------------------------


def _parse_yaml(root: Node) -> _Inventory:
    inventory = _Inventory()
    inventory.group("all")
    inventory.group("ungrouped")
    if root.value is None:
        return inventory
    for name, node in root.items():
        _yaml_group(inventory, str(name), node)
    return inventory


def _entries(node: Node | None) -> list[tuple[Any, Node]]:
    """The entries of an optional mapping (absent or empty: none)."""
    if node is None or node.value is None:
        return []
    node.as_mapping()
    return list(node.items())


def _yaml_group(inventory: _Inventory, name: str, node: Node) -> None:
    group = inventory.group(name)
    if node.value is None:
        return
    node.check_keys(_GROUP_KEYS)
    for key, value in _entries(node.get("vars")):
        group.vars[str(key)] = value.value
    for pattern, host_node in _entries(node.get("hosts")):
        host_vars = dict(host_node.as_mapping())
        try:
            expanded = _hosts_of(str(pattern))
        except _Problem as exc:
            raise host_node.error(str(exc)) from None
        for host, implied in expanded:
            inventory.add_host(host, name, str(host_node.mark), {**implied, **host_vars})
    for child, child_node in _entries(node.get("children")):
        try:
            inventory.add_child(name, str(child))
        except _Problem as exc:
            raise child_node.error(str(exc)) from None
        _yaml_group(inventory, str(child), child_node)


# ---------------------------------------------------------------------------
# Hosts → servers
# ---------------------------------------------------------------------------


def _host_groups(inventory: _Inventory, host: _Host) -> list[str]:
    """The host's groups: its own in order, then their ancestors, nearest first."""
    out = list(host.groups)
    for group in host.groups:
        for ancestor in inventory.ancestors(group):
            if ancestor not in out:
                out.append(ancestor)
    return out


def _effective_vars(inventory: _Inventory, host: _Host, groups: list[str]) -> dict[str, Any]:
    merged: dict[str, Any] = dict(inventory.groups["all"].vars)
    ordered = sorted((g for g in groups if g != "all"), key=lambda g: (inventory.depth(g), g))
    for group in ordered:
        merged.update(inventory.groups[group].vars)
    merged.update(host.vars)
    return merged


def _environment(variables: Mapping[str, Any], groups: list[str]) -> str:
    if "cockpit_environment" in variables:
        return validate_environment(variables["cockpit_environment"], "cockpit_environment")
    for group in groups:
        for word in re.split(r"[^a-z0-9]+", group.lower()):
            if word in _ENVIRONMENT_WORDS:
                return _ENVIRONMENT_WORDS[word]
    return "prod"


def _first(variables: Mapping[str, Any], *names: str) -> Any:
    for name in names:
        if name in variables and variables[name] is not None:
            return variables[name]
    return None


def _proxy_jump(variables: Mapping[str, Any]) -> str | None:
    for name in ("ansible_ssh_common_args", "ansible_ssh_extra_args"):
        value = variables.get(name)
        if not isinstance(value, str):
            continue
        try:
            words = shlex.split(value)
        except ValueError:
            raise ValidationError(name, "has an unbalanced quote", value) from None
        for index, word in enumerate(words):
            nxt = words[index + 1] if index + 1 < len(words) else ""
            if word == "-J" and nxt:
                return nxt
            if word.startswith("-J") and len(word) > 2:
                return word[2:]
            option = nxt if word == "-o" else word[2:] if word.startswith("-o") else ""
            key, sep, val = option.partition("=")
            if sep and key.strip().lower() == "proxyjump" and val.lower() != "none":
                return val.strip()
    return None


def _to_int(value: Any, field: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    raise ValidationError(field, "must be a whole number", value)


def _server(inventory: _Inventory, host: _Host) -> Server:
    groups = _host_groups(inventory, host)
    variables = _effective_vars(inventory, host, groups)
    connection = variables.get("ansible_connection")
    if connection is not None and not isinstance(connection, str):
        raise ValidationError("ansible_connection", "must be a string", connection)
    transport = Transport.SSH
    if connection in _LOCAL_CONNECTIONS:
        transport = Transport.LOCAL
    elif connection is not None and connection not in _SSH_CONNECTIONS:
        raise ValidationError(
            "ansible_connection", "is not supported (only ssh and local)", connection
        )
    kwargs: dict[str, Any] = {
        "name": host.name.lower(),
        "address": _first(variables, "ansible_host", "ansible_ssh_host") or host.name,
        "transport": transport,
        "environment": _environment(variables, groups),
    }
    if (port := _first(variables, "ansible_port", "ansible_ssh_port")) is not None:
        kwargs["port"] = _to_int(port, "ansible_port")
    if (user := _first(variables, "ansible_user", "ansible_ssh_user")) is not None:
        kwargs["user"] = user
    options: dict[str, Any] = {}
    key_file = variables.get("ansible_ssh_private_key_file")
    if key_file is not None:
        if not isinstance(key_file, str):
            raise ValidationError("ansible_ssh_private_key_file", "must be a string", key_file)
        options["identity_file"] = (
            str(Path(key_file).expanduser()) if key_file.startswith("~") else key_file
        )
    if (jump := _proxy_jump(variables)) is not None:
        options["proxy_jump"] = jump
    if options:
        kwargs["ssh_options"] = options
    return Server(**kwargs)


def _servers(inventory: _Inventory) -> ImportResult:
    result = ImportResult()
    names: dict[str, str] = {}
    for host in inventory.hosts.values():
        try:
            server = _server(inventory, host)
        except ValidationError as exc:
            result.skipped.append((host.name, f"{host.where}: {exc}"))
            continue
        if server.name in names:
            result.skipped.append(
                (
                    host.name,
                    f"{host.where}: same name as host {names[server.name]} (names ignore case)",
                )
            )
            continue
        names[server.name] = host.name
        result.servers.append(server)
    return result


# ---------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------

_YAML_START_RE: Final = re.compile(r"[^\s\[#;=][^\s=]*:(?:\s|$)|---|\{")


def _looks_like_yaml(text: str) -> bool:
    for raw in text.split("\n"):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        return _YAML_START_RE.match(line) is not None
    return False


def import_ansible(path: Path, *, format: Literal["auto", "ini", "yaml"] = "auto") -> ImportResult:
    """Servers from an Ansible inventory file, and the hosts skipped with their reason.

    ``format="auto"`` reads ``.yml``/``.yaml``/``.json`` files as YAML and sniffs the
    others (a first line like ``all:`` is YAML, anything else INI).
    """
    source = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ImportFileError(source, None, f"cannot read: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ImportFileError(source, line, "is not valid UTF-8") from None
    if format == "auto":
        is_yaml = Path(path).suffix.lower() in _YAML_SUFFIXES or _looks_like_yaml(text)
    else:
        is_yaml = format == "yaml"
    if is_yaml:
        root = yamlio.loads(data, source)
        if root.value is not None:
            root.as_mapping()
        inventory = _parse_yaml(root)
    else:
        inventory = _parse_ini(text, source)
    return _servers(inventory)
