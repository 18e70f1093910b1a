"""Generated access-log lines with their ground truth (what an exact aggregator must find).

Lines are built field by field the way nginx (``\\xNN`` escapes) or Apache (backslash
escapes) would write them, including the awkward cases: spaces in the user and in the
request, escaped quotes, a request ending in a backslash, ``-`` sizes, odd status codes,
and outright garbage (counted as malformed in the truth).
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def clf_time(epoch: int, zone_minutes: int) -> str:
    """``[dd/Mon/yyyy:hh:mm:ss +hhmm]`` of UTC ``epoch`` shown in a zone."""
    local = time.gmtime(epoch + zone_minutes * 60)
    sign = "+" if zone_minutes >= 0 else "-"
    zh, zm = divmod(abs(zone_minutes), 60)
    return (
        f"[{local.tm_mday:02d}/{MONTHS[local.tm_mon - 1]}/{local.tm_year:04d}:"
        f"{local.tm_hour:02d}:{local.tm_min:02d}:{local.tm_sec:02d} {sign}{zh:02d}{zm:02d}]"
    )


def rt_bucket_ms(seconds_text: str) -> int:
    whole, _, frac = seconds_text.partition(".")
    return int(whole) * 1000 + int((frac + "000")[:3])


@dataclass
class Truth:
    """Expected totals per (vhost, minute) and the malformed count."""

    minutes: dict[tuple[str, int], list[int]] = field(default_factory=dict)  # n, bytes, c1..c5
    rt_ms: dict[tuple[str, int], list[int]] = field(default_factory=dict)
    malformed: int = 0
    lines: int = 0

    def add(self, vhost: str, epoch: int, status: int, size: int, rt_ms: int | None) -> None:
        key = (vhost, epoch - epoch % 60)
        m = self.minutes.setdefault(key, [0] * 7)
        m[0] += 1
        m[1] += size
        if 100 <= status <= 599:
            m[1 + status // 100] += 1
        if rt_ms is not None:
            self.rt_ms.setdefault(key, []).append(rt_ms)
        self.lines += 1

    def bad(self) -> None:
        self.malformed += 1
        self.lines += 1

    def merge(self, other: Truth) -> None:
        for key, m in other.minutes.items():
            mine = self.minutes.setdefault(key, [0] * 7)
            for i, v in enumerate(m):
                mine[i] += v
        for key, rts in other.rt_ms.items():
            self.rt_ms.setdefault(key, []).extend(rts)
        self.malformed += other.malformed
        self.lines += other.lines


def _escape(text: str, style: str) -> str:
    out = []
    for ch in text:
        if style == "nginx" and (ch in '"\\' or ord(ch) < 32 or ord(ch) > 126):
            out.append("".join(f"\\x{b:02X}" for b in ch.encode()))
        elif style == "apache" and ch in '"\\':
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


VHOSTS = (
    "site1.example:443",
    "site2.example:80",
    "WWW.Site3.Example:443",
    "[::1]:8080",
    "site4.example",
)
USERS = ("-", "-", "-", "alice", "a b", "x [y", "x [01/Mar/2025:00:00:00 +0000]", 'q"uote')
REQUESTS = (
    "GET / HTTP/1.1",
    "GET /index.php?x=1 HTTP/2.0",
    "POST /wp-login.php HTTP/1.1",
    "GET /a b HTTP/1.1",
    "GARBAGE",
    "",
    'GET /x"y HTTP/1.0',
    "GET /ends-with-backslash\\",
    "GET /x\\ HTTP/1.1",
    'GET /a" 200 5 x',
    "\x16\x03\x01",
)
STATUSES = (200, 200, 200, 204, 301, 302, 304, 400, 404, 404, 444, 499, 500, 502, 503, 101, 0)
# A tab inside the first token: refused by the vhost formats; in ``combined`` it is the
# client address, which the fast path does not look at (the line counts there).
TAB_GARBAGE = {
    f: (b'site1.example:443\t1.2.3.4 - - [01/Mar/2025:00:00:00 +0000] "GET / HTTP/1.1" 200 5',)
    for f in ("cockpit", "vhost_combined")
}
AGENTS = ("curl/8.5.0", 'Mozilla/5.0 (X11; Linux x86_64) "quoted"', "-", "a\\b")


def generate(
    fmt: str,
    n: int,
    *,
    seed: int = 1,
    style: str = "nginx",
    start: int = 1740787200,
    garbage: float = 0.02,
    label: str = "label.example",
) -> tuple[list[bytes], Truth]:
    """``n`` lines of ``fmt`` (cockpit, vhost_combined or combined) and their truth."""
    rnd = random.Random(seed)
    truth = Truth()
    lines: list[bytes] = []
    t = start
    for _ in range(n):
        t += rnd.choice((0, 0, 0, 1, 2, 7))
        if rnd.random() < garbage:
            lines.append(
                rnd.choice(
                    (
                        b"",
                        b"garbage",
                        b"\x00\x00\x00",
                        b'site1.example:443 1.2.3.4 - - [31/Feb/2025:00:00:00 +0000] "GET / HTTP/1.1" 200 5 "-" "-"',
                        b'site1.example:443 1.2.3.4 - - [01/Mar/2025:00:00:00 +0000] "GET / HTTP/1.1" 2000 5 "-" "-"',
                        b'1.2.3.4 - - [01/Mar/2025:25:00:00 +0000] "GET / HTTP/1.1" 200 5',
                        b'site1.example:443 1.2.3.4 - - [01/Mar/2025:00:00:00 +0000] "GET / HTTP/1.1" 200 12a "-"',
                        b'site1.example:443 1.2.3.4 - - [01/Mar/2025:00:00:00 +0000] "unterminated 200 5',
                        *TAB_GARBAGE.get(fmt, ()),
                    )
                )
            )
            truth.bad()
            continue
        zone = rnd.choice((0, 0, 60, -300, 330))
        status = rnd.choice(STATUSES)
        size = 0 if status in (204, 304) else int(rnd.lognormvariate(7, 1.5))
        size_text = "-" if size == 0 and style == "apache" and rnd.random() < 0.5 else str(size)
        user = _escape(rnd.choice(USERS), style)
        request = _escape(rnd.choice(REQUESTS), style)
        agent = _escape(rnd.choice(AGENTS), style)
        ip = f"{rnd.randint(1, 223)}.{rnd.randint(0, 255)}.0.{rnd.randint(1, 254)}"
        rest = f'{user} {clf_time(t, zone)} "{request}" {status:03d} {size_text} "-" "{agent}"'
        rt_ms: int | None = None
        if fmt == "combined":
            line = f"{ip} - {rest}"
            vhost = label
        else:
            token = rnd.choice(VHOSTS)
            host, sep, port = token.rpartition(":")
            vhost = (host if sep and port.isdigit() else token).lower()
            if fmt == "cockpit":
                rt = f"{rnd.choice((0, 0, 0, 1, 12, 250, 4000))}.{rnd.randint(0, 999):03d}"
                if style == "apache":
                    rt = str(rt_bucket_ms(rt))
                rt_ms = rt_bucket_ms(rt) if "." in rt else int(rt)
                line = f"{token} {ip} {rt} {rest}"
            else:
                line = f"{token} {ip} - {rest}"
        lines.append(line.encode())
        truth.add(vhost, t, status, size, rt_ms)
    return lines, truth


def as_bytes(lines: Iterable[bytes]) -> bytes:
    return b"".join(line + b"\n" for line in lines)
