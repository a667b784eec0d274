"""Structured JSON-lines logging shared by every mock service.

Every line is one JSON object: ``ts`` (UTC ISO-8601), ``level``, ``service``, ``event`` (a stable
machine word such as ``kill_switch``), ``msg`` (the human sentence, e.g. ``Kill switch activated``)
and any extra fields. ``grep kill_switch latest.log`` therefore works, as the runbook expects.
"""

from __future__ import annotations

import json
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any


class EventLog:
    """Writes JSON lines to stderr and, optionally, appends them to a file (line-buffered, fsync-free)."""

    def __init__(self, service: str, path: Path | None = None, stream: IO[str] | None = None) -> None:
        self.service = service
        self.path = path
        self._stream = stream if stream is not None else sys.stderr
        self._lock = threading.Lock()
        self._file: IO[str] | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = path.open("a", encoding="utf-8", buffering=1)

    def log(self, event: str, msg: str, level: str = "INFO", **fields: Any) -> None:
        record: dict[str, Any] = {
            "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "level": level,
            "service": self.service,
            "event": event,
            "msg": msg,
        }
        record.update(fields)
        line = json.dumps(record, default=str, allow_nan=True)
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()
            if self._file is not None:
                self._file.write(line + "\n")

    def info(self, event: str, msg: str, **fields: Any) -> None:
        self.log(event, msg, "INFO", **fields)

    def warning(self, event: str, msg: str, **fields: Any) -> None:
        self.log(event, msg, "WARNING", **fields)

    def error(self, event: str, msg: str, **fields: Any) -> None:
        self.log(event, msg, "ERROR", **fields)

    def critical(self, event: str, msg: str, **fields: Any) -> None:
        self.log(event, msg, "CRITICAL", **fields)

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
