"""Task kinds as recipes of named steps, and the registry that finds them.

A kind is a :class:`TaskKind`: a name (``site.backup``), the kind of target it acts on,
whether re-running it blindly is harmless (``idempotent``), and its steps. Each step
has ``run`` and, when it changes something, ``rollback``. When a step fails, the steps
before it are rolled back in reverse order and the task ends ``failed``; the log shows
each step's start, duration and outcome.

Two kinds of step:

- :class:`Step` runs Python on the worker (which may run short commands on the target
  through ``ctx.sh``). If the worker dies inside it, its outcome is unknown.
- :class:`RemoteStep` runs one script *detached* on the target (see
  :mod:`cockpit.engine.remote`): it survives a dropped connection and a dead worker,
  and the worker that recovers the task re-attaches to it and reads its exit code.
  Work that must not be done twice (install, restore, migrate, delete) belongs there.

Plugins add kinds through the ``cockpit.tasks`` entry point group: each entry point
names a :class:`TaskKind`, an iterable of them, or a callable returning either::

    [project.entry-points."cockpit.tasks"]
    myplugin = "myplugin.tasks:KINDS"

A kind declares the arguments it takes as :class:`Param` objects (``params``): ``cockpit task
kinds`` lists them and the TUI asks for them in a form. ``check_args`` validates and
normalises them at queue time; a kind that declares params but no ``check_args`` gets
:func:`check_params`, which checks them by their declaration.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import TYPE_CHECKING, Any, Final

from cockpit.engine.model import KindInfo, Param, TargetKind, check_args
from cockpit.model import (
    ValidationError,
    validate_domain,
    validate_email,
    validate_name,
    validate_path,
)

if TYPE_CHECKING:
    from cockpit.engine.context import TaskContext

ENTRY_POINT_GROUP: Final = "cockpit.tasks"

log = logging.getLogger(__name__)

StepFn = Callable[["TaskContext"], Awaitable[None]]


class StepFailed(Exception):
    """A step failed for good (a command's exit code, a failed check): no retry."""


class OutcomeUnknown(Exception):
    """A step's outcome could not be read back: the task ends ``unknown``."""


@dataclass(frozen=True, slots=True)
class Step:
    """A step run on the worker."""

    name: str
    run: StepFn
    rollback: StepFn | None = None

    detached: bool = field(default=False, init=False)


@dataclass(frozen=True, slots=True)
class RemoteStep:
    """A step whose work is one script run detached on the target.

    ``args`` builds the script's arguments from the context (they travel as ``$1…``,
    never inside the script text). ``ok`` lists the exit codes that mean success.
    """

    name: str
    script: str
    args: Callable[[TaskContext], Sequence[str]] | None = None
    sudo: bool = False
    rollback: StepFn | None = None
    ok: tuple[int, ...] = (0,)

    detached: bool = field(default=True, init=False)

    async def run(self, ctx: TaskContext) -> None:
        args = list(self.args(ctx)) if self.args is not None else []
        result = await ctx.detached(self.script, args, sudo=self.sudo)
        if result.exit_code is None:
            raise OutcomeUnknown(result.reason or "the command's outcome is unknown")
        if result.exit_code not in self.ok:
            raise StepFailed(f"the command exited with {result.exit_code}")


AnyStep = Step | RemoteStep


@dataclass(frozen=True, slots=True)
class TaskKind:
    """A registered kind of task. ``steps`` may depend on the task's args (a callable),
    but must give the same steps for the same args: a recovering worker relies on it."""

    name: str
    target: TargetKind
    idempotent: bool
    description: str
    steps: Sequence[AnyStep] | Callable[[Mapping[str, Any]], Sequence[AnyStep]]
    #: Attempts in all, counting the first: transient errors (refused, timed out) are
    #: retried with backoff up to this; other failures never are.
    max_attempts: int = 3
    #: Validates and normalises args at queue time (raise ValidationError).
    check_args: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    #: Whether commands need root on the target (passed to ctx.sh and the run dir).
    sudo: bool = False
    #: The args it takes (names, help, required or not), for ``task kinds`` and forms.
    #: They must be the keys ``check_args`` accepts (a test holds every built-in kind to it).
    params: tuple[Param, ...] = ()

    def __post_init__(self) -> None:
        names = [p.name for p in self.params]
        if len(set(names)) != len(names):
            raise ValueError(f"task kind {self.name}: a param is declared twice")
        if self.check_args is None and self.params:
            params = self.params
            object.__setattr__(self, "check_args", lambda args: check_params(params, args))

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)

    def validate(self, args: Mapping[str, Any] | None) -> dict[str, Any]:
        """``args`` checked and normalised as queueing them would (no secrets, JSON data,
        then the kind's own ``check_args``), without queueing anything. Raises
        :class:`ValidationError` naming the field (``args.<name>``)."""
        clean = check_args(args)
        if self.check_args is not None:
            clean = self.check_args(clean)
        return clean

    def check_targets(self, count: int) -> None:
        """Refuse a batch of more than one target when a param names something new for
        its target (``unique``: a clone's domain cannot be every clone's)."""
        unique = next((p for p in self.params if p.unique), None)
        if unique is not None and count > 1:
            raise ValidationError(
                "targets",
                f"{self.name} makes a new {unique.name} for its target: one target at a "
                f"time, not {count}",
            )

    def plan(self, args: Mapping[str, Any]) -> list[AnyStep]:
        steps = self.steps(args) if callable(self.steps) else self.steps
        return list(steps)

    def info(self) -> KindInfo:
        names: tuple[str, ...] = ()
        if not callable(self.steps):
            names = tuple(step.name for step in self.steps)
        return KindInfo(
            name=self.name,
            target=self.target,
            idempotent=self.idempotent,
            description=self.description,
            steps=names,
            max_attempts=self.max_attempts,
            params=self.params,
        )


def check_params(params: Sequence[Param], args: dict[str, Any]) -> dict[str, Any]:
    """``args`` checked against declared params: no unknown key, every required one,
    each value of its param's kind (and among its choices)."""
    known = {p.name: p for p in params}
    for key in args:
        if key not in known:
            valid = ", ".join(sorted(known)) or "none"
            raise ValidationError(f"args.{key}", f"unknown; valid: {valid}")
    for param in params:
        if param.name not in args:
            if param.required:
                raise ValidationError(param.error_field, f"required: {param.help}")
            continue
        args[param.name] = _check_param(param, args[param.name])
    return args


def _check_param(param: Param, value: Any) -> Any:
    where = param.error_field
    if param.kind == "bool":
        if not isinstance(value, bool):
            raise ValidationError(where, "must be true or false", value)
        return value
    if param.kind in ("int", "backup"):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValidationError(where, "must be a whole number", value)
        return value
    checks: dict[str, Callable[[object, str], str]] = {
        "domain": validate_domain,
        "platform": validate_name,
        "server": validate_name,
        "path": validate_path,
        "email": validate_email,
    }
    if param.kind in checks:
        value = checks[param.kind](value, where)
    elif not isinstance(value, str):
        raise ValidationError(where, "must be text", value)
    if param.choices and value not in param.choices:
        raise ValidationError(where, f"must be one of {', '.join(param.choices)}", value)
    return value


class UnknownKind(ValidationError):
    def __init__(self, name: str, known: Iterable[str]) -> None:
        super().__init__("kind", f"no such task kind; known: {', '.join(sorted(known))}", name)


class Registry:
    """The task kinds this process knows: the built-in ones and those of plugins."""

    def __init__(self, kinds: Iterable[TaskKind] = ()) -> None:
        self._kinds: dict[str, TaskKind] = {}
        for kind in kinds:
            self.add(kind)

    def add(self, kind: TaskKind, *, replace: bool = False) -> None:
        if not isinstance(kind, TaskKind):
            raise TypeError(f"not a TaskKind: {kind!r}")
        if kind.name in self._kinds and not replace:
            raise ValueError(f"task kind {kind.name} is registered twice")
        self._kinds[kind.name] = kind

    def get(self, name: str) -> TaskKind:
        try:
            return self._kinds[name]
        except KeyError:
            raise UnknownKind(name, self._kinds) from None

    def __contains__(self, name: object) -> bool:
        return name in self._kinds

    def __iter__(self) -> Iterator[TaskKind]:
        return iter(sorted(self._kinds.values(), key=lambda k: k.name))

    def __len__(self) -> int:
        return len(self._kinds)

    @classmethod
    def default(cls) -> Registry:
        """The built-in kinds plus every kind registered under ``cockpit.tasks``."""
        from cockpit.engine.builtin import BUILTIN_KINDS

        registry = cls(BUILTIN_KINDS)
        registry.load_entry_points()
        return registry

    def load_entry_points(self, group: str = ENTRY_POINT_GROUP) -> list[str]:
        """Add the kinds of an entry point group; a broken plugin is logged and skipped."""
        problems: list[str] = []
        for entry in metadata.entry_points(group=group):
            try:
                loaded: Any = entry.load()
                if callable(loaded) and not isinstance(loaded, TaskKind):
                    loaded = loaded()
                items = [loaded] if isinstance(loaded, TaskKind) else list(loaded)
                for kind in items:
                    if kind.name in self._kinds and self._kinds[kind.name] is kind:
                        continue
                    self.add(kind)
            except Exception as exc:  # a plugin must not break Cockpit
                problems.append(f"task plugin {entry.name} ({entry.value}): {exc}")
                log.warning("%s", problems[-1])
        return problems
