"""The sanitiser: no escape sequence and no raw control character gets through."""

from __future__ import annotations

import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from cockpit.textsafe import sanitize, sanitize_line

HOSTILE = [
    ("\x1b[31mred\x1b[0m", "red"),
    ("\x1b]0;pwned title\x07after", "after"),
    ("\x1b]52;c;ZXZpbA==\x07clip", "clip"),  # OSC 52 clipboard write
    ("\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\", "link"),
    ("\x1bPqDCS payload\x1b\\x", "x"),
    ("a\x1b[2Jb", "ab"),
    ("\x9b31mc1", "c1"),
    ("bell\x07", "bell\\x07"),
    ("back\x08space", "back\\x08space"),
    ("cr\rover", "cr\\x0dover"),
    ("nul\x00", "nul\\x00"),
    ("rtl\u202eevil", "rtl\\u202eevil"),
    ("tab\tx", "tab     x"),
    ("[bold red]markup[/]", "[bold red]markup[/]"),  # kept as text, never interpreted
]


def test_hostile_samples() -> None:
    for raw, expected in HOSTILE:
        assert sanitize(raw) == expected, raw


def test_bytes_are_decoded_with_replacement() -> None:
    assert sanitize(b"ok \xff\x1b[1m!") == "ok \ufffd!"


def test_line_makes_newline_visible() -> None:
    assert sanitize_line("a\nb") == "a\\nb"


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8")))
def test_no_control_character_survives(text: str) -> None:
    out = sanitize_line(text)
    assert "\x1b" not in out
    for ch in out:
        assert unicodedata.category(ch) != "Cc", repr(out)
        assert ch not in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
