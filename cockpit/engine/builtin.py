"""The task kinds Cockpit ships itself (plugins add more through ``cockpit.tasks``).

- ``server.ping``: reach a server and show what it runs and how loaded it is.
- ``server.verify``: verify a server (facts, layout, each service) and keep its health
  in the store, as ``cockpit server verify`` does.
- ``store.prune``: the retention of tasks and their logs (scheduled nightly).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from cockpit.engine.context import TaskContext
from cockpit.engine.model import TargetKind
from cockpit.engine.recipes import Step, StepFailed, TaskKind
from cockpit.model import Health, Server
from cockpit.store import Database
from cockpit.store import servers as server_queries
from cockpit.store import tasks as task_queries

if TYPE_CHECKING:
    from cockpit.backends.secrets import SecretStore
    from cockpit.backends.transport import Transport
    from cockpit.backends.verify import ServerFacts

_PING_SCRIPT: Final = "uname -a; cat /proc/loadavg"


async def _ping(ctx: TaskContext) -> None:
    result = await ctx.sh(_PING_SCRIPT, capture=True)
    load = result.stdout[-1].split()[:3] if result.stdout else []
    ctx.summary("load " + " ".join(load) if load else "answered")


async def verify_and_record(
    db: Database,
    transport: Transport,
    server: Server,
    *,
    secret_store: SecretStore | None = None,
) -> ServerFacts:
    """Verify ``server`` through ``transport`` and keep the outcome in the store: its
    health (``unreachable`` when verify could not connect), the reason, and the facts
    (an unreachable server keeps those it had). The one way Cockpit records a verify,
    for ``Cockpit.verify_server`` and the ``server.verify`` task alike."""
    from cockpit.backends.verify import verify_server

    facts = await verify_server(transport, server, secret_store=secret_store)
    connect = facts.check("connect")
    reached = connect is None or connect.ok
    health = Health(facts.health) if reached else Health.UNREACHABLE
    async with db.write() as conn:
        await server_queries.record_health(
            conn,
            server.name,
            health,
            facts.reason,
            facts.to_json() if reached else None,
            facts.checked_at,
        )
    return facts


async def _verify(ctx: TaskContext) -> None:
    if ctx.server is None or ctx.transport is None:
        raise StepFailed("server.verify needs a server to verify")
    facts = await verify_and_record(ctx.db, ctx.transport, ctx.server)
    for check in facts.checks:
        ctx.log(
            f"{check.name}: {check.status.value}" + (f" ({check.reason})" if check.reason else "")
        )
    connect = facts.check("connect")
    health = "unreachable" if connect is not None and not connect.ok else facts.health
    ctx.log(f"health recorded: {health}")
    if not facts.ok:
        raise StepFailed(f"{health}: {facts.reason}")
    passed = sum(1 for check in facts.checks if check.ok)
    ctx.summary(f"ok: {passed} of {len(facts.checks)} checks passed")


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

SERVER_VERIFY: Final = TaskKind(
    name="server.verify",
    target=TargetKind.SERVER,
    idempotent=True,
    description="Verify the server (facts, layout, each service) and record its health",
    steps=(Step("verify", _verify),),
    max_attempts=1,  # an unreachable server is recorded as such, not retried at once
)

STORE_PRUNE: Final = TaskKind(
    name="store.prune",
    target=TargetKind.CONTROL,
    idempotent=True,
    description="Delete tasks and logs beyond retention (last N per target, failures D days)",
    steps=(Step("prune", _prune),),
    max_attempts=1,
)

BUILTIN_KINDS: Final = (SERVER_PING, SERVER_VERIFY, STORE_PRUNE)
