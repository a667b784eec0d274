"""Log probe: only lines written after it was made; partial lines; truncation; rotation."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from harness.errors import InputError
from harness.probes import PROBES, LogLine, LogMatch, event_pattern, parse_log_line


def line(event: str, msg: str, ts: str = "2026-01-05T14:30:02.200Z") -> str:
    return json.dumps({"ts": ts, "level": "INFO", "service": "traderunner", "event": event, "msg": msg}) + "\n"


def append(path: Path, text: str | bytes) -> None:
    with path.open("ab") as fh:
        fh.write(text.encode() if isinstance(text, str) else text)


def test_sees_only_lines_written_after_creation(tmp_path: Path) -> None:
    log = tmp_path / "latest.log"
    append(log, line("kill_switch", "Kill switch activated: old run"))
    probe = LogMatch(log, event_pattern("kill_switch"))
    assert not probe().ok
    append(log, line("tick", "loop"))
    obs = probe()
    assert not obs.ok and "0/1 matching line(s) among 1 new line(s)" in obs.observed
    append(log, line("kill_switch", "Kill switch activated: daily loss limit"))
    obs = probe()
    assert obs.ok
    (match,) = obs.value
    assert isinstance(match, LogLine)
    assert match.event == "kill_switch"
    assert match.ts == datetime(2026, 1, 5, 14, 30, 2, 200000, tzinfo=UTC)


def test_from_start_reads_existing_lines(tmp_path: Path) -> None:
    log = tmp_path / "latest.log"
    append(log, line("kill_switch", "Kill switch activated"))
    assert LogMatch(log, "Kill switch activated", from_start=True)().ok


def test_partial_last_line_waits_for_its_newline(tmp_path: Path) -> None:
    log = tmp_path / "latest.log"
    log.write_text("")
    probe = LogMatch(log, r"Connection timeout$")
    append(log, '{"event": "broker_connection_timeout", "msg": "Connection time')
    assert not probe().ok  # "Connection time" alone must not be judged (nor matched) yet
    append(log, 'out"}\n')
    assert not probe().ok  # the full line ends with '"}', so the anchored regex must not match
    probe2 = LogMatch(log, r"Connection timeout", from_start=True)
    assert probe2().ok


def test_count_of_matches(tmp_path: Path) -> None:
    log = tmp_path / "latest.log"
    log.write_text("")
    probe = LogMatch(log, "Reconnect attempt \\d/3 failed", count=3)
    for n in (1, 2):
        append(log, line("broker_reconnect_failed", f"Reconnect attempt {n}/3 failed"))
    assert not probe().ok
    append(log, line("broker_reconnect_failed", "Reconnect attempt 3/3 failed"))
    obs = probe()
    assert obs.ok and len(obs.value) == 3


def test_missing_file_then_created(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "latest.log"
    probe = LogMatch(log, "Broker connected")
    obs = probe()
    assert not obs.ok and "does not exist (yet)" in obs.observed
    log.parent.mkdir()
    append(log, line("broker_connected", "Broker connected"))
    assert probe().ok


def test_truncated_file_is_reread_from_the_start(tmp_path: Path) -> None:
    log = tmp_path / "latest.log"
    append(log, line("tick", "x" * 200))
    probe = LogMatch(log, "SLA violation")
    log.write_text(line("sla_violation", "SLA violation: stale"))  # shorter than before: truncated
    obs = probe()
    assert obs.ok, obs.observed


def test_rotated_file_is_read_from_its_start(tmp_path: Path) -> None:
    log = tmp_path / "latest.log"
    append(log, line("tick", "old"))
    probe = LogMatch(log, "Reconciliation mismatch")
    os.rename(log, tmp_path / "latest.log.1")
    append(log, line("tick", "new file, padded to be longer than the old one " + "y" * 300))
    append(log, line("reconcile", "Reconciliation mismatch: AAA"))
    obs = probe()
    assert obs.ok, obs.observed


def test_invalid_regex_and_count_are_refused() -> None:
    with pytest.raises(InputError, match="invalid log regex"):
        LogMatch("x.log", "(unclosed")
    with pytest.raises(InputError, match="count must be >= 1"):
        LogMatch("x.log", "a", count=0)


def test_parse_log_line_tolerates_non_json() -> None:
    assert parse_log_line("plain text") == LogLine("plain text", None, None)
    assert parse_log_line('{"ts": "garbage", "event": 3}') == LogLine('{"ts": "garbage", "event": 3}', None, None)


def test_registered_and_described(tmp_path: Path) -> None:
    assert PROBES["log_line"] is LogMatch
    assert LogMatch(tmp_path / "a.log", "x", count=2).describe() == f"2 lines matching /x/ in {tmp_path / 'a.log'}"


def test_offset_starts_matching_at_a_byte_position(tmp_path: Path) -> None:
    """A drill matches only what its service wrote after the fault: lines before the mark never count."""
    log = tmp_path / "latest.log"
    log.write_text('{"msg": "Kill switch activated (yesterday)"}\n')
    mark = log.stat().st_size
    probe = LogMatch(log, "Kill switch activated", offset=mark)
    assert not probe().ok
    with log.open("a") as fh:
        fh.write('{"msg": "Kill switch activated (now)"}\n')
    obs = probe()
    assert obs.ok and "now" in obs.observed
