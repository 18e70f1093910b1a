"""How a Cockpit process starts: the garbage collector told what its imports made.

Importing what Cockpit runs on (asyncssh and cryptography, click, the store, the
models) creates a few hundred thousand objects that live as long as the process:
modules, classes, functions, constants. CPython's cyclic collector cannot free any of
them, yet every full collection walks them all again, and so does the last one when
the interpreter exits. :func:`imports_done` moves them out of its way with
:func:`gc.freeze` (they go to a permanent generation the collector never visits).

Call it once, where a program starts, after it has imported what it needs and before
it does its work: the ``cockpit`` CLI before it runs a command, the worker
(``python -m cockpit.engine``) before it serves. Only the first call freezes, so
everything made afterwards (tasks, connections, their reference cycles) is collected
as usual for the whole life of a long-running worker; freezing again later would keep
whatever the process then holds out of reach for good. The collector stays enabled.

Measured (``python -m bench transport``: a fresh process importing the SSH backend
and running a command on 10 hosts): imports plus exit cost about 30 ms less CPU. A
higher gen-0 threshold while importing made no difference worth keeping.
"""

from __future__ import annotations

import gc

_frozen = False


def imports_done() -> bool:
    """Freeze what exists now (the imports), the first time only; whether this call froze."""
    global _frozen
    if _frozen:
        return False
    _frozen = True
    gc.freeze()
    return True
