"""Log lines matching a regex, reading a service's log *file* from where it ended when the probe was made.

So a drill only sees lines written after its fault: the byte offset is taken at construction.
Each call reads what was appended since the last call; a partial last line (the writer is
mid-line) is kept back until its newline arrives; a file that shrank (truncated) or was replaced
(rotated: a different inode) is read again from its start. Lines written to the old file between
the last read and a rotation are not seen (the probe does not follow renamed files).

Stack-contract logs are JSON lines with a ``ts`` field; :class:`LogLine` carries it parsed, so a
timeline can place the event at the moment the service wrote it (time-to-kill from log timestamps).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from harness.clock import parse_timestamp
from harness.errors import DrillError, InputError
from harness.probes.base import Probe
from harness.waiting import Observation

if TYPE_CHECKING:
    from harness.backends.base import Backend

MAX_READ = 8 * 1024 * 1024  # per call; the rest is read on the next call


@dataclass(frozen=True)
class LogLine:
    text: str
    ts: datetime | None  # the line's own ``ts`` (JSON logs), UTC
    event: str | None  # the line's ``event`` (JSON logs)


def parse_log_line(text: str) -> LogLine:
    ts: datetime | None = None
    event: str | None = None
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            doc = json.loads(stripped)
        except ValueError:
            doc = None
        if isinstance(doc, dict):
            if isinstance(doc.get("ts"), str):
                try:
                    ts = parse_timestamp(doc["ts"])
                except DrillError:
                    ts = None
            if isinstance(doc.get("event"), str):
                event = doc["event"]
    return LogLine(text, ts, event)


def event_pattern(event: str) -> str:
    """A regex matching a stack-contract JSON log line whose ``event`` is ``event``."""
    return r'"event"\s*:\s*"' + re.escape(event) + '"'


class LogMatch(Probe):
    """Satisfied once ``count`` new lines matched ``pattern``. Value: the matched :class:`LogLine` s (tuple)."""

    name = "log_line"

    def __init__(
        self, path: Path | str, pattern: str, *, count: int = 1, from_start: bool = False, offset: int | None = None
    ) -> None:
        """Match lines appended after construction (default), from the start, or from byte ``offset``."""
        try:
            self.regex = re.compile(pattern)
        except re.error as exc:
            raise InputError(f"invalid log regex {pattern!r}: {exc}", hint="escape regex characters") from exc
        if count < 1:
            raise InputError(f"count must be >= 1, got {count}")
        self.path = Path(path)
        self.pattern = pattern
        self.count = count
        self._offset = 0
        self._inode: int | None = None
        self._partial = b""
        self._matches: list[LogLine] = []
        self._lines_seen = 0
        self._last_line = ""
        self._notes: list[str] = []
        if offset is not None:
            self._offset = offset
        elif not from_start:
            try:
                st = self.path.stat()
            except FileNotFoundError:
                pass
            else:
                self._offset, self._inode = st.st_size, st.st_ino

    @classmethod
    def for_service(cls, backend: Backend, service: str, pattern: str, *, count: int = 1) -> LogMatch:
        return cls(backend.log_path(service), pattern, count=count)

    @property
    def matches(self) -> tuple[LogLine, ...]:
        return tuple(self._matches)

    def _read_new(self) -> str | None:
        """Read appended bytes into lines; returns a problem description instead of raising."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return f"log file {self.path} does not exist (yet)"
        except OSError as exc:
            return f"cannot open log file {self.path}: {exc.strerror}"
        try:
            st = os.fstat(fd)
            if self._inode is not None and st.st_ino != self._inode:
                self._notes.append("file was replaced (rotated); reading the new one from its start")
                self._offset, self._partial = 0, b""
            elif st.st_size < self._offset:
                self._notes.append(f"file shrank from {self._offset} to {st.st_size} bytes (truncated); rereading")
                self._offset, self._partial = 0, b""
            self._inode = st.st_ino
            os.lseek(fd, self._offset, os.SEEK_SET)
            data = os.read(fd, MAX_READ)
        except OSError as exc:
            return f"cannot read log file {self.path}: {exc.strerror}"
        finally:
            os.close(fd)
        self._offset += len(data)
        chunk = self._partial + data
        *complete, self._partial = chunk.split(b"\n")
        for raw in complete:
            text = raw.decode("utf-8", errors="replace").rstrip("\r")
            if not text:
                continue
            self._lines_seen += 1
            self._last_line = text
            if self.regex.search(text):
                self._matches.append(parse_log_line(text))
        return None

    def __call__(self) -> Observation:
        problem = self._read_new()
        notes = f" ({'; '.join(self._notes[-2:])})" if self._notes else ""
        if problem is not None and not self._matches:
            return Observation(False, problem + notes)
        found = len(self._matches)
        if found >= self.count:
            return Observation(True, f"{found} matching line(s); first: {self._matches[0].text[:300]}",
                               tuple(self._matches))
        last = f"; last line: {self._last_line[:300]}" if self._last_line else ""
        return Observation(
            False,
            f"{found}/{self.count} matching line(s) among {self._lines_seen} new line(s) in {self.path}{last}{notes}",
            tuple(self._matches),
        )

    def describe(self) -> str:
        times = "a line" if self.count == 1 else f"{self.count} lines"
        return f"{times} matching /{self.pattern}/ in {self.path}"
