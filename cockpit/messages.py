"""App-wide messages of the TUI (a widget's own messages are nested in its class)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from textual.message import Message
from textual.worker import Worker

__all__ = ["BatchQueued", "OpenView", "Scope", "ScopeKind", "ViewName", "WorkerFailed"]

#: The views the app can open. ``site``, ``task``, ``batch``, ``backup`` and ``schedule``
#: are details, opened with a key (a site's domain, an id, a schedule's name).
ViewName = Literal[
    "overview",
    "servers",
    "platforms",
    "sites",
    "clients",
    "backups",
    "tasks",
    "schedules",
    "audit",
    "problems",
    "site",
    "task",
    "batch",
    "backup",
    "schedule",
]

#: What a list can be narrowed to (see :class:`Scope`): ``state`` narrows the tasks,
#: ``health`` the servers, ``check`` the on-call problems.
ScopeKind = Literal[
    "server", "platform", "client", "environment", "status", "state", "health", "check"
]


@dataclass(frozen=True, slots=True)
class Scope:
    """What a drilled-down view is narrowed to: the sites of one server, platform, client,
    environment or status (``:sites prod``), the platforms of one server, the tasks in one
    state (``:tasks failed``), the servers of one health, the problems of one on-call
    check (``site.probe``)."""

    kind: ScopeKind
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"


class WorkerFailed(Message):
    """A worker (a long job: a core call) failed; the app shows it, it never crashes."""

    def __init__(self, job: str, error: BaseException | None) -> None:
        self.job = job
        self.error = error
        super().__init__()

    @classmethod
    def from_worker(cls, worker: Worker[Any], job: str | None = None) -> WorkerFailed:
        return cls(job or worker.name or "a background job", worker.error)

    @property
    def summary(self) -> str:
        error = self.error
        if error is None:
            return f"{self.job} failed"
        detail = str(error) or type(error).__name__
        return f"{self.job} failed: {detail}"


class OpenView(Message):
    """Open a view (pushing it, or going back to it when it is already open)."""

    def __init__(
        self,
        view: ViewName,
        *,
        scope: Scope | None = None,
        filter_text: str | None = None,
        key: str | None = None,
    ) -> None:
        self.view = view
        self.scope = scope
        self.filter_text = filter_text
        self.key = key  # the entity a detail view shows (a site's domain)
        super().__init__()


class BatchQueued(Message):
    """A batch of tasks was queued from the TUI (one confirmation, one batch)."""

    def __init__(self, batch_id: int, kind: str, targets: int) -> None:
        self.batch_id = batch_id
        self.kind = kind
        self.targets = targets
        super().__init__()
