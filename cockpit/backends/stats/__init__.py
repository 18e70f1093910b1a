"""Statistics collectors (issue 7).

- :mod:`~cockpit.backends.stats.accesslog`: the access-log aggregator. A self-contained
  Python 3.9+ program (stdlib only) that Cockpit uploads to each server and runs there;
  Cockpit imports the same module to parse logs in-process.
- :mod:`~cockpit.backends.stats.formats`: the access-log formats it understands, and
  the ``log_format`` / ``LogFormat`` lines Cockpit's vhost templates use.
- :mod:`~cockpit.backends.stats.fallback`: the same aggregation in awk, for servers
  without python3.
- :mod:`~cockpit.backends.stats.collect`: the local side (runs the aggregator through a
  transport, returns :class:`~cockpit.backends.stats.collect.MinuteSample` objects).
"""
