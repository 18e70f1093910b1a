"""YAML with positions: every value keeps the file, line and column it came from.

Cockpit reads its config and inventory files with this module so that any error can
name the file, the line, the column and the key path (``servers[3].address``)::

    root = yamlio.load(path)
    for server in root["servers"]:
        with server.validating():
            Server(**server.as_mapping())

The document is parsed into *plain* Python values (``dict``, ``list``, ``str``,
``int``, ``float``, ``bool``, ``None``) plus a side table of positions, so walking a
100,000-site file costs no more than walking ``yaml.safe_load``'s result. A
:class:`Node` is a light, read-only view over one value: its path, its position,
typed accessors (``as_str()``, ``as_int()``…) that fail with a :class:`YamlError`
at the right place, and :meth:`Node.validating` to turn a
:class:`cockpit.model.ValidationError` into one.

What is accepted, and what is not:

* One document per file; an empty file is ``None``.
* **Scalars follow a strict subset of YAML 1.1** (what PyYAML and Ansible use):
  only ``true``/``false`` (any case form) are booleans, only ``~``/``null``/empty
  are null, integers are decimal or ``0x`` hex, floats need a dot
  (``1.5``, ``2.``, ``1.0e+3``, ``.inf``, ``.nan``). So ``on``, ``off``,
  ``yes``, ``no``, ``0755``, ``12:30`` and ``2024-01-01`` stay *strings*: an
  ``https: off`` means the word ``off``, a time is not turned into seconds and a
  date is not turned into a ``datetime``. Because the set is a subset of YAML
  1.1's, everything ``yaml.safe_dump`` writes reads back unchanged.
* Explicit tags: only ``!!str``, ``!!int``, ``!!float``, ``!!bool``, ``!!null``,
  ``!!map``, ``!!seq`` (and the non-specific ``!``). Anything else (``!!python/…``,
  ``!!binary``, ``!!set``, ``!!omap``, ``!custom``) is an error.
* **Duplicate keys are an error** (PyYAML silently keeps the last one).
* Mapping keys must be scalars (no lists or mappings as keys).
* Anchors, aliases and merge keys (``<<: *defaults``) are allowed. Aliases share
  the value they refer to (nothing is copied), and their expansion is bounded:
  counting every alias as a copy of what it refers to, a document may grow by at
  most :data:`MAX_ALIAS_EXPANSION` nodes or by its own size, whichever is larger.
  A "billion laughs" document is refused after a few thousand events. A
  recursive alias (a node containing an alias to itself) is an error.
* Nesting is limited to :data:`MAX_DEPTH` levels.
* Tabs used for indentation, bad UTF-8 and control characters are errors, with
  their position.

The C parser (libyaml, ``yaml.CSafeLoader``) is used when available. Python's cyclic
garbage collector is paused while a document is built: it would otherwise rescan the
millions of fresh containers of a large file over and over (plain ``yaml.load`` of a
30 MB, 100,000-site inventory spends about two thirds of its time in the collector).
That file loads here in about 5 s of CPU, against about 28 s for
``yaml.load(CSafeLoader)`` (10 s with the collector paused).
"""

from __future__ import annotations

import difflib
import gc
import json
import math
import os
import re
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final, NoReturn, TypeVar

import yaml
from yaml.events import (
    AliasEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)

from cockpit.model import ValidationError
from cockpit.yamlerror import YamlError

__all__ = [
    "MAX_ALIAS_EXPANSION",
    "MAX_DEPTH",
    "Mark",
    "Node",
    "YamlError",
    "format_path",
    "load",
    "loads",
    "suggest",
]

#: Aliases may add this many nodes (or as many as the document has, if more).
MAX_ALIAS_EXPANSION: Final = 1_000_000
#: Deepest nesting of mappings and sequences accepted.
MAX_DEPTH: Final = 100

_Parser: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Mark:
    """A position in a source: 1-based line and column."""

    source: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.source}:{self.line}:{self.column}"


# ---------------------------------------------------------------------------
# Key paths
# ---------------------------------------------------------------------------

_IDENT_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_PATH_TOKEN_RE: Final = re.compile(
    r"""\.?(?P<name>[A-Za-z_][A-Za-z0-9_-]*)|\[(?P<index>-?[0-9]+)\]|\[(?P<quoted>"(?:[^"\\]|\\.)*")\]"""
)


def _key_segment(key: object, first: bool) -> str:
    if isinstance(key, str):
        if _IDENT_RE.fullmatch(key):
            return key if first else f".{key}"
        return f"[{json.dumps(key)}]"
    return f"[{key!r}]"


def format_path(parts: Collection[object]) -> str:
    """``("servers", 3, "address")`` → ``servers[3].address``.

    Integers are sequence indexes; a key that is not a plain identifier is quoted
    (``hosts["web1.example.com"]``), with any odd character escaped.
    """
    out: list[str] = []
    for part in parts:
        if isinstance(part, int) and not isinstance(part, bool):
            out.append(f"[{part}]")
        else:
            out.append(_key_segment(part, not out))
    return "".join(out)


def _parse_path(path: str) -> list[str | int]:
    parts: list[str | int] = []
    pos = 0
    while pos < len(path):
        m = _PATH_TOKEN_RE.match(path, pos)
        if m is None or (m.group("name") and pos and path[pos] != "."):
            raise ValueError(f"bad key path {path!r} at {pos}")
        if m.group("name") is not None:
            parts.append(m.group("name"))
        elif m.group("index") is not None:
            parts.append(int(m.group("index")))
        else:
            parts.append(json.loads(m.group("quoted")))
        pos = m.end()
    return parts


def suggest(word: str, choices: Collection[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest choice, or ``""``."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _show(value: object, limit: int = 60) -> str:
    text = value if isinstance(value, str) else repr(value)
    shown = text.encode("unicode_escape").decode("ascii")
    if len(shown) > limit:
        shown = shown[: limit - 1] + "…"
    return repr(shown) if isinstance(value, str) else shown


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "a number"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


# ---------------------------------------------------------------------------
# Nodes
# ---------------------------------------------------------------------------

#: Positions are packed into one int: line << 32 | column, both 0-based.
_SHIFT: Final = 32
_LOW: Final = (1 << _SHIFT) - 1


class _Document:
    __slots__ = ("root", "root_pos", "source", "tables")

    def __init__(self, source: str, root: Any, root_pos: int, tables: dict[int, Any]) -> None:
        self.source = source
        self.root = root
        self.root_pos = root_pos
        self.tables = tables


class Node:
    """A read-only view of one value of a loaded document: value, key path, position.

    ``value`` is the plain Python value (shared with the document: do not mutate it).
    The position of a mapping entry is that of its *key*; of a sequence item, that of
    the item itself; of the root, the start of the document.
    """

    __slots__ = ("_doc", "_pos", "path", "value")

    def __init__(self, doc: _Document, value: Any, path: str, pos: int) -> None:
        self._doc = doc
        self.value = value
        self.path = path
        self._pos = pos

    def __repr__(self) -> str:
        return f"<Node {self.path or '<root>'} at {self.mark}: {_show(self.value)}>"

    # -- position -----------------------------------------------------------

    @property
    def source(self) -> str:
        return self._doc.source

    @property
    def line(self) -> int:
        return (self._pos >> _SHIFT) + 1

    @property
    def column(self) -> int:
        return (self._pos & _LOW) + 1

    @property
    def mark(self) -> Mark:
        return Mark(self._doc.source, self.line, self.column)

    def error(self, reason: str, key: object = None) -> YamlError:
        """A :class:`YamlError` at this node, or at its entry ``key`` when given and present."""
        if key is not None and self.is_mapping and key in self.value:
            return self[key].error(reason)
        path = self.path
        if key is not None:
            path += _key_segment(key, not path)
        return YamlError(self._doc.source, self.line, self.column, path, reason)

    # -- shape --------------------------------------------------------------

    @property
    def is_mapping(self) -> bool:
        return type(self.value) is dict

    @property
    def is_sequence(self) -> bool:
        return type(self.value) is list

    @property
    def is_scalar(self) -> bool:
        return not isinstance(self.value, dict | list)

    def _child(self, key: Any) -> Node:
        table = self._doc.tables[id(self.value)]
        if type(self.value) is list:
            if isinstance(key, bool) or not isinstance(key, int):
                raise TypeError(f"a sequence is indexed by int, not {type(key).__name__}")
            index = key + len(self.value) if key < 0 else key
            if not 0 <= index < len(self.value):
                raise IndexError(f"{self.path or '<root>'}[{key}]")
            return Node(self._doc, self.value[index], f"{self.path}[{index}]", table[index])
        return Node(
            self._doc, self.value[key], self.path + _key_segment(key, not self.path), table[key]
        )

    def __getitem__(self, key: Any) -> Node:
        if not isinstance(self.value, dict | list):
            raise TypeError(f"{self.path or '<root>'} is {_type_name(self.value)}, not a container")
        return self._child(key)

    def get(self, key: Any, default: Node | None = None) -> Node | None:
        """The entry ``key`` of a mapping, or ``default`` (also when this is no mapping)."""
        if type(self.value) is dict and key in self.value:
            return self._child(key)
        return default

    def __contains__(self, key: object) -> bool:
        return type(self.value) is dict and key in self.value

    def __bool__(self) -> bool:
        """Always true: a node is there, even when its value is empty or false."""
        return True

    def __len__(self) -> int:
        if not isinstance(self.value, dict | list):
            raise TypeError(f"{self.path or '<root>'} is {_type_name(self.value)}")
        return len(self.value)

    def __iter__(self) -> Iterator[Node]:
        """The items of a sequence, as nodes (use :meth:`items` for a mapping)."""
        if type(self.value) is not list:
            raise TypeError(f"{self.path or '<root>'} is {_type_name(self.value)}, not a list")
        return self._items()

    def _items(self) -> Iterator[Node]:
        table = self._doc.tables[id(self.value)]
        doc, path = self._doc, self.path
        for index, item in enumerate(self.value):
            yield Node(doc, item, f"{path}[{index}]", table[index])

    def items(self) -> Iterator[tuple[Any, Node]]:
        """The entries of a mapping, as ``(key, node)``."""
        if type(self.value) is not dict:
            raise TypeError(f"{self.path or '<root>'} is {_type_name(self.value)}, not a mapping")
        return self._entries()

    def _entries(self) -> Iterator[tuple[Any, Node]]:
        table = self._doc.tables[id(self.value)]
        doc, path = self._doc, self.path
        first = not path
        for key, item in self.value.items():
            yield key, Node(doc, item, path + _key_segment(key, first), table[key])

    def keys(self) -> list[Any]:
        return list(self.value) if type(self.value) is dict else []

    def at(self, path: str) -> Node:
        """The node at a relative key path such as ``servers[3].services[0].type``."""
        node = self
        for part in _parse_path(path):
            node = node[part]
        return node

    # -- typed access, failing at this node ---------------------------------

    def _fail(self, expected: str) -> NoReturn:
        raise self.error(f"must be {expected} (got {_type_name(self.value)}: {_show(self.value)})")

    def as_mapping(self) -> dict[Any, Any]:
        """The value as a dict; a ``null`` (an empty entry) is an empty mapping."""
        if self.value is None:
            return {}
        if type(self.value) is not dict:
            self._fail("a mapping")
        return self.value

    def as_list(self) -> list[Any]:
        """The value as a list; a ``null`` (an empty entry) is an empty list."""
        if self.value is None:
            return []
        if type(self.value) is not list:
            self._fail("a list")
        return self.value

    def as_str(self) -> str:
        if not isinstance(self.value, str):
            self._fail("a string")
        return self.value

    def as_bool(self) -> bool:
        if not isinstance(self.value, bool):
            self._fail("true or false")
        return self.value

    def as_int(self, *, minimum: int | None = None, maximum: int | None = None) -> int:
        value = self.value
        if isinstance(value, bool) or not isinstance(value, int):
            self._fail("a whole number")
        self._check_range(value, minimum, maximum)
        return value

    def as_float(self, *, minimum: float | None = None, maximum: float | None = None) -> float:
        value = self.value
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            self._fail("a number")
        self._check_range(value, minimum, maximum)
        return float(value)

    def _check_range(self, value: float, minimum: float | None, maximum: float | None) -> None:
        if minimum is not None and value < minimum:
            raise self.error(f"must be at least {minimum} (got {value})")
        if maximum is not None and value > maximum:
            raise self.error(f"must be at most {maximum} (got {value})")

    def check_keys(self, allowed: Collection[str], required: Collection[str] = ()) -> None:
        """Refuse keys not in ``allowed`` (with a "did you mean") and missing ``required`` ones."""
        mapping = self.as_mapping()
        for key in mapping:
            if key not in allowed:
                hint = suggest(key, allowed) if isinstance(key, str) else ""
                valid = ", ".join(sorted(allowed))
                raise self.error(f"unknown key{hint}; valid keys: {valid}", key)
        for key in required:
            if key not in mapping:
                raise self.error(f"missing required key {key!r}")

    # -- model validation -----------------------------------------------------

    def locate(self, field: str) -> Node:
        """The deepest node named by a :class:`ValidationError` field, from this node.

        The model names fields like ``server.ssh_options.identity_file``: the parts
        that are not keys here (the entity name ``server``) are skipped, the others
        followed as far as they go.
        """
        node = self
        for part in field.split("."):
            if type(node.value) is dict and part in node.value:
                node = node._child(part)
            elif type(node.value) is list and part.isdigit() and int(part) < len(node.value):
                node = node._child(int(part))
        return node

    def from_validation(self, exc: ValidationError) -> YamlError:
        """The :class:`YamlError` for a model error raised while building from this node."""
        node = self.locate(exc.field)
        shown = "" if exc.value is None else f" (got {_show(exc.value)})"
        return node.error(f"{exc.reason}{shown}")

    def build(self, factory: Callable[..., _T], values: Mapping[str, Any] | None = None) -> _T:
        """``factory(**values)`` (default: this mapping's entries), model errors placed here.

        A :class:`ValidationError` becomes a :class:`YamlError` at the key it names.
        Check the keys first (:meth:`check_keys`): an unknown keyword is a TypeError.
        """
        kwargs = self.as_mapping() if values is None else values
        with self.validating():
            return factory(**kwargs)

    @contextmanager
    def validating(self) -> Iterator[Node]:
        """Turn a :class:`ValidationError` raised in the block into a :class:`YamlError`."""
        try:
            yield self
        except ValidationError as exc:
            raise self.from_validation(exc) from exc


# ---------------------------------------------------------------------------
# Scalars
# ---------------------------------------------------------------------------

_TAG = "tag:yaml.org,2002:"
_SPECIAL: Final[dict[str, Any]] = {
    "": None,
    "~": None,
    "null": None,
    "Null": None,
    "NULL": None,
    "true": True,
    "True": True,
    "TRUE": True,
    "false": False,
    "False": False,
    "FALSE": False,
    ".inf": math.inf,
    ".Inf": math.inf,
    ".INF": math.inf,
    "+.inf": math.inf,
    "+.Inf": math.inf,
    "+.INF": math.inf,
    "-.inf": -math.inf,
    "-.Inf": -math.inf,
    "-.INF": -math.inf,
    ".nan": math.nan,
    ".NaN": math.nan,
    ".NAN": math.nan,
}
_NUMERIC_START: Final = frozenset("0123456789-+.")
_INT_RE: Final = re.compile(r"[-+]?(?:0|[1-9][0-9]*)")
_HEX_RE: Final = re.compile(r"0x[0-9a-fA-F]+")
_FLOAT_RE: Final = re.compile(r"[-+]?[0-9]+\.[0-9]*(?:[eE][-+][0-9]+)?|\.[0-9]+(?:[eE][-+][0-9]+)?")
_MISSING: Final[Any] = object()


def _plain(value: str) -> Any:
    """The value of an untagged plain scalar (see the module docstring for the rules)."""
    special = _SPECIAL.get(value, _MISSING)
    if special is not _MISSING:
        return special
    if value[0] in _NUMERIC_START:
        if _INT_RE.fullmatch(value):
            return int(value)
        if _FLOAT_RE.fullmatch(value):
            return float(value)
        if _HEX_RE.fullmatch(value):
            return int(value, 16)
    return value


def _tagged(tag: str, value: str) -> Any:
    """The value of an explicitly tagged scalar; raises ValueError for what is refused."""
    if tag == "!" or tag == _TAG + "str":
        return value
    if tag == _TAG + "int":
        if _INT_RE.fullmatch(value):
            return int(value)
        if _HEX_RE.fullmatch(value):
            return int(value, 16)
        raise ValueError(f"{_show(value)} is not an integer")
    if tag == _TAG + "float":
        special = _SPECIAL.get(value)
        if isinstance(special, float):
            return special
        if _FLOAT_RE.fullmatch(value) or _INT_RE.fullmatch(value):
            return float(value)
        raise ValueError(f"{_show(value)} is not a number")
    if tag == _TAG + "bool":
        special = _SPECIAL.get(value)
        if isinstance(special, bool):
            return special
        raise ValueError(f"{_show(value)} is not true or false")
    if tag == _TAG + "null":
        if value in ("", "~", "null", "Null", "NULL"):
            return None
        raise ValueError(f"{_show(value)} is not null")
    raise ValueError(f"unsupported tag {_show(tag)}")


# ---------------------------------------------------------------------------
# Building a document from parser events
# ---------------------------------------------------------------------------

_NOKEY: Final[Any] = object()
_MAP, _SEQ = 0, 1
_CONTAINER_TAGS: Final = {_MAP: (_TAG + "map", "!"), _SEQ: (_TAG + "seq", "!")}


class _Builder:
    """Turns the event stream of one document into plain values and position tables."""

    def __init__(self, source: str, data: bytes | str) -> None:
        self.source = source
        self.data = data
        self.tables: dict[int, Any] = {}

    # Frames are lists, for speed:
    # [kind, container, table, pending key, its position, merges, anchor info, key is plain]
    def fail(self, stack: list[list[Any]], pos: int, reason: str) -> NoReturn:
        parts: list[object] = []
        for frame in stack:
            if frame[0] == _SEQ:
                parts.append(len(frame[1]))
            elif frame[3] is not _NOKEY:
                parts.append(frame[3])
        raise YamlError(
            self.source, (pos >> _SHIFT) + 1, (pos & _LOW) + 1, format_path(parts), reason
        )

    def build(self, parser: Any) -> tuple[Any, int]:
        tables = self.tables
        stack: list[list[Any]] = []
        anchors: dict[str, tuple[Any, int]] = {}
        open_anchors: set[str] = set()
        count = 0  # events that make a node
        extra = 0  # nodes that aliases add, counting each alias as a copy
        root: Any = _MISSING
        root_pos = 0
        get_event = parser.get_event

        event = get_event()  # StreamStart
        event = get_event()
        if isinstance(event, StreamEndEvent):
            return None, 0
        assert isinstance(event, DocumentStartEvent)

        while True:
            event = get_event()
            etype = type(event)
            mark = event.start_mark
            pos = (mark.line << _SHIFT) | mark.column
            if etype is ScalarEvent:
                count += 1
                tag = event.tag
                text = event.value
                if tag is None:
                    value = _plain(text) if event.implicit[0] else text
                else:
                    try:
                        value = _tagged(tag, text)
                    except ValueError as exc:
                        self.fail(stack, pos, str(exc))
                if event.anchor is not None:
                    anchors[event.anchor] = (value, 1)
                is_plain_key = event.implicit[0]
            elif etype is MappingStartEvent or etype is SequenceStartEvent:
                count += 1
                kind = _MAP if etype is MappingStartEvent else _SEQ
                if event.tag is not None and event.tag not in _CONTAINER_TAGS[kind]:
                    self.fail(stack, pos, f"unsupported tag {_show(event.tag)}")
                if len(stack) >= MAX_DEPTH:
                    self.fail(stack, pos, f"nesting deeper than {MAX_DEPTH} levels")
                if stack and stack[-1][0] == _MAP and stack[-1][3] is _NOKEY:
                    self.fail(stack, pos, "a mapping key must be a plain value, not a container")
                anchor = event.anchor
                info = None
                if anchor is not None:
                    open_anchors.add(anchor)
                    info = (anchor, count, extra)
                if kind == _MAP:
                    stack.append([_MAP, {}, {}, _NOKEY, 0, None, info, False, pos])
                else:
                    stack.append([_SEQ, [], [], None, 0, None, info, False, pos])
                continue
            elif etype is MappingEndEvent or etype is SequenceEndEvent:
                frame = stack.pop()
                value = frame[1]
                if frame[5] is not None:
                    value = self.merge([*stack, frame], value, frame[2], frame[5])
                tables[id(value)] = frame[2]
                info = frame[6]
                if info is not None:
                    open_anchors.discard(info[0])
                    anchors[info[0]] = (value, count - info[1] + 1 + extra - info[2])
                pos = frame[8]
                is_plain_key = False
            elif etype is AliasEvent:
                name = event.anchor
                if name in open_anchors:
                    self.fail(stack, pos, f"alias *{name} refers to a node that contains it")
                found = anchors.get(name)
                if found is None:
                    self.fail(stack, pos, f"undefined alias *{name}")
                value, size = found
                extra += size
                if extra > MAX_ALIAS_EXPANSION and extra > count:
                    self.fail(
                        stack,
                        pos,
                        "aliases expand to too many nodes (a 'billion laughs' document?)",
                    )
                is_plain_key = False
            else:  # DocumentEnd
                break

            # Add the finished value to the enclosing container.
            if not stack:
                root, root_pos = value, pos
                continue
            frame = stack[-1]
            if frame[0] == _SEQ:
                frame[1].append(value)
                frame[2].append(pos)
            elif frame[3] is _NOKEY:
                if isinstance(value, dict | list):
                    self.fail(stack, pos, "a mapping key must be a plain value, not a container")
                frame[3] = value
                frame[4] = pos
                frame[7] = is_plain_key
            else:
                key = frame[3]
                container = frame[1]
                if key == "<<" and frame[7]:
                    if frame[5] is not None:
                        self.fail(stack, frame[4], "duplicate key '<<'")
                    frame[5] = (value, frame[4])
                elif key in container:
                    first = frame[2][key]
                    self.fail(
                        stack,
                        frame[4],
                        f"duplicate key {_show(key)} (first at line {(first >> _SHIFT) + 1})",
                    )
                else:
                    container[key] = value
                    frame[2][key] = frame[4]
                frame[3] = _NOKEY

        event = get_event()
        if not isinstance(event, StreamEndEvent):
            m = event.start_mark
            raise YamlError(
                self.source, m.line + 1, m.column + 1, "", "expected a single YAML document"
            )
        if root is _MISSING:  # pragma: no cover - the parser always yields a node
            root = None
        return root, root_pos

    def merge(
        self,
        stack: list[list[Any]],
        mapping: dict[Any, Any],
        table: dict[Any, int],
        merge: tuple[Any, int],
    ) -> dict[Any, Any]:
        """Apply a ``<<`` merge key: explicit keys win, then earlier merged mappings."""
        value, pos = merge
        sources = value if type(value) is list else [value]
        merged: dict[Any, Any] = {}
        merged_table: dict[Any, int] = {}
        for source in sources:
            if type(source) is not dict:
                stack[-1][3] = "<<"
                self.fail(stack, pos, "a merge key '<<' takes a mapping or a list of mappings")
            source_table = self.tables[id(source)]
            for key, item in source.items():
                if key not in merged and key not in mapping:
                    merged[key] = item
                    merged_table[key] = source_table[key]
        merged.update(mapping)
        merged_table.update(table)
        table.clear()
        table.update(merged_table)
        return merged


def _line_of(data: bytes | str, offset: int) -> tuple[int, int]:
    nl: Any = b"\n" if isinstance(data, bytes) else "\n"
    line = data.count(nl, 0, offset)
    start = data.rfind(nl, 0, offset) + 1
    return line + 1, offset - start + 1


def _convert_error(source: str, data: bytes | str, exc: yaml.YAMLError) -> YamlError:
    if isinstance(exc, yaml.reader.ReaderError):
        line, column = _line_of(data, exc.position)
        char = exc.character
        shown = f"0x{char:02x}" if isinstance(char, int) else repr(char)
        return YamlError(source, line, column, "", f"{exc.reason} ({shown})")
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        reason = exc.problem or "invalid YAML"
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
        lines = text.split("\n")
        if 0 <= mark.line < len(lines) and lines[mark.line][mark.column : mark.column + 1] == "\t":
            reason = "tab characters must not be used for indentation"
        elif exc.context:
            ctx = exc.context_mark
            where = f" at line {ctx.line + 1}" if ctx is not None and ctx.line != mark.line else ""
            reason = f"{reason} ({exc.context}{where})"
        return YamlError(source, mark.line + 1, mark.column + 1, "", reason)
    return YamlError(source, None, None, "", str(exc))


def loads(text: str | bytes, source: str = "<string>") -> Node:
    """Parse one YAML document; ``source`` names it in errors."""
    if isinstance(text, str):
        # Bytes throughout, so that reader errors (offsets in bytes) map to lines.
        text = text.encode("utf-8", "surrogatepass")
    parser = _Parser(text)
    builder = _Builder(source, text)
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        root, root_pos = builder.build(parser)
    except yaml.YAMLError as exc:
        raise _convert_error(source, text, exc) from None
    finally:
        if was_enabled:
            gc.enable()
        parser.dispose()
    return Node(_Document(source, root, root_pos, builder.tables), root, "", root_pos)


def load(path: str | os.PathLike[str]) -> Node:
    """Read and parse a YAML file; errors name it as given."""
    source = os.fspath(path)
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise YamlError(source, None, None, "", f"cannot read: {exc.strerror or exc}") from None
    return loads(data, source)
