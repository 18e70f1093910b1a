"""The task engine's vocabulary: task states, targets, priorities, and the records the
engine hands to the core (tasks, batches, steps, log lines, schedules).

These are plain frozen dataclasses built from store rows; they carry no behaviour but
a few properties. ``args`` never hold secrets: :func:`check_args` refuses keys that look
like one, before anything is stored.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from cockpit.model import ValidationError


class TaskState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"  # a worker died under a non-idempotent task; see the result
    UNKNOWN = "unknown"  # the outcome could not be read back; never taken for success

    @property
    def final(self) -> bool:
        return self in FINAL_STATES


#: States a task never leaves by itself (``unknown`` may still be reconciled by a worker).
FINAL_STATES: Final = frozenset(
    {
        TaskState.SUCCEEDED,
        TaskState.FAILED,
        TaskState.CANCELLED,
        TaskState.INTERRUPTED,
        TaskState.UNKNOWN,
    }
)


class TargetKind(enum.StrEnum):
    SERVER = "server"
    PLATFORM = "platform"
    SITE = "site"
    CONTROL = "control"  # the control host itself (store maintenance): key "store"


class Priority(enum.IntEnum):
    """Claim order: higher first. Interactive work jumps ahead of scheduled work."""

    SCHEDULED = 0
    INTERACTIVE = 10


class StepState(enum.StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"
    ROLLED_BACK = "rolled_back"
    ROLLBACK_FAILED = "rollback_failed"


class LogStream(enum.StrEnum):
    STDOUT = "stdout"
    STDERR = "stderr"
    ENGINE = "engine"  # the engine's own lines: step start, duration, outcome


@dataclass(frozen=True, slots=True)
class Target:
    kind: TargetKind
    key: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.key}"


@dataclass(frozen=True, slots=True)
class Task:
    id: int
    kind: str
    target: Target
    server: str
    args: Mapping[str, Any]
    state: TaskState
    priority: int
    idempotent: bool
    attempt: int
    max_attempts: int
    batch_id: int | None
    schedule_id: int | None
    retry_of: int | None
    queued_by: str
    worker: str | None
    lease_until: float | None
    not_before: float
    cancel_requested: bool
    step: str
    result: str
    created_at: float
    started_at: float | None
    finished_at: float | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Task:
        return cls(
            id=int(row["id"]),
            kind=str(row["kind"]),
            target=Target(TargetKind(row["target_kind"]), str(row["target_key"])),
            server=str(row["server"]),
            args=json.loads(row["args"]) if row["args"] else {},
            state=TaskState(row["state"]),
            priority=int(row["priority"]),
            idempotent=bool(row["idempotent"]),
            attempt=int(row["attempt"]),
            max_attempts=int(row["max_attempts"]),
            batch_id=row["batch_id"],
            schedule_id=row["schedule_id"],
            retry_of=row["retry_of"],
            queued_by=str(row["queued_by"]),
            worker=row["worker"],
            lease_until=row["lease_until"],
            not_before=float(row["not_before"]),
            cancel_requested=bool(row["cancel_requested"]),
            step=str(row["step"]),
            result=str(row["result"]),
            created_at=float(row["created_at"]),
            started_at=row["started_at"],
            finished_at=row["finished_at"],
        )

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return max(0.0, self.finished_at - self.started_at)


@dataclass(frozen=True, slots=True)
class Batch:
    id: int
    label: str
    queued_by: str
    created_at: float
    task_ids: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class StepRecord:
    task_id: int
    attempt: int
    idx: int
    name: str
    state: StepState
    detached: bool
    run_attempt: int
    started_at: float
    finished_at: float | None
    detail: str

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> StepRecord:
        return cls(
            task_id=int(row["task_id"]),
            attempt=int(row["attempt"]),
            idx=int(row["idx"]),
            name=str(row["name"]),
            state=StepState(row["state"]),
            detached=bool(row["detached"]),
            run_attempt=int(row["run_attempt"]),
            started_at=float(row["started_at"]),
            finished_at=row["finished_at"],
            detail=str(row["detail"]),
        )


@dataclass(frozen=True, slots=True)
class LogLine:
    task_id: int
    seq: int
    at: float
    stream: LogStream
    text: str


@dataclass(frozen=True, slots=True)
class Schedule:
    id: int
    name: str
    cron: str
    kind: str
    targets: tuple[str, ...]
    args: Mapping[str, Any]
    paused: bool
    next_run: float | None
    last_run: float | None
    last_batch: int | None
    created_by: str

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Schedule:
        return cls(
            id=int(row["id"]),
            name=str(row["name"]),
            cron=str(row["cron"]),
            kind=str(row["kind"]),
            targets=tuple(json.loads(row["targets"] or "[]")),
            args=json.loads(row["args"] or "{}"),
            paused=bool(row["paused"]),
            next_run=row["next_run"],
            last_run=row["last_run"],
            last_batch=row["last_batch"],
            created_by=str(row["created_by"]),
        )


#: What a parameter's value is: how a form reads it and what it suggests.
#: ``text``, ``path``, ``email`` and ``domain`` are strings (checked as such);
#: ``platform`` and ``server`` name one in the inventory; ``backup`` is a backup id;
#: ``int`` a whole number; ``bool`` true or false.
PARAM_KINDS: Final = frozenset(
    {"text", "int", "bool", "domain", "platform", "server", "backup", "path", "email"}
)
_TRUE: Final = frozenset({"true", "yes", "on", "1", "y"})
_FALSE: Final = frozenset({"false", "no", "off", "0", "n"})


@dataclass(frozen=True, slots=True)
class Param:
    """One argument a task kind takes (``site.migrate`` takes ``platform``).

    ``choices`` restricts a value to a few words; ``unique`` says the value names
    something new (a clone's domain), so a batch of the task has one target only.
    """

    name: str
    help: str
    required: bool = False
    choices: tuple[str, ...] = ()
    kind: str = "text"
    unique: bool = False

    def __post_init__(self) -> None:
        if not _ARG_KEY_RE.fullmatch(self.name) or _SECRET_KEY_RE.search(self.name):
            raise ValueError(f"not an argument name: {self.name!r}")
        if self.kind not in PARAM_KINDS:
            raise ValueError(f"param {self.name}: kind must be one of {sorted(PARAM_KINDS)}")

    @property
    def error_field(self) -> str:
        """How a :class:`ValidationError` about this param names it: ``args.<name>``."""
        return f"args.{self.name}"

    def parse(self, text: str) -> Any:
        """The value typed as ``text`` (a form field, a ``--arg``), as the kind's JSON
        type: ``bool`` and ``int``/``backup`` are converted, the rest stays a string.
        Refuses what does not read as the kind (the kind's own check does the rest)."""
        value = text.strip()
        if self.kind == "bool":
            if value.lower() in _TRUE:
                return True
            if value.lower() in _FALSE:
                return False
            raise ValidationError(self.error_field, "must be true or false", text)
        if self.kind in ("int", "backup"):
            try:
                return int(value)
            except ValueError:
                what = "a backup id" if self.kind == "backup" else "a whole number"
                raise ValidationError(self.error_field, f"must be {what}", text) from None
        return value


@dataclass(frozen=True, slots=True)
class KindInfo:
    """What ``cockpit task kinds`` lists about a registered kind."""

    name: str
    target: TargetKind
    idempotent: bool
    description: str
    steps: tuple[str, ...] = field(default_factory=tuple)
    max_attempts: int = 1
    #: The arguments it takes, in the order a form asks for them.
    params: tuple[Param, ...] = field(default_factory=tuple)


# ---------------------------------------------------------------------------
# Arguments: JSON, small, never secrets
# ---------------------------------------------------------------------------

_SECRET_KEY_RE: Final = re.compile(
    r"pass|secret|token|private|credential|api_?key"
    r"|(?:^|_)(?:pw|pwd|auth|salt|dsn|cookie|jwt|otp|hmac)(?:_|$)",
    re.IGNORECASE,
)
_ARG_KEY_RE: Final = re.compile(r"[a-z][a-z0-9_]{0,63}")
MAX_ARGS_BYTES: Final = 16 * 1024


def check_args(args: Mapping[str, Any] | None) -> dict[str, Any]:
    """``args`` as a JSON-able dict, after refusing secret-looking keys and odd values.

    Keys are lowercase words (``[a-z][a-z0-9_]*``); values are JSON scalars, lists or
    mappings of them. Secrets never travel in args: a recipe reads them at run time.
    """
    if args is None:
        return {}
    if not isinstance(args, Mapping):
        raise ValidationError("args", "must be a mapping", args)
    out = _check_value(args, "args")
    assert isinstance(out, dict)
    if len(json.dumps(out)) > MAX_ARGS_BYTES:
        raise ValidationError("args", f"must be at most {MAX_ARGS_BYTES} bytes of JSON")
    return out


def _check_value(value: Any, path: str) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        if isinstance(value, str) and "\x00" in value:
            raise ValidationError(path, "must not contain NUL", value)
        return value
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str) or not _ARG_KEY_RE.fullmatch(key):
                raise ValidationError(path, "keys are lowercase words of a-z, 0-9 and '_'", key)
            if _SECRET_KEY_RE.search(key):
                raise ValidationError(
                    f"{path}.{key}",
                    "looks like a secret; secrets never go in task args (a recipe reads "
                    "them from the secrets file when it runs)",
                )
            out[key] = _check_value(item, f"{path}.{key}")
        return out
    if isinstance(value, list | tuple):
        return [_check_value(item, f"{path}[]") for item in value]
    raise ValidationError(path, "must be JSON data (strings, numbers, lists, mappings)", value)
