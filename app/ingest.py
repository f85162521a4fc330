"""Parse uploaded data (JSON rows, CSV, .npz) into checked arrays and infer the learning task."""

from __future__ import annotations

import csv
import io
import math
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.errors import InvalidInput, LimitExceeded, PayloadTooLarge
from app.npz import NpzLimits, read_npz
from app.settings import Settings

# Integer labels are kept exactly as int64; a label outside that range is refused, never wrapped.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True)
class Limits:
    """What one upload may hold; every check below reads them from here."""

    max_cells: int
    max_bytes: int
    max_classes: int
    max_outputs: int

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            max_cells=settings.max_dataset_cells,
            max_bytes=settings.max_dataset_bytes,
            max_classes=settings.max_classes,
            max_outputs=settings.max_layer_width,
        )


@dataclass(frozen=True)
class ParsedDataset:
    X: np.ndarray
    y: np.ndarray
    task: str
    classes: list[Any] | None


def _problem(message: str, loc: Sequence[str | int] = ()) -> InvalidInput:
    return InvalidInput(message, [{"loc": list(loc), "msg": message}])


def _out_of_range(value: int) -> InvalidInput:
    shown = str(value) if len(str(value)) <= 40 else f"{str(value)[:37]}..."
    return _problem(
        f"integer label {shown} is outside the 64-bit range [-2**63, 2**63 - 1]; labels are "
        "kept exactly or refused, never wrapped: send it as a string to use it as a class name",
        ["labels"],
    )


def labels_to_array(labels: Sequence[Any]) -> np.ndarray:
    """Labels as one homogeneous array: all numbers (int or float) or all strings.

    Integers (and floats that are all whole numbers, such as ``1.0``) become int64 exactly;
    an integer outside int64 is refused rather than wrapped or rounded.
    """
    if all(isinstance(v, bool) for v in labels):
        return np.asarray(labels, dtype=np.int64)
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in labels):
        for value in labels:
            if isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
                raise _out_of_range(value)
        if all(isinstance(v, int) for v in labels):
            # Straight to int64: a detour through float64 would round integers past 2**53.
            return np.asarray(labels, dtype=np.int64)
        array = np.asarray(labels, dtype=np.float64)
        if not np.isfinite(array).all():
            raise _problem("labels must be finite numbers", ["labels"])
        # Whole floats count as integers only where float64 holds them exactly.
        whole = np.all(array == np.round(array)) and np.all(np.abs(array) <= 2.0**53)
        return array.astype(np.int64) if whole else array
    if all(isinstance(v, str) for v in labels):
        if any("\x00" in v for v in labels):
            # NumPy drops a trailing NUL ("a\x00" would merge into class "a") and PostgreSQL
            # cannot store one.
            raise _problem("a label holds a NUL character", ["labels"])
        return np.asarray(labels, dtype=np.str_)
    raise _problem(
        f"labels must be all numbers or all strings, not a mix: {_mix(labels)}", ["labels"]
    )


def _mix(labels: Sequence[Any]) -> str:
    """Two labels of different kinds, to show where a mix is (a CSV's "1e400" is text)."""

    def kind(value: Any) -> str:
        return (
            "a boolean"
            if isinstance(value, bool)
            else "text"
            if isinstance(value, str)
            else "a number"
        )

    first = kind(labels[0])
    # Labels come as booleans, numbers and strings (the schema, the CSV parser): two kinds differ.
    other = next((i for i, value in enumerate(labels) if kind(value) != first), 0)
    return (
        f"label 0 is {str(labels[0])[:40]!r}, {first}, and label {other} is "
        f"{str(labels[other])[:40]!r}, {kind(labels[other])}"
    )


def infer_task(y: np.ndarray, max_classes: int) -> tuple[str, list[Any] | None]:
    """The task the labels make, and their classes; the one place that decides it.

    Floats are regression targets. Strings and booleans are classes, at most ``max_classes``
    of them (422 beyond). Integers are classes when there are at most ``max_classes`` distinct
    values, and a regression target (numbers) when there are more.
    """
    if y.ndim == 2 or y.dtype.kind == "f":
        return "regression", None
    values = np.unique(y)
    if values.size < 2:
        raise _problem("labels have a single distinct value; nothing can be learned", ["labels"])
    if values.size > max_classes:
        if y.dtype.kind in "iu":
            return "regression", None
        raise LimitExceeded(
            f"the labels hold {values.size} distinct classes; at most {max_classes} "
            "(DNN_MAX_CLASSES), since each class is one unit of the output layer",
            [{"loc": ["labels"], "msg": "too many classes"}],
        )
    classes = values.tolist()
    return ("binary" if values.size == 2 else "multiclass"), classes


def _holds_inner_nul(y: np.ndarray) -> bool:
    """Whether a string label holds a NUL before other characters (an .npz's can; NumPy strips
    trailing ones, so those are gone already, as in labels_to_array)."""
    codes = np.ascontiguousarray(y).view(np.uint32).reshape(y.size, -1)
    return bool(((codes[:, :-1] == 0) & (codes[:, 1:] != 0)).any())


def _check_labels(y: np.ndarray, n_samples: int, limits: Limits) -> np.ndarray:
    if y.dtype.kind not in "iufbU":
        raise _problem("labels must be numbers or strings", ["labels"])
    if y.ndim not in (1, 2) or (y.ndim == 2 and y.dtype.kind != "f"):
        raise _problem(
            "labels must be one-dimensional (or two-dimensional floats for regression)",
            ["labels"],
        )
    if y.ndim == 2 and y.shape[1] > limits.max_outputs:
        raise LimitExceeded(
            f"the targets have {y.shape[1]} outputs per sample; at most {limits.max_outputs} "
            "(DNN_MAX_LAYER_WIDTH)",
            [{"loc": ["labels"], "msg": "too many outputs"}],
        )
    if y.size > limits.max_cells:
        raise PayloadTooLarge(f"the targets hold {y.size} values; at most {limits.max_cells}")
    if y.shape[0] != n_samples:
        raise _problem(f"there are {n_samples} samples but {y.shape[0]} labels", ["labels"])
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        raise _problem("labels contain NaN or infinite values", ["labels"])
    if y.dtype.kind == "U" and y.size and _holds_inner_nul(y):
        raise _problem("a label holds a NUL character", ["labels"])
    if not y.dtype.isnative:
        y = y.astype(y.dtype.newbyteorder("="))
    if y.dtype.kind == "b":
        return y.astype(np.int64)
    if y.dtype.kind == "u":
        if y.size and int(y.max()) > INT64_MAX:
            raise _out_of_range(int(y.max()))
        return y.astype(np.int64)
    return y


def check_arrays(X: np.ndarray, y: np.ndarray, limits: Limits) -> ParsedDataset:
    if X.ndim < 2 or X.shape[0] == 0 or X.size == 0:
        raise _problem(
            "features must hold at least one sample with at least one value", ["features"]
        )
    if X.size > limits.max_cells:
        raise PayloadTooLarge(
            f"the dataset has {X.size} feature values; this server accepts at most "
            f"{limits.max_cells}"
        )
    if X.dtype.kind not in "iuf":
        raise _problem("features must be numbers", ["features"])
    if not np.isfinite(X).all():
        raise _problem("features contain NaN or infinite values", ["features"])
    y = _check_labels(y, X.shape[0], limits)
    task, classes = infer_task(y, limits.max_classes)
    features = X.astype(np.float32) if X.dtype != np.float64 else X
    return ParsedDataset(X=features, y=y, task=task, classes=classes)


def from_rows(
    features: Sequence[Sequence[float]], labels: Sequence[Any], limits: Limits
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
    if len(features) * width > limits.max_cells:
        raise PayloadTooLarge(
            f"the dataset has {len(features) * width} values; at most {limits.max_cells}"
        )
    return check_arrays(np.asarray(features, dtype=np.float64), labels_to_array(labels), limits)


def _is_number_text(text: str) -> bool:
    """Whether a CSV cell may be read as a number: Python's int() and float() also take "1_000"
    and non-ASCII digits ("٣" is 3), which would merge the class names "٣" and "3"."""
    return text.isascii() and "_" not in text


def _csv_float(cell: str) -> float | None:
    if not _is_number_text(cell):
        return None
    try:
        return float(cell)
    except ValueError:
        return None


def _parse_label(text: str) -> int | float | str:
    if not _is_number_text(text):
        return text
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return text
    return value if math.isfinite(value) else text


def from_csv(data: bytes, label_column: str | None, limits: Limits) -> ParsedDataset:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _problem("the CSV file is not UTF-8 text", ["file"]) from exc
    # newline="": the csv module reads line ends itself, so a lone "\r" ends a row.
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        return _read_csv(reader, label_column, limits)
    except csv.Error as exc:
        # e.g. a field past the csv module's 131,072-character limit, or a stray quote.
        raise _problem(
            f"the CSV file cannot be read at line {reader.line_num}: {exc}", ["file"]
        ) from exc


def _read_csv(reader: Any, label_column: str | None, limits: Limits) -> ParsedDataset:
    header = next(reader, None)
    if not header:
        raise _problem("the CSV file is empty; it needs a header row and data rows", ["file"])
    header = [name.strip() for name in header]
    label_name = label_column if label_column is not None else header[-1]
    if label_name not in header:
        shown = ", ".join(name[:40] for name in header[:20])
        raise _problem(
            f"label column {label_name[:40]!r} is not in the CSV header ({shown})",
            ["label_column"],
        )
    if len(header) < 2:
        raise _problem("the CSV needs at least one feature column besides the label", ["file"])
    width = len(header) - 1
    if width > limits.max_cells:
        raise PayloadTooLarge(f"the CSV has more than {limits.max_cells} feature values")
    if label_column is None:
        # The last column, by position: header.index() of its name found an earlier namesake.
        label_index = width
    elif header.count(label_name) > 1:
        raise _problem(
            f"label column {label_name[:40]!r} appears {header.count(label_name)} times in the "
            "CSV header; rename the columns so it names one",
            ["label_column"],
        )
    else:
        label_index = header.index(label_name)
    # One flat float64 buffer (8 bytes a value), not a list of Python floats (32 bytes a value).
    values = array("d")
    labels: list[Any] = []
    for line_number, row in enumerate(reader, start=2):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise _problem(
                f"line {line_number} has {len(row)} fields but the header has {len(header)}",
                ["file"],
            )
        if (len(labels) + 1) * width > limits.max_cells:
            raise PayloadTooLarge(f"the CSV has more than {limits.max_cells} feature values")
        for column, cell in enumerate(row):
            if column == label_index:
                continue
            number = _csv_float(cell)
            if number is None:
                raise _problem(
                    f"line {line_number}, column {header[column][:40]!r}: {cell[:40]!r} is not a number",
                    ["file"],
                )
            values.append(number)
        labels.append(_parse_label(row[label_index].strip()))
    if not labels:
        raise _problem("the CSV has a header but no data rows", ["file"])
    X = np.frombuffer(values, dtype=np.float64).reshape(len(labels), width)
    return check_arrays(X, labels_to_array(labels), limits)


def from_npz(data: bytes, limits: Limits) -> ParsedDataset:
    X, y = read_npz(
        data,
        NpzLimits(
            max_cells=limits.max_cells, max_bytes=limits.max_bytes, max_outputs=limits.max_outputs
        ),
    )
    return check_arrays(X, y, limits)
