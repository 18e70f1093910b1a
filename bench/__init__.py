"""Cockpit's benchmarks. Run all with ``python -m bench``; one with ``python -m bench NAME``.

Each module here with a ``run() -> Section`` function is a benchmark. Results go to
``docs/benchmarks.md``, one section per benchmark, with the date and the machine.
"""
