"""Data faults: a corrupted market-data feed (through the feed's admin API) and corrupted files.

* :class:`FeedCorruption`: ``POST <feed endpoint>`` ``{kind, symbol?, bars?, pct?}`` answering ``{id}``;
  rollback ``DELETE <feed endpoint>/<id>``. The endpoint is the stack's ``x-drill.trading.faults.feed``.
  If the id never came back (the reply was lost), rollback deletes the active faults of the same
  kind and symbol instead.
* :class:`FileCorruption`: a file under the stack's working directory is truncated, overwritten
  with garbage, made invalid JSON, or given duplicate CSV rows. A snapshot is written (atomically)
  to ``<run_dir>/snapshots/<fault id>`` *before* the file is touched, and restored on rollback, even
  if the file was deleted meanwhile. For ``duplicate_csv_rows`` rollback cuts out exactly the
  appended rows when they are still where they were put, keeping rows the stack wrote since.
"""

from __future__ import annotations

import glob as globmod
import hashlib
import json
import os
import random
from pathlib import Path
from typing import TYPE_CHECKING, Self

from harness.adapter import Endpoint
from harness.errors import FaultError, InputError
from harness.faults._http import admin_call, field
from harness.faults.base import Fault, FaultContext, Params, ParamValue, check_choice, check_range

if TYPE_CHECKING:
    from harness.backends.base import Backend

FEED_KINDS = ("gap", "stale", "nan", "negative", "ohlc", "duplicate", "out_of_order", "shock")
FEED_EFFECTS = {
    "gap": "bars go missing (timestamps skipped): the data-quality check reports a gap",
    "stale": "no new bars: the feed goes stale and the SLA is violated",
    "nan": "closes are NaN: bars are rejected as invalid",
    "negative": "prices are negative: bars are rejected as invalid",
    "ohlc": "high < low: bars are rejected as invalid",
    "duplicate": "a bar's timestamp repeats: duplicate bars are flagged",
    "out_of_order": "timestamps arrive out of order: flagged by the data-quality check",
    "shock": "a real price move of {pct}% over {bars} bars (stays in history after rollback)",
}


def endpoint_params(endpoint: Endpoint) -> dict[str, ParamValue]:
    """An admin endpoint as ledger parameters (so ``drill cleanup`` can reach it after a crash)."""
    return {"service": endpoint.service, "port": endpoint.port, "path": endpoint.path}


def endpoint_from(params: Params) -> Endpoint:
    return Endpoint(params.text("service"), params.text("port"), params.text("path"), where="fault ledger")


def symbols(backend: Backend, endpoint: Endpoint) -> tuple[str, ...]:
    """The instrument symbols the feed serves (``x-drill.trading.faults.symbols``): never hard-code a ticker."""
    url = backend.endpoint(endpoint.service, endpoint.port).url + endpoint.path
    reply = admin_call("GET", url, what="list symbols", ok=(200,))
    body = reply.body.get("symbols") if isinstance(reply.body, dict) else reply.body
    if not isinstance(body, list):
        raise FaultError(f"list symbols: {url} did not answer a JSON list: {reply.text[:200]}")
    return tuple(str(item["symbol"]) if isinstance(item, dict) else str(item) for item in body
                 if not isinstance(item, dict) or "symbol" in item)


class FeedCorruption(Fault):
    kind = "feed_corruption"

    def __init__(
        self,
        backend: Backend,
        corruption: str,
        *,
        symbol: str | None = None,
        bars: int | None = None,
        pct: float | None = None,
        endpoint: Endpoint,
        ctx: FaultContext | None = None,
        fault_id: str | None = None,
    ) -> None:
        super().__init__(backend, ctx=ctx, fault_id=fault_id)
        self.corruption = check_choice("kind", corruption, FEED_KINDS)
        if bars is not None:
            check_range("bars", bars, 1, 100_000, "bars")
        if pct is not None:
            check_range("pct", pct, -99.0, 1000.0, "%")
            if corruption != "shock":
                raise InputError(f"pct only applies to kind shock, not {corruption}")
        self.symbol = symbol
        self.bars = bars
        self.pct = pct
        self.endpoint = endpoint
        self.service = endpoint.service
        self.remote_id: str | None = None

    @property
    def target(self) -> str:
        return f"{self.service} feed ({self.symbol or 'every symbol'})"

    @property
    def action(self) -> str:
        extra = "".join(f", {k}={v}" for k, v in (("bars", self.bars), ("pct", self.pct)) if v is not None)
        return f"{self.corruption} corruption{extra}"

    @property
    def expected_effect(self) -> str:
        pct = self.pct if self.pct is not None else -8
        bars = self.bars if self.bars is not None else 3
        effect = FEED_EFFECTS.get(self.corruption, "the data-quality check flags the feed")
        return effect.format(pct=pct, bars=bars)

    def params(self) -> dict[str, ParamValue]:
        return {"corruption": self.corruption, "symbol": self.symbol, "bars": self.bars, "pct": self.pct,
                **endpoint_params(self.endpoint)}

    @classmethod
    def from_params(cls, backend: Backend, params: Params, *, ctx: FaultContext, fault_id: str) -> Self:
        return cls(backend, params.text("corruption"), symbol=params.opt_text("symbol"),
                   bars=params.opt_integer("bars"), pct=params.opt_number("pct"),
                   endpoint=endpoint_from(params), ctx=ctx, fault_id=fault_id)

    def learned(self) -> dict[str, ParamValue]:
        return {"remote_id": self.remote_id}

    def _restore_learned(self, learned: Params) -> None:
        self.remote_id = learned.opt_text("remote_id")

    def _url(self) -> str:
        return self.backend.endpoint(self.endpoint.service, self.endpoint.port).url + self.endpoint.path

    def _inject(self) -> None:
        body: dict[str, object] = {"kind": self.corruption}
        body.update({k: v for k, v in (("symbol", self.symbol), ("bars", self.bars), ("pct", self.pct))
                     if v is not None})
        reply = admin_call("POST", self._url(), body=body, what=f"inject {self.corruption} feed fault", ok=(200, 201))
        self.remote_id = str(field(reply, "id", "inject feed fault"))

    def _rollback(self) -> None:
        url = self._url()
        if self.remote_id is not None:
            admin_call("DELETE", f"{url}/{self.remote_id}", what="clear feed fault", ok=(200, 204, 404))
            return
        # the id never came back: clear whatever active fault of ours matches kind and symbol
        reply = admin_call("GET", url, what="list feed faults", ok=(200,))
        active = reply.body.get("faults", reply.body) if isinstance(reply.body, dict) else reply.body
        for item in active if isinstance(active, list) else []:
            if isinstance(item, dict) and item.get("kind") == self.corruption and item.get("symbol") == self.symbol:
                admin_call("DELETE", f"{url}/{item.get('id')}", what="clear feed fault", ok=(200, 204, 404))


FILE_MODES = ("truncate", "garbage", "invalid_json", "duplicate_csv_rows")


def _atomic_write(path: Path, data: bytes, mode: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.drill-tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    if mode is not None:
        os.chmod(tmp, mode)
    os.replace(tmp, path)


class FileCorruption(Fault):
    """Corrupt a file under the stack's working directory; rollback restores its snapshot.

    ``path`` is relative to ``backend.workdir`` and may be a glob (``state/orders/*.csv``): the
    last match (sorted) at inject time is the one corrupted.
    """

    kind = "file_corruption"
    outlives_stack = True  # the run directory's files: restored from the snapshot, with or without a stack

    def __init__(
        self,
        backend: Backend,
        path: str,
        mode: str,
        *,
        keep_bytes: int | None = None,
        rows: int = 1,
        ctx: FaultContext | None = None,
        fault_id: str | None = None,
    ) -> None:
        super().__init__(backend, ctx=ctx, fault_id=fault_id)
        if Path(path).is_absolute() or ".." in Path(path).parts:
            raise InputError(
                f"file path must be relative to the stack's working directory, without '..'; got {path!r}",
                hint="write a path relative to the stack's working directory, e.g. state/orders.csv",
            )
        self.path = path
        self.mode = check_choice("mode", mode, FILE_MODES)
        if keep_bytes is not None:
            check_range("keep_bytes", keep_bytes, 0, 2**40, "bytes")
        check_range("rows", rows, 1, 100_000, "rows")
        self.keep_bytes = keep_bytes
        self.rows = rows
        self.resolved: str | None = None  # the relative path actually corrupted
        self.file_mode: int | None = None
        self.appended: tuple[int, int, str] | None = None  # (offset, length, sha256) for duplicate rows

    @property
    def target(self) -> str:
        return f"file {self.resolved or self.path} (stack working directory)"

    @property
    def action(self) -> str:
        return {
            "truncate": f"truncate to {self.keep_bytes if self.keep_bytes is not None else 'half its'} bytes",
            "garbage": "overwrite with random bytes",
            "invalid_json": "cut mid-document (invalid JSON)",
            "duplicate_csv_rows": f"append {self.rows} duplicate row(s)",
        }[self.mode]

    @property
    def expected_effect(self) -> str:
        if self.mode == "duplicate_csv_rows":
            return "duplicate rows are detected (the stack's order-duplicates check fails)"
        return "readers of the file detect the corruption and refuse it with a clear error"

    def params(self) -> dict[str, ParamValue]:
        return {"path": self.path, "mode": self.mode, "keep_bytes": self.keep_bytes, "rows": self.rows}

    @classmethod
    def from_params(cls, backend: Backend, params: Params, *, ctx: FaultContext, fault_id: str) -> Self:
        return cls(backend, params.text("path"), params.text("mode"), keep_bytes=params.opt_integer("keep_bytes"),
                   rows=params.integer("rows"), ctx=ctx, fault_id=fault_id)

    def learned(self) -> dict[str, ParamValue]:
        learned: dict[str, ParamValue] = {"resolved": self.resolved, "file_mode": self.file_mode}
        if self.appended is not None:
            learned["appended"] = [str(v) for v in self.appended]
        return learned

    def _restore_learned(self, learned: Params) -> None:
        self.resolved = learned.opt_text("resolved")
        self.file_mode = learned.opt_integer("file_mode")
        if learned.values.get("appended") is not None:
            offset, length, digest = learned.texts("appended")
            self.appended = (int(offset), int(length), digest)

    @property
    def snapshot(self) -> Path:
        return self.run_dir / "snapshots" / self.fault_id

    def _resolve(self) -> Path:
        workdir = Path(self.backend.workdir).resolve()
        if any(ch in self.path for ch in "*?["):
            matches = sorted(globmod.glob(str(workdir / self.path)))
            if not matches:
                raise FaultError(
                    f"no file matches {self.path} under {workdir}",
                    hint="let the stack write it first (e.g. wait for the first order), or fix the pattern",
                )
            found = Path(matches[-1]).resolve()
        else:
            found = (workdir / self.path).resolve()
        if not found.is_relative_to(workdir):
            raise InputError(f"{self.path} resolves outside the working directory {workdir}")
        return found

    def _file(self) -> Path:
        assert self.resolved is not None
        return Path(self.backend.workdir).resolve() / self.resolved

    def _inject(self) -> None:
        target = self._resolve()
        try:
            original = target.read_bytes()
            self.file_mode = target.stat().st_mode & 0o7777
        except FileNotFoundError:
            raise FaultError(f"{target} does not exist: nothing to corrupt",
                             hint="start the stack (it writes its files) or fix the path") from None
        self.resolved = str(target.relative_to(Path(self.backend.workdir).resolve()))
        self._ledger("inject")  # the ledger learns the resolved path before the file is touched
        _atomic_write(self.snapshot, original)
        corrupted = self._corrupt(original)
        with open(target, "r+b") as fh:  # in place, as a real corruption would be
            fh.seek(0)
            fh.write(corrupted)
            fh.truncate(len(corrupted))
            fh.flush()
            os.fsync(fh.fileno())

    def _corrupt(self, original: bytes) -> bytes:
        if self.mode == "truncate":
            keep = self.keep_bytes if self.keep_bytes is not None else len(original) // 2
            return original[: min(keep, max(len(original) - 1, 0))]
        if self.mode == "garbage":
            rng = random.Random(self.fault_id)
            return bytes(rng.randrange(256) for _ in range(max(len(original), 64)))
        if self.mode == "invalid_json":
            cut = original[: len(original) // 2] + b'\n{"drill_corruption": '
            try:
                json.loads(cut)
            except ValueError:
                return cut
            return b'{"drill_corruption": '  # pragma: no cover - cut above is never valid JSON
        lines = original.splitlines(keepends=True)
        data_rows = lines[1:]
        if not data_rows:
            raise FaultError(f"{self.resolved} has no data rows to duplicate (header only or empty)",
                             hint="wait until the stack has written at least one row")
        base = original if original.endswith(b"\n") else original + b"\n"
        dupes = [row if row.endswith(b"\n") else row + b"\n" for row in data_rows[-self.rows:]]
        extra = b"".join((dupes * self.rows)[: self.rows])
        self.appended = (len(base), len(extra), hashlib.sha256(extra).hexdigest())
        return base + extra

    def _rollback(self) -> None:
        if self.resolved is None or not self.snapshot.exists():
            return  # the file was never touched (inject stopped before the snapshot was complete)
        target = self._file()
        if self.appended is not None and target.exists():
            offset, length, digest = self.appended
            current = target.read_bytes()
            if hashlib.sha256(current[offset: offset + length]).hexdigest() == digest:
                _atomic_write(target, current[:offset] + current[offset + length:], self.file_mode)
                return
        _atomic_write(target, self.snapshot.read_bytes(), self.file_mode)
