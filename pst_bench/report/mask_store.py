"""The mask distances kept in git while the masks themselves are not.

A MiniLM-L6 run's final masks (``<id>.masks.npz``) take about 0.74 MB, so the evidence runs' masks stay
out of git (``.gitignore``) and live only where the runs were made (the sweep clone). Without them a clean
checkout could never check claim 5 (Figure 5) on committed records. So every distance that ``make tables``
computes from two mask files is also written to ``mask_distances.csv`` in the records folder, with the
SHA-256 of both files; a checkout that lacks a pair's masks reads the pair from there, and one that has
them recomputes any pair whose files no longer match the stored hashes. The numbers are the same either
way (``tests/test_mask_store.py``); ``mask_distance.csv`` says which source each pair came from.
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

from ..files import atomic_write_text

STORE_NAME = "mask_distances.csv"
COLUMNS = ["first_run", "second_run", "first_sha256", "second_sha256", "hamming_distance", "kept_overlap", "matrices"]


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@dataclass(frozen=True)
class StoredDistance:
    """One pair's distance as computed from the two mask files whose hashes it names."""

    first_sha256: str
    second_sha256: str
    distance: float
    kept_overlap: float
    matrices: int


class MaskDistanceStore:
    """``<runs dir>/mask_distances.csv``: (first record, second record) -> the distance of their masks."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.rows: dict[tuple[str, str], StoredDistance] = {}
        self.changed = False
        if self.path.is_file():
            self._read()

    def _read(self) -> None:
        with self.path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames != COLUMNS:
                raise ValueError(f"{self.path}: columns {reader.fieldnames}, expected {COLUMNS}; delete it to rebuild")
            for line, row in enumerate(reader, start=2):
                try:
                    self.rows[row["first_run"], row["second_run"]] = StoredDistance(
                        row["first_sha256"],
                        row["second_sha256"],
                        float(row["hamming_distance"]),
                        float(row["kept_overlap"]),
                        int(row["matrices"]),
                    )
                except (TypeError, ValueError) as err:
                    raise ValueError(f"{self.path}:{line}: unreadable row ({err}); delete it to rebuild") from None

    def get(self, first: str, second: str) -> StoredDistance | None:
        return self.rows.get((first, second))

    def put(self, first: str, second: str, entry: StoredDistance) -> None:
        if self.rows.get((first, second)) != entry:
            self.rows[first, second] = entry
            self.changed = True

    def save(self) -> None:
        """Write the store (atomically) if a pair was added or recomputed."""
        if not self.changed:
            return
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        for (first, second), e in sorted(self.rows.items()):
            # repr keeps every bit of the float: claim 5's interval is the same from the store as from the masks
            writer.writerow(
                [first, second, e.first_sha256, e.second_sha256, repr(e.distance), repr(e.kept_overlap), e.matrices]
            )
        atomic_write_text(self.path, out.getvalue())
        self.changed = False
