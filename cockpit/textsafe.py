"""The one sanitiser every remote or stored text passes before a terminal or a widget.

Remote output (a task's log line, a server's banner, a name read from a remote file)
may carry escape sequences that would move the cursor, retitle the window, write to
the clipboard (OSC 52) or hide text. :func:`sanitize` removes every escape sequence
and makes every other control character visible, so what reaches the screen is
plain text. It does not escape Rich markup: widgets render remote text as ``Text``,
never as markup.
"""

from __future__ import annotations

import re
from typing import Final

# ESC-introduced sequences: CSI (ESC [ … final), OSC/DCS/SOS/PM/APC (ESC ] … BEL or ST),
# and two-character escapes (ESC + one byte). The 8-bit C1 forms are handled alike.
_ESCAPES: Final = re.compile(
    r"""
    (?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?     # CSI
  | (?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])                # OSC, DCS, SOS, PM, APC …
      [^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?                 # … up to BEL or ST
  | \x1b[\x20-\x2f]*[\x30-\x7e]?                            # other ESC sequences
    """,
    re.VERBOSE,
)
#: Controls shown as visible escapes (tab and newline are handled by the caller's layout).
_CONTROLS: Final = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def sanitize(text: str | bytes, *, tabsize: int = 8) -> str:
    """``text`` with escape sequences removed and other controls made visible.

    Newlines are kept (split lines yourself); carriage returns and tabs are not
    passed through raw: a CR becomes ``\\r`` visibly and tabs expand to spaces.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    if "\t" in text:
        text = text.expandtabs(tabsize)
    text = _ESCAPES.sub("", text)
    return _CONTROLS.sub(_visible, text)


def sanitize_line(text: str | bytes) -> str:
    """One line for a log view: like :func:`sanitize`, with a newline made visible too."""
    return sanitize(text).replace("\n", "\\n")
