"""Parse uploaded data (JSON rows, CSV, .npz) into checked arrays and infer the learning task."""

from __future__ import annotations

import csv
import io
import math
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.errors import InvalidInput, PayloadTooLarge

# More distinct integer labels than this reads as a regression target, not as classes.
MAX_CLASSES = 100


@dataclass(frozen=True)
class ParsedDataset:
    X: np.ndarray
    y: np.ndarray
    task: str
    classes: list[Any] | None


def _problem(message: str, loc: Sequence[str | int] = ()) -> InvalidInput:
    return InvalidInput(message, [{"loc": list(loc), "msg": message}])


def labels_to_array(labels: Sequence[Any]) -> np.ndarray:
    """Labels as one homogeneous array: all numbers (int or float) or all strings."""
    if all(isinstance(v, bool) for v in labels):
        return np.asarray(labels, dtype=np.int64)
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in labels):
        array = np.asarray(labels, dtype=np.float64)
        if not np.isfinite(array).all():
            raise _problem("labels must be finite numbers", ["labels"])
        return array.astype(np.int64) if np.all(array == np.round(array)) else array
    if all(isinstance(v, str) for v in labels):
        return np.asarray(labels, dtype=np.str_)
    raise _problem("labels must be all numbers or all strings, not a mix", ["labels"])


def infer_task(y: np.ndarray) -> tuple[str, list[Any] | None]:
    if y.ndim == 2 and y.dtype.kind == "f":
        return "regression", None
    values = np.unique(y)
    if values.size < 2:
        raise _problem("labels have a single distinct value; nothing can be learned", ["labels"])
    if y.dtype.kind == "f" or (y.dtype.kind in "iu" and values.size > MAX_CLASSES):
        return "regression", None
    classes = values.tolist()
    return ("binary" if values.size == 2 else "multiclass"), classes


def check_arrays(X: np.ndarray, y: np.ndarray, *, max_cells: int) -> ParsedDataset:
    if X.ndim < 2 or X.shape[0] == 0 or X.size == 0:
        raise _problem(
            "features must hold at least one sample with at least one value", ["features"]
        )
    if X.size > max_cells:
        raise PayloadTooLarge(
            f"the dataset has {X.size} feature values; this server accepts at most {max_cells}"
        )
    if y.shape[0] != X.shape[0]:
        raise _problem(f"there are {X.shape[0]} samples but {y.shape[0]} labels", ["labels"])
    if X.dtype.kind not in "iuf":
        raise _problem("features must be numbers", ["features"])
    if not np.isfinite(X).all():
        raise _problem("features contain NaN or infinite values", ["features"])
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        raise _problem("labels contain NaN or infinite values", ["labels"])
    task, classes = infer_task(y)
    features = X.astype(np.float32) if X.dtype != np.float64 else X
    return ParsedDataset(X=features, y=y, task=task, classes=classes)


def from_rows(
    features: Sequence[Sequence[float]], labels: Sequence[Any], *, max_cells: int
) -> ParsedDataset:
    if not features:
        raise _problem("features must hold at least one row", ["features"])
    width = len(features[0])
    for index, row in enumerate(features):
        if len(row) != width:
            raise _problem(
                f"row {index} has {len(row)} values but row 0 has {width}", ["features", index]
            )
    if len(labels) != len(features):
        raise _problem(f"there are {len(features)} rows but {len(labels)} labels", ["labels"])
    if len(features) * width > max_cells:
        raise PayloadTooLarge(
            f"the dataset has {len(features) * width} values; at most {max_cells}"
        )
    return check_arrays(
        np.asarray(features, dtype=np.float64), labels_to_array(labels), max_cells=max_cells
    )


def _parse_label(text: str) -> int | float | str:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return text
    return value if math.isfinite(value) else text


def _csv_rows(reader: Iterator[list[str]]) -> Iterator[list[str]]:
    """The reader's rows; what the csv module cannot read (a NUL, an endless field) is a 422."""
    try:
        yield from reader
    except csv.Error as exc:
        raise _problem(f"the CSV file cannot be read: {exc}", ["file"]) from exc


def from_csv(data: bytes, label_column: str | None, *, max_cells: int) -> ParsedDataset:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _problem("the CSV file is not UTF-8 text", ["file"]) from exc
    # newline="": the csv module reads line ends itself, so a lone "\r" ends a row.
    reader = _csv_rows(csv.reader(io.StringIO(text, newline="")))
    header = next(reader, None)
    if not header:
        raise _problem("the CSV file is empty; it needs a header row and data rows", ["file"])
    header = [name.strip() for name in header]
    label_name = label_column if label_column is not None else header[-1]
    if label_name not in header:
        raise _problem(
            f"label column {label_name!r} is not in the CSV header ({', '.join(header)})",
            ["label_column"],
        )
    if len(header) < 2:
        raise _problem("the CSV needs at least one feature column besides the label", ["file"])
    label_index = header.index(label_name)
    rows: list[list[float]] = []
    labels: list[Any] = []
    for line_number, row in enumerate(reader, start=2):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise _problem(
                f"line {line_number} has {len(row)} fields but the header has {len(header)}",
                ["file"],
            )
        values: list[float] = []
        for column, cell in enumerate(row):
            if column == label_index:
                continue
            try:
                values.append(float(cell))
            except ValueError as exc:
                raise _problem(
                    f"line {line_number}, column {header[column]!r}: {cell[:40]!r} is not a number",
                    ["file"],
                ) from exc
        rows.append(values)
        labels.append(_parse_label(row[label_index].strip()))
        if len(rows) * len(values) > max_cells:
            raise PayloadTooLarge(f"the CSV has more than {max_cells} feature values")
    if not rows:
        raise _problem("the CSV has a header but no data rows", ["file"])
    return from_rows(rows, labels, max_cells=max_cells)


def from_npz(data: bytes, *, max_cells: int) -> ParsedDataset:
    try:
        loaded = np.load(io.BytesIO(data), allow_pickle=False)
    except ValueError as exc:
        # With pickles disallowed, np.load refuses object arrays and pickled payloads here.
        raise _problem(
            "the file holds pickled or object data, which is never loaded; "
            "send an .npz of plain numeric arrays",
            ["file"],
        ) from exc
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise _problem("the file is not a valid .npz archive", ["file"]) from exc
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise _problem(
            "the file is a single array; send an .npz archive with arrays X and y", ["file"]
        )
    with loaded as archive:
        missing = {"X", "y"} - set(archive.files)
        if missing:
            raise _problem(f"the .npz archive lacks {sorted(missing)}; it needs X and y", ["file"])
        try:
            X, y = archive["X"], archive["y"]
        except ValueError as exc:
            raise _problem(
                "the .npz archive holds object arrays, which are never loaded", ["file"]
            ) from exc
        except (OSError, zipfile.BadZipFile, EOFError) as exc:
            raise _problem("the .npz archive is damaged", ["file"]) from exc
    if y.dtype.kind not in "iufbU":
        raise _problem("y must hold numbers or strings", ["file"])
    if y.ndim not in (1, 2) or (y.ndim == 2 and y.dtype.kind != "f"):
        raise _problem(
            "y must be one-dimensional (or two-dimensional floats for regression)", ["file"]
        )
    return check_arrays(X, y.astype(np.int64) if y.dtype.kind == "b" else y, max_cells=max_cells)
