"""Files the stack writes under its working directory: a JSON field, duplicate values in CSV columns."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from pathlib import Path

from harness.probes.base import Probe, json_path
from harness.waiting import Observation

_ANY = object()


class JsonFileField(Probe):
    """Satisfied when the JSON file has ``field`` (dotted path) equal to ``equals`` (or present). Value: it."""

    name = "json_file_field"

    def __init__(self, path: Path | str, field: str, *, equals: object = _ANY, root: Path | None = None) -> None:
        self.path = (root / path) if root is not None else Path(path)
        self.field = field
        self.equals = equals

    def __call__(self) -> Observation:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return Observation(False, f"{self.path} does not exist")
        except OSError as exc:
            return Observation(False, f"cannot read {self.path}: {exc.strerror}")
        try:
            document = json.loads(text)
        except ValueError as exc:
            return Observation(False, f"{self.path} is not valid JSON ({exc}): {text[:120]!r}")
        found, value = json_path(document, self.field)
        if not found:
            return Observation(False, f"{self.path} has no field {self.field!r}: {text[:200]}")
        ok = self.equals is _ANY or value == self.equals
        return Observation(ok, f"{self.path.name}: {self.field} = {value!r}", value)

    def describe(self) -> str:
        want = "present" if self.equals is _ANY else f"== {self.equals!r}"
        return f"{self.field} {want} in {self.path}"


class CsvDuplicates(Probe):
    """Values of ``column`` that appear more than once across the CSV files matching ``pattern`` under ``root``.

    ``expect_duplicates=False`` (default): satisfied when there are none. Value: the duplicated
    values with their counts, as a tuple of ``(value, count)``.
    """

    name = "csv_duplicates"

    def __init__(self, root: Path, pattern: str, column: str, *, expect_duplicates: bool = False) -> None:
        self.root = Path(root)
        self.pattern = pattern
        self.column = column
        self.expect_duplicates = expect_duplicates

    def __call__(self) -> Observation:
        files = sorted(self.root.glob(self.pattern))
        counts: Counter[str] = Counter()
        for path in files:
            try:
                text = path.read_text(encoding="utf-8", errors="replace")
            except OSError as exc:
                return Observation(False, f"cannot read {path}: {exc.strerror}")
            reader = csv.DictReader(io.StringIO(text))
            if reader.fieldnames is None:
                continue
            if self.column not in reader.fieldnames:
                return Observation(False, f"{path} has no column {self.column!r} (columns: {reader.fieldnames})")
            counts.update(row[self.column] for row in reader if row.get(self.column))
        dupes = tuple(sorted((v, n) for v, n in counts.items() if n > 1))
        where = f"{len(files)} file(s) matching {self.pattern} under {self.root}"
        if dupes:
            shown = ", ".join(f"{v} x{n}" for v, n in dupes[:10])
            observed = f"{len(dupes)} duplicated {self.column} value(s) in {where}: {shown}"
        else:
            observed = f"no duplicated {self.column} among {sum(counts.values())} row(s) in {where}"
        return Observation(bool(dupes) == self.expect_duplicates, observed, dupes)

    def describe(self) -> str:
        want = "some" if self.expect_duplicates else "no"
        return f"{want} duplicated {self.column} values in {self.root}/{self.pattern}"
