"""Console input for a GameDay that never blocks the watcher: lines with a timeout (select)."""

from __future__ import annotations

import os
import select


class LineReader:
    """Lines from a file descriptor with a timeout (select), so the drill can end while nobody types."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = b""
        self.closed = False

    def readline(self, timeout: float | None) -> str | None:
        """One line without its newline; None on timeout or once the input is closed."""
        while b"\n" not in self.buffer:
            if self.closed:
                if self.buffer:
                    line, self.buffer = self.buffer, b""
                    return line.decode(errors="replace").strip("\r")
                return None
            ready, _, _ = select.select([self.fd], [], [], timeout)
            if not ready:
                return None
            chunk = os.read(self.fd, 4096)
            if not chunk:
                self.closed = True
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.decode(errors="replace").rstrip("\r")
