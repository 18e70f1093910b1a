"""``:``: the command line of every view, k9s style, with aliases, arguments and completion.

::

    :sites                    every site                 (:s, :site)
    :sites prod /wp           the sites of environment prod whose domain holds "wp"
    :sites disabled           sites by status; also a server, platform or client name
    :sites client=acme /~^a   explicit scopes (env=, server=, platform=, client=, status=)
    :servers staging          (:srv)      :platforms web1     (:pf)
    :clients   :backups (:bk)   :overview (:ov)
    :dash (:stats)            the statistics dashboard; :stats NAME charts one server,
                              site, client or platform (server=, site=… when ambiguous)
    :tasks failed /web        (:t) tasks in one state, filtered
    :schedules (:sched)       :audit [WHO]         :batch ID
    :backup ID                a backup's detail   :schedule NAME   a schedule's
    :log 42   :log batch 7    a task's log, followed live; a batch's logs merged
    :theme NAME   :help (:h)   :q

A view command takes at most one *scope* word and a ``/filter`` (everything after the
``/``, as typed in the view's filter bar: ``text``, ``~regex``, ``!`` inverts). A bare word
is tried, in the view's order, as a status, an environment, a server, a platform and a
client; a word that names none of them is taken as the filter (``:sites golf`` filters).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from textual.suggester import Suggester

from cockpit.messages import Scope, ScopeKind
from cockpit.model import SiteStatus

__all__ = [
    "COMMANDS",
    "TASK_STATES",
    "Command",
    "CommandError",
    "CommandSuggester",
    "Names",
    "ParsedCommand",
    "parse_command",
    "parse_log_target",
    "resolve_view_arguments",
]


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    aliases: tuple[str, ...]
    help: str
    takes_argument: bool = False
    view: bool = False  # opens a list view (takes a scope and a /filter)


COMMANDS: tuple[Command, ...] = (
    Command("overview", ("ov",), "is anything wrong?", view=True),
    Command(
        "dashboard",
        ("dash", "stats"),
        "statistics of the fleet (:stats NAME: one server's or site's charts)",
        takes_argument=True,
    ),
    Command("servers", ("srv", "server"), "list the servers (:srv ENV)", view=True),
    Command("platforms", ("pf", "platform"), "list the platforms (:pf SERVER)", view=True),
    Command("sites", ("s", "site"), "list the sites (:sites prod /wp)", view=True),
    Command("clients", ("client", "cl"), "list the clients", view=True),
    Command("backups", ("bk",), "list the backups", view=True),
    Command("backup", (), "a backup's detail (:backup ID; bare: the list)", takes_argument=True),
    Command("tasks", ("t", "task"), "list tasks (:tasks failed)", view=True),
    Command("schedules", ("sched", "cron"), "list the schedules", view=True),
    Command(
        "schedule", (), "a schedule's detail (:schedule NAME; bare: the list)", takes_argument=True
    ),
    Command("audit", ("who",), "who queued what (:audit NAME)", view=True),
    Command("batch", (), "a batch's progress (:batch ID)", takes_argument=True),
    Command("log", ("logs",), "a task's log (:log 42, :log batch 7)", takes_argument=True),
    Command("theme", (), "switch theme (:theme NAME)", takes_argument=True),
    Command("help", ("h",), "show the keys of this view"),
    Command("quit", ("q", "q!", "exit"), "quit Cockpit"),
)

_BY_WORD = {word: c for c in COMMANDS for word in (c.name, *c.aliases)}

#: The states a task can be in (``:tasks failed``); the engine's TaskState values.
TASK_STATES: Final = (
    "queued",
    "running",
    "succeeded",
    "failed",
    "cancelled",
    "interrupted",
    "unknown",
)

_SCOPE_WORDS: Final[dict[str, ScopeKind]] = {
    "env": "environment",
    "environment": "environment",
    "server": "server",
    "srv": "server",
    "platform": "platform",
    "pf": "platform",
    "client": "client",
    "status": "status",
    "state": "state",
}
_STATUSES: Final = tuple(s.value for s in SiteStatus)


class CommandError(ValueError):
    """A command line that means nothing."""


@dataclass(frozen=True, slots=True)
class ParsedCommand:
    command: Command
    argument: str  # everything after the command word
    words: tuple[str, ...] = ()  # the words before a /filter
    filter: str | None = None  # after the "/", as typed

    @property
    def name(self) -> str:
        return self.command.name


def _valid_commands() -> str:
    return ", ".join(
        f"{c.name} ({', '.join(c.aliases)})" if c.aliases else c.name for c in COMMANDS
    )


def parse_command(line: str) -> ParsedCommand | None:
    """``line`` as a command (None when empty); a :class:`CommandError` lists the commands."""
    text = line.strip().removeprefix(":").strip()
    if not text:
        return None
    word, _, rest = text.partition(" ")
    command = _BY_WORD.get(word.lower())
    if command is None:
        raise CommandError(f"unknown command {word!r}; commands: {_valid_commands()}")
    argument = rest.strip()
    if argument and not (command.takes_argument or command.view):
        raise CommandError(f":{command.name} takes no argument")
    words: tuple[str, ...] = ()
    filt: str | None = None
    if command.view:
        head, slash, tail = argument.partition("/")
        if slash and head and not head.endswith(" "):
            # A "/" inside a word ("a/b") is part of it, not the start of a filter.
            head, filt = argument, None
        elif slash:
            filt = tail
        words = tuple(head.split())
    return ParsedCommand(command, argument, words, filt)


def parse_log_target(argument: str) -> tuple[Literal["task", "batch"], int]:
    """``:log``'s argument: ``42`` (a task) or ``batch 7``; a :class:`CommandError` says
    what is expected."""
    words = argument.split()
    kind: Literal["task", "batch"] = "task"
    if len(words) == 2 and words[0].lower() in ("batch", "b", "task"):
        kind = "batch" if words[0].lower() in ("batch", "b") else "task"
        words = words[1:]
    number = words[0].removeprefix("#") if len(words) == 1 else ""
    if not (number.isascii() and number.isdigit()):
        raise CommandError(
            f":log takes a task id or 'batch ID' (:log 42, :log batch 7), not {argument!r}"
        )
    return kind, int(number)


@dataclass(frozen=True, slots=True)
class Names:
    """The names a command line can refer to (a snapshot of the inventory)."""

    environments: frozenset[str] = frozenset()
    servers: frozenset[str] = frozenset()
    platforms: frozenset[str] = frozenset()
    clients: frozenset[str] = frozenset()
    themes: tuple[str, ...] = ()

    def of(self, kind: ScopeKind) -> Iterable[str]:
        if kind == "status":
            return _STATUSES
        if kind == "state":
            return TASK_STATES
        return {
            "environment": self.environments,
            "server": self.servers,
            "platform": self.platforms,
            "client": self.clients,
        }[kind]


def _kind_words(kinds: Sequence[ScopeKind]) -> str:
    shown = {"environment": "env"}
    return ", ".join(f"{shown.get(k, k)}=NAME" for k in kinds)


def resolve_view_arguments(
    view: str, kinds: Sequence[ScopeKind], parsed: ParsedCommand, names: Names
) -> tuple[Scope | None, str | None]:
    """The scope and the filter of a view command (``:sites prod /wp``).

    A bare word that names nothing the view can be narrowed to becomes the filter (when
    no ``/filter`` was given); an explicit ``kind=name`` must name something that exists.
    """
    scope: Scope | None = None
    filt = parsed.filter
    loose: list[str] = []
    for word in parsed.words:
        kind_word, eq, name = word.partition("=")
        found: Scope | None = None
        if eq:
            kind = _SCOPE_WORDS.get(kind_word.lower())
            if kind is None or kind not in kinds:
                valid = _kind_words(kinds) or "no scope"
                raise CommandError(f":{view} takes {valid}, not {kind_word}=")
            known = names.of(kind)
            if name not in known:
                listed = ", ".join(sorted(known)) or "none"
                raise CommandError(f"no {kind} {name!r}; {kind}s: {listed}")
            found = Scope(kind, name)
        else:
            for kind in kinds:
                if word in names.of(kind):
                    found = Scope(kind, word)
                    break
        if found is None:
            loose.append(word)
            continue
        if scope is not None:
            raise CommandError(f"one scope at a time: {scope.name} and {found.name}")
        scope = found
    if loose:
        if filt is not None or len(loose) > 1:
            what = _kind_words(kinds) or "no scope"
            raise CommandError(f":{view}: {' '.join(loose)!r} names nothing ({what}; /filter)")
        filt = loose[0]
    return scope, filt


# -- completion ---------------------------------------------------------------------------


def _first(prefix: str, candidates: Iterable[str]) -> str | None:
    low = prefix.lower()
    for candidate in candidates:
        if candidate.lower().startswith(low) and len(candidate) > len(prefix):
            return candidate
    return None


class CommandSuggester(Suggester):
    """Completes the command word, then its argument: scopes of a view (statuses,
    environments, servers, platforms, clients), theme names, task states.

    ``names`` is called for every suggestion, so completion follows the inventory;
    ``kinds`` gives the scopes a view takes.
    """

    def __init__(
        self,
        names: Callable[[], Names],
        kinds: Callable[[str], Sequence[ScopeKind]] = lambda view: (),
    ) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self.names = names
        self.kinds = kinds

    async def get_suggestion(self, value: str) -> str | None:
        if " " not in value:
            words = [c.name for c in COMMANDS] + [a for c in COMMANDS for a in c.aliases]
            return _first(value, words)
        head, _, _ = value.partition(" ")
        command = _BY_WORD.get(head.lower())
        if command is None:
            return None
        last = value.rsplit(" ", 1)[1]
        if last.startswith("/"):
            return None
        names = self.names()
        candidates: list[str] = []
        if command.name == "theme":
            candidates = list(names.themes)
        elif command.name == "dashboard":
            candidates = sorted(names.servers | names.platforms | names.clients)
        elif command.name == "tasks":
            candidates = list(TASK_STATES)
        elif command.name == "log":
            candidates = ["batch"]
        elif command.view:
            kind_word, eq, rest = last.partition("=")
            kinds = self.kinds(command.name)
            if eq:
                kind = _SCOPE_WORDS.get(kind_word.lower())
                if kind is None or kind not in kinds:
                    return None
                found = _first(rest, sorted(names.of(kind)))
                return value[: len(value) - len(rest)] + found if found else None
            for kind in kinds:
                candidates.extend(sorted(names.of(kind)))
        found = _first(last, candidates)
        if found is None:
            return None
        return value + found[len(last) :]
