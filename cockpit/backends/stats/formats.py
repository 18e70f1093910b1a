"""The access-log formats Cockpit's aggregator reads, and the lines that make servers write them.

Cockpit's own format, ``cockpit``, is Apache's ``vhost_combined`` with the response time in
the identd slot (the second field after the address, always ``-`` in practice)::

    site.example:443 203.0.113.7 0.012 - [01/Mar/2025:10:00:01 +0000] "GET / HTTP/1.1" 200 5123 "-" "curl/8.5.0"

Why this layout:

* every field the statistics need is in the first eleven space-separated tokens, so the
  fast path is one ``bytes.split`` (see :mod:`~cockpit.backends.stats.accesslog`);
* it stays a valid ``vhost_combined`` line: goaccess (``--log-format=VCOMBINED``),
  awstats and grep-style habits keep working on it;
* ``$host`` (the request's Host, lower-cased, or the server name) cannot hold a space:
  nginx answers 400 to such a Host and logs its server name instead;
* ``$bytes_sent`` counts what went to the client, headers included — the bandwidth that
  quotas are about (Apache's ``%O`` counts the same; ``$body_bytes_sent`` would not).

nginx escapes ``"`` and ``\\`` inside values (``\\x22``, ``\\x5C``), so quotes in the line are
only the field delimiters; Apache escapes them with a backslash, which the parser handles.
"""

from __future__ import annotations

from typing import Final

#: The format names :mod:`~cockpit.backends.stats.accesslog` understands.
COCKPIT: Final = "cockpit"
VHOST_COMBINED: Final = "vhost_combined"
COMBINED: Final = "combined"
FORMATS: Final = (COCKPIT, VHOST_COMBINED, COMBINED)

#: The nginx ``log_format`` name Cockpit's vhost templates use.
NGINX_FORMAT_NAME: Final = "cockpit"

#: The nginx format string (``$request_time``: seconds with milliseconds, e.g. ``0.012``).
NGINX_FORMAT: Final = (
    "$host:$server_port $remote_addr $request_time $remote_user [$time_local] "
    '"$request" $status $bytes_sent "$http_referer" "$http_user_agent"'
)

#: The directive to add once at ``http`` level (nginx.conf or a conf.d/ snippet);
#: a vhost then logs with ``access_log /var/log/nginx/DOMAIN.access.log cockpit;``.
NGINX_LOG_FORMAT: Final = f"log_format {NGINX_FORMAT_NAME} '{NGINX_FORMAT}';"

#: Apache (>= 2.4.13 for ``%{ms}T``, mod_logio for ``%O``): response time in whole ms.
APACHE_FORMAT: Final = (
    '%v:%p %a %{ms}T %u %t \\"%r\\" %>s %O \\"%{Referer}i\\" \\"%{User-Agent}i\\"'
)
APACHE_LOG_FORMAT: Final = f'LogFormat "{APACHE_FORMAT}" cockpit'

#: For goaccess on a ``cockpit`` log with the response times (``%T``: seconds.ms; use
#: ``--log-format=VCOMBINED`` to ignore them).
GOACCESS_FORMAT: Final = '%v:%^ %h %T %^[%d:%t %^] "%r" %s %b "%R" "%u"'


def nginx_access_log(path: str) -> str:
    """The ``access_log`` directive of one vhost."""
    return f"access_log {path} {NGINX_FORMAT_NAME};"
