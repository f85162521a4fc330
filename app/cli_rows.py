"""Feature rows for `dnn-service predict`, read from a CSV or an .npz file."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import numpy.typing as npt

from app.client import ClientError


def read_rows(path: Path, label_column: str | None) -> npt.NDArray[np.float64]:
    """Feature rows of a CSV (header row first; the label column dropped if named) or .npz X."""
    if path.suffix.lower() == ".npz":
        with np.load(path, allow_pickle=False) as archive:
            X = archive["X"]
        return np.asarray(X, dtype=np.float64).reshape(X.shape[0], -1)
    reader = csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig")))
    header = [name.strip() for name in next(reader, [])]
    if label_column is not None and label_column not in header:
        raise ClientError(0, "invalid_file", f"{path} has no column {label_column!r}")
    keep = [i for i, name in enumerate(header) if name != label_column]
    rows: list[list[float]] = []
    for line_number, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue
        try:
            rows.append([float(row[i]) for i in keep])
        except (ValueError, IndexError) as exc:
            raise ClientError(0, "invalid_file", f"{path}, line {line_number}: {exc}") from exc
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), len(keep))
