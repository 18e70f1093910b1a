"""The task engine: a durable queue in the store, workers that outlive the TUI.

- :class:`Engine` (``cockpit.engine.queue``): the API the core exposes — queue tasks
  as batches, list and inspect them, cancel and retry, follow logs, schedules, and the
  detached worker process.
- :class:`Worker` (``cockpit.engine.worker``): claims and runs tasks with bounded
  concurrency, heartbeats leases, recovers what dead workers left.
- Recipes (``cockpit.engine.recipes``): a task kind is named steps with ``run`` and
  ``rollback``; :class:`RemoteStep` runs detached on the target and survives a dropped
  connection. Kinds register through the ``cockpit.tasks`` entry point group.

Nothing here imports Textual.
"""

from __future__ import annotations

from cockpit.engine.context import TaskContext
from cockpit.engine.daemon import WorkerStatus
from cockpit.engine.model import (
    FINAL_STATES,
    Batch,
    KindInfo,
    LogLine,
    LogStream,
    Param,
    Priority,
    Schedule,
    StepRecord,
    StepState,
    Target,
    TargetKind,
    Task,
    TaskState,
)
from cockpit.engine.queue import Engine, TaskError
from cockpit.engine.recipes import (
    ENTRY_POINT_GROUP,
    OutcomeUnknown,
    Registry,
    RemoteStep,
    Step,
    StepFailed,
    TaskKind,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "FINAL_STATES",
    "Batch",
    "Engine",
    "KindInfo",
    "LogLine",
    "LogStream",
    "OutcomeUnknown",
    "Param",
    "Priority",
    "Registry",
    "RemoteStep",
    "Schedule",
    "Step",
    "StepFailed",
    "StepRecord",
    "StepState",
    "Target",
    "TargetKind",
    "Task",
    "TaskContext",
    "TaskError",
    "TaskKind",
    "TaskState",
    "WorkerStatus",
]
