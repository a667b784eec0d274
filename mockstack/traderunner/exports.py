"""Files the runbook and the drills read: atomic JSON exports and the per-day orders CSV.

JSON exports are written to a temporary file in the same directory, fsynced and renamed over the
target, so a reader (``cat``, ``diff``, a drill) never sees half a file, even after ``kill -9``.
They are exports only: SQLite is the source of truth and nothing here is read back by the service.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

STATE_DIR = Path("artifacts/state")
ORDERS_DIR = Path("artifacts/orders")
QUALITY_DIR = Path("artifacts/quality")
LOG_PATH = Path("artifacts/logs/latest.log")

RUNTIME = STATE_DIR / "runtime.json"
POSITIONS = STATE_DIR / "positions.json"
DAILY_PNL = STATE_DIR / "daily_pnl.json"
EXPECTED_POSITIONS = STATE_DIR / "expected_positions.json"
ACTUAL_POSITIONS = STATE_DIR / "actual_positions.json"
KILL_SWITCH = STATE_DIR / "kill_switch.json"
LATEST_SLA = QUALITY_DIR / "latest_sla.json"

CSV_HEADER = ("ts", "order_id", "idempotency_key", "symbol", "side", "qty", "limit_price", "status")


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def write_json_atomic(path: Path, value: Any) -> None:
    """Write ``value`` as pretty JSON to ``path`` via temp file + fsync + rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(value, fh, indent=2, sort_keys=True, default=str)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path) -> Any:
    """Parse a JSON file; ``ValueError`` naming the file when it is unreadable or not JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} is unreadable or not valid JSON ({exc})") from exc


def positions_doc(positions: dict[str, int]) -> dict[str, Any]:
    return {"positions": dict(sorted(positions.items())), "updated_at": utc_now_iso()}


def orders_csv_path(workdir: Path, day: datetime) -> Path:
    return workdir / ORDERS_DIR / f"{day.astimezone(UTC).strftime('%Y-%m-%d')}.csv"


def append_order_row(workdir: Path, row: dict[str, Any], when: datetime) -> None:
    """Append one order row to the day's CSV (header written when the file is new)."""
    path = orders_csv_path(workdir, when)
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists() or path.stat().st_size == 0
    with path.open("a", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_HEADER)
        if new:
            writer.writeheader()
        writer.writerow({k: row.get(k, "") for k in CSV_HEADER})
        fh.flush()
        os.fsync(fh.fileno())


def csv_keys(workdir: Path) -> Counter[str]:
    """How often each idempotency key appears across ``artifacts/orders/*.csv``."""
    counts: Counter[str] = Counter()
    for path in sorted((workdir / ORDERS_DIR).glob("*.csv")):
        with path.open(encoding="utf-8", newline="") as fh:
            for record in csv.DictReader(fh):
                key = (record.get("idempotency_key") or "").strip()
                if key:
                    counts[key] += 1
    return counts


def key_in_csv(workdir: Path, key: str) -> bool:
    return csv_keys(workdir)[key] > 0


def duplicate_keys(workdir: Path) -> dict[str, int]:
    return {k: n for k, n in sorted(csv_keys(workdir).items()) if n > 1}
