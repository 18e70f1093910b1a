"""The local transport keeps the transport contract on this machine."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from cockpit.backends.local import LocalTransport
from cockpit.backends.transport import MAX_LINE, TRUNCATED_MARK, ArgumentError, Line, Stream
from cockpit.model import Server

HOSTILE = [
    "plain", "", " ", "two words", "'single'", '"double"', "back\\slash", "$(touch /tmp/pwned)",
    "`id`", "$HOME", "${PATH}", "; rm -rf /", "a|b", "a&&b", "*", "?", "[a-z]", "~", "-n", "--",
    "-e", "!", "!!", "line\nbreak", "cr\rhere", "tab\there", "ünïcødé", "日本語", "emoji 🚀",
    "\x1b[31mred", "%s%n", "x" * 10000, "'\"'\"'", "\\'", "a\\\nb",
]  # fmt: skip


@pytest.fixture
def local(tmp_path: Path) -> LocalTransport:
    return LocalTransport(
        Server(name="localhost", address="127.0.0.1", transport="local", root=str(tmp_path))
    )


async def test_hostile_arguments_round_trip_byte_exact(local: LocalTransport) -> None:
    result = await local.run(["printf", "%s\\036", *HOSTILE], capture=True)
    assert result.ok
    joined = "\n".join(result.stdout)
    assert joined.split("\x1e")[:-1] == HOSTILE


async def test_nul_is_refused_before_running(local: LocalTransport, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    with pytest.raises(ArgumentError):
        await local.run_script('touch "$2"', ["a\x00b", str(marker)])
    assert not marker.exists()


@pytest.mark.parametrize("code", [0, 1, 42])
async def test_exit_codes(local: LocalTransport, code: int) -> None:
    assert (await local.run_script(f"exit {code}")).exit_code == code


async def test_streams_and_lines(local: LocalTransport) -> None:
    seen: list[Line] = []
    result = await local.run_script(
        "echo out1; echo err1 >&2; printf 'no-newline'", on_line=seen.append
    )
    assert result.ok
    assert [(ln.stream, ln.text) for ln in seen if ln.stream is Stream.STDERR] == [
        (Stream.STDERR, "err1")
    ]
    assert [ln.text for ln in seen if ln.stream is Stream.STDOUT] == ["out1", "no-newline"]


async def test_batched_lines_match_single_lines_and_capture(local: LocalTransport) -> None:
    singles: list[Line] = []
    batched: dict[Stream, list[str]] = {Stream.STDOUT: [], Stream.STDERR: []}
    result = await local.run_script(
        "seq 1 50000; printf 'crlf\\r\\nlast'; echo err >&2",
        on_line=singles.append,
        on_lines=lambda stream, texts: batched[stream].extend(texts),
        capture=True,
    )
    expected = [str(i) for i in range(1, 50001)] + ["crlf", "last"]
    assert result.ok and result.stdout == expected
    assert batched[Stream.STDOUT] == expected
    assert [ln.text for ln in singles if ln.stream is Stream.STDOUT] == expected
    assert result.stderr == batched[Stream.STDERR] == ["err"]


async def test_long_line_is_truncated_visibly(local: LocalTransport) -> None:
    result = await local.run_script(
        f"head -c {MAX_LINE * 3} /dev/zero | tr '\\0' a; echo; echo next", capture=True
    )
    assert result.stdout[0].endswith(TRUNCATED_MARK)
    assert len(result.stdout[0]) == MAX_LINE + len(TRUNCATED_MARK)
    assert result.stdout[1] == "next"


async def test_timeout_kills_the_process_group(local: LocalTransport, tmp_path: Path) -> None:
    marker = tmp_path / "sleeper"
    started = time.monotonic()
    result = await local.run_script(f"sleep 600 & echo $! > {marker}; wait", timeout=1)
    assert result.unknown and "timed out" in result.reason
    assert time.monotonic() - started < 10
    pid = int(marker.read_text())
    for _ in range(50):
        if not Path(f"/proc/{pid}").exists():
            break
        await asyncio.sleep(0.1)
    assert not Path(f"/proc/{pid}").exists(), "the background sleep survived"


async def test_signalled_process_is_a_failure_not_unknown(local: LocalTransport) -> None:
    result = await local.run_script("kill -TERM $$")
    assert result.exit_code == 128 + 15 and result.signal == "SIGTERM"


async def test_upload_download_atomic_with_mode(local: LocalTransport, tmp_path: Path) -> None:
    target = tmp_path / "conf"
    data = bytes(range(256)) * 1000
    await local.upload(data, str(target), mode=0o640)
    assert target.read_bytes() == data
    assert oct(target.stat().st_mode & 0o777) == "0o640"
    assert await local.download(str(target)) == data


async def test_environment_carries_nothing_inherited(local: LocalTransport, monkeypatch) -> None:
    monkeypatch.setenv("COCKPIT_CANARY_SECRET", "s3cr3t")
    result = await local.run_script("env", capture=True)
    assert not any("s3cr3t" in line for line in result.stdout)
