"""``:``: the command line of every view, k9s style, with aliases and completion.

``:servers`` (``:srv``), ``:sites`` (``:s``) with an optional filter, ``:platforms``
(``:pf``), ``:clients``, ``:theme NAME``, ``:help``, ``:q``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from textual.suggester import SuggestFromList

__all__ = [
    "COMMANDS",
    "Command",
    "CommandError",
    "ParsedCommand",
    "command_suggester",
    "parse_command",
]


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    aliases: tuple[str, ...]
    help: str
    takes_argument: bool = False


COMMANDS: tuple[Command, ...] = (
    Command("servers", ("srv", "server"), "list the servers"),
    Command("platforms", ("pf", "platform"), "list the platforms"),
    Command("sites", ("s", "site"), "list the sites (:sites TEXT filters)", takes_argument=True),
    Command("clients", ("client", "cl"), "list the clients"),
    Command("theme", (), "switch theme (:theme NAME)", takes_argument=True),
    Command("help", ("h",), "show the keys of this view"),
    Command("quit", ("q", "q!", "exit"), "quit Cockpit"),
)

_BY_WORD = {word: c for c in COMMANDS for word in (c.name, *c.aliases)}


class CommandError(ValueError):
    """A command line that means nothing."""


@dataclass(frozen=True, slots=True)
class ParsedCommand:
    command: Command
    argument: str

    @property
    def name(self) -> str:
        return self.command.name


def parse_command(line: str) -> ParsedCommand | None:
    """``line`` as a command (None when empty); a :class:`CommandError` lists the commands."""
    text = line.strip().removeprefix(":").strip()
    if not text:
        return None
    word, _, rest = text.partition(" ")
    command = _BY_WORD.get(word.lower())
    if command is None:
        valid = ", ".join(
            f"{c.name} ({', '.join(c.aliases)})" if c.aliases else c.name for c in COMMANDS
        )
        raise CommandError(f"unknown command {word!r}; commands: {valid}")
    argument = rest.strip()
    if argument and not command.takes_argument:
        raise CommandError(f":{command.name} takes no argument")
    return ParsedCommand(command, argument)


def completions(extra: Iterable[str] = ()) -> list[str]:
    words = [c.name for c in COMMANDS] + [a for c in COMMANDS for a in c.aliases if len(a) > 2]
    return [*words, *extra]


def command_suggester(extra: Sequence[str] = ()) -> SuggestFromList:
    """Completion for the command line (``tab`` or ``→`` takes it)."""
    return SuggestFromList(completions(extra), case_sensitive=False)
