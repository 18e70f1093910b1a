"""The worker process: one per store on a host, found through a lock file.

``<store>.worker.lock`` (beside the store, in the data dir by default) is held with an
exclusive ``flock`` by the running worker for its whole life and holds its pid and id
as JSON. Whoever can take a shared lock on it knows no worker runs. The TUI and the CLI
start a worker *detached* (a new session through ``setsid``, stdin from /dev/null,
output to ``<store>.worker.log``) when none runs, so closing the terminal or losing the
SSH session never stops a task. ``SIGTERM`` stops a worker gracefully; ``SIGUSR1`` tells
it new work was queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from cockpit.config import Config

if TYPE_CHECKING:
    from cockpit.backends.transport import Transport
    from cockpit.engine.recipes import Registry
    from cockpit.engine.worker import WorkerOptions
    from cockpit.model import Server

log = logging.getLogger(__name__)


def lock_path(config: Config) -> Path:
    return config.store.with_name(config.store.name + ".worker.lock")


def log_path(config: Config) -> Path:
    return config.store.with_name(config.store.name + ".worker.log")


@dataclass(frozen=True, slots=True)
class WorkerStatus:
    running: bool
    pid: int | None = None
    worker_id: str | None = None
    started_at: float | None = None
    lock: Path | None = None
    log: Path | None = None


def status(config: Config) -> WorkerStatus:
    """Whether a worker holds this store's lock, and which."""
    path = lock_path(config)
    base = WorkerStatus(False, lock=path, log=log_path(config))
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return base
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            info = _read_info(fd)
            pid, worker_id, started = info.get("pid"), info.get("id"), info.get("started")
            return WorkerStatus(
                True,
                pid=pid if isinstance(pid, int) else None,
                worker_id=worker_id if isinstance(worker_id, str) else None,
                started_at=float(started) if isinstance(started, int | float) else None,
                lock=path,
                log=log_path(config),
            )
        fcntl.flock(fd, fcntl.LOCK_UN)
        return base
    finally:
        os.close(fd)


def _read_info(fd: int) -> dict[str, object]:
    with contextlib.suppress(OSError, ValueError):
        os.lseek(fd, 0, os.SEEK_SET)
        data = os.read(fd, 4096)
        info = json.loads(data.decode("utf-8") or "{}")
        if isinstance(info, dict):
            return info
    return {}


class WorkerLock:
    """The exclusive lock a running worker holds."""

    def __init__(self, config: Config) -> None:
        self.path = lock_path(config)
        self._file: IO[str] | None = None

    def acquire(self, worker_id: str) -> bool:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        handle = os.fdopen(fd, "r+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "id": worker_id, "started": time.time()}))
        handle.flush()
        self._file = handle
        return True

    def release(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.seek(0)
                self._file.truncate()
            self._file.close()
            self._file = None


def notify(config: Config) -> None:
    """Tell the running worker (if any) that new work is queued."""
    current = status(config)
    if current.running and isinstance(current.pid, int):
        with contextlib.suppress(OSError):
            os.kill(current.pid, signal.SIGUSR1)


def worker_argv(config: Config) -> list[str]:
    argv = [sys.executable, "-m", "cockpit.engine", "--store", str(config.store)]
    if config.source is not None:
        argv += ["--config", str(config.source)]
    return argv


#: One start at a time in this process (threads of the TUI, the CLI's event loop).
_STARTING = threading.Lock()


def ensure_running(config: Config, *, wait: float = 10.0) -> WorkerStatus:
    """Start a detached worker for this store unless one runs; its status.

    Blocking, and safe to call from any thread (``asyncio.to_thread``): when a worker
    runs it only reads the lock file and returns at once; concurrent callers in one
    process start one worker between them (other processes lose the lock race and
    their worker exits at once). A start waits up to ``wait`` s for the worker to hold
    its lock.
    """
    current = status(config)
    if current.running:
        return current
    with _STARTING:
        current = status(config)
        if current.running:
            return current
        return _start(config, wait)


def _start(config: Config, wait: float) -> WorkerStatus:
    logfile = log_path(config)
    logfile.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(logfile, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    try:
        proc = subprocess.Popen(
            worker_argv(config),
            stdin=subprocess.DEVNULL,
            stdout=fd,
            stderr=fd,
            start_new_session=True,  # setsid: no terminal, no SIGHUP when the session ends
            close_fds=True,
            cwd="/",
        )
    finally:
        os.close(fd)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        current = status(config)
        if current.running and current.pid is not None:
            return current  # (the lock is taken a moment before its pid is written in it)
        if proc.poll() is not None:
            # Lost a race with another starter (it exits 0), or failed (see the log).
            current = status(config)
            if current.running:
                return current
            break
        time.sleep(0.05)
    return status(config)


def stop(config: Config, *, timeout: float = 30.0) -> bool:
    """Ask the running worker to stop (SIGTERM) and wait; False when none ran."""
    current = status(config)
    if not current.running or not isinstance(current.pid, int):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(current.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not status(config).running:
            return True
        time.sleep(0.1)
    raise TimeoutError(f"the worker (pid {current.pid}) did not stop within {timeout:g} s")


#: The worker's GIL switch interval (Python's default: 5 ms). A commit on the store's
#: thread hands its result back only once that thread has the GIL again, and a busy
#: event loop keeps it until the interval ends: the tasks whose ends it held wait as
#: long before their slots are reused.
SWITCH_INTERVAL = 0.0005


def quiet_ssh_log() -> None:
    """Keep asyncssh's warnings and errors in the worker's log, not its INFO lines: it
    writes five or six per command (channel opened, command, exit status, closed…),
    which would be most of the log and a good part of the worker's own CPU per task.
    A level set explicitly on the ``asyncssh`` logger is left alone."""
    ssh_log = logging.getLogger("asyncssh")
    if ssh_log.level == logging.NOTSET:
        ssh_log.setLevel(logging.WARNING)


async def serve(
    config: Config,
    *,
    registry: Registry | None = None,
    transport_factory: Callable[[Server], Transport] | None = None,
    options: WorkerOptions | None = None,
    install_signals: bool = True,
) -> int:
    """Run a worker on this store until SIGTERM/SIGINT; 0, or 0 at once if one runs."""
    from cockpit.engine.worker import Worker, new_worker_id
    from cockpit.store import open_store

    worker_id = new_worker_id()
    quiet_ssh_log()
    sys.setswitchinterval(SWITCH_INTERVAL)
    if install_signals:
        # Whoever sees the lock taken may send SIGUSR1 at once: never die of it.
        signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    lock = WorkerLock(config)
    if not lock.acquire(worker_id):
        log.info("a worker already runs for %s", config.store)
        return 0
    try:
        db = await open_store(config.store)
        try:
            worker = Worker(
                db,
                config,
                registry=registry,
                transport_factory=transport_factory,
                options=options,
                worker_id=worker_id,
                holds_host_lock=True,
            )
            if install_signals:
                loop = asyncio.get_running_loop()
                loop.add_signal_handler(signal.SIGTERM, worker.stop)
                loop.add_signal_handler(signal.SIGINT, worker.stop)
                loop.add_signal_handler(signal.SIGUSR1, worker.wake)
                loop.add_signal_handler(signal.SIGHUP, lambda: None)
            log.info("worker %s started on %s", worker_id, config.store)
            await worker.run()
            log.info("worker %s stopped", worker_id)
        finally:
            await db.close()
    finally:
        lock.release()
    return 0
