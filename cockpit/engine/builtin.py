"""The task kinds Cockpit ships itself (plugins add more through ``cockpit.tasks``).

- ``server.ping``: reach a server and show what it runs and how loaded it is.
- ``store.prune``: the retention of tasks and their logs (scheduled nightly).
"""

from __future__ import annotations

from typing import Final

from cockpit.engine.context import TaskContext
from cockpit.engine.model import TargetKind
from cockpit.engine.recipes import Step, TaskKind
from cockpit.store import tasks as task_queries

_PING_SCRIPT: Final = "uname -a; cat /proc/loadavg"


async def _ping(ctx: TaskContext) -> None:
    result = await ctx.sh(_PING_SCRIPT, capture=True)
    load = result.stdout[-1].split()[:3] if result.stdout else []
    ctx.summary("load " + " ".join(load) if load else "answered")


async def _prune(ctx: TaskContext) -> None:
    retention = ctx.config.retention
    async with ctx.db.write() as conn:
        removed = await task_queries.prune(
            conn, keep_per_target=retention.keep_per_target, failed_days=retention.failed_days
        )
    ctx.log(
        f"kept the last {retention.keep_per_target} tasks of each target and failures of the "
        f"last {retention.failed_days} days; removed {removed} older tasks with their logs"
    )
    ctx.summary(f"removed {removed} tasks")


SERVER_PING: Final = TaskKind(
    name="server.ping",
    target=TargetKind.SERVER,
    idempotent=True,
    description="Reach the server: uname -a and the load average",
    steps=(Step("probe", _ping),),
)

STORE_PRUNE: Final = TaskKind(
    name="store.prune",
    target=TargetKind.CONTROL,
    idempotent=True,
    description="Delete tasks and logs beyond retention (last N per target, failures D days)",
    steps=(Step("prune", _prune),),
    max_attempts=1,
)

BUILTIN_KINDS: Final = (SERVER_PING, STORE_PRUNE)
