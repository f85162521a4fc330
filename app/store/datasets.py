"""Datasets: arrays kept as an .npz blob in the database so every worker and replica can read them."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.tables import Dataset
from app.errors import NotFound
from app.ids import new_id
from app.store.conflicts import insert_unless_conflict


@dataclass(frozen=True)
class DatasetArrays:
    X: np.ndarray
    y: np.ndarray


def encode_arrays(X: np.ndarray, y: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, X=X, y=y)
    return buffer.getvalue()


def decode_arrays(blob: bytes) -> DatasetArrays:
    with np.load(io.BytesIO(blob), allow_pickle=False) as archive:
        return DatasetArrays(X=archive["X"], y=archive["y"])


def largest_magnitude(X: np.ndarray, y: np.ndarray, task: str) -> float:
    """The largest |value| that training casts to the network's dtype: every feature, and the
    targets of a regression (class labels become indices, whatever their values)."""
    # max and min, not abs(): no copy of a dataset that may be hundreds of megabytes.
    largest = max(abs(float(X.max())), abs(float(X.min())))
    if task == "regression":
        largest = max(largest, abs(float(y.max())), abs(float(y.min())))
    return largest


@dataclass(frozen=True)
class EncodedDataset:
    """A parsed dataset as its row keeps it: the .npz blob, and what is read without it."""

    n_samples: int
    input_shape: list[int]
    task: str
    classes: list[Any] | None
    max_abs_value: float
    blob: bytes

    def columns(self) -> dict[str, Any]:
        """The Dataset columns that hold it."""
        return {
            "n_samples": self.n_samples,
            "n_features": int(np.prod(self.input_shape)),
            "input_shape": self.input_shape,
            "task": self.task,
            "classes": self.classes,
            "max_abs_value": self.max_abs_value,
            "data": self.blob,
        }


def encode_dataset(
    X: np.ndarray, y: np.ndarray, task: str, classes: list[Any] | None
) -> EncodedDataset:
    """CPU-bound on a large dataset: for an upload above the offload threshold the parsing pool
    runs it beside the parse (see app/api/datasets.py), not the server process. It runs before
    :func:`store_once` knows whether the content is stored already, so a repeated upload pays
    for its encoding too, off the server's event loop."""
    return EncodedDataset(
        n_samples=int(X.shape[0]),
        input_shape=[int(d) for d in X.shape[1:]],
        task=task,
        classes=classes,
        max_abs_value=largest_magnitude(X, y, task),
        blob=encode_arrays(X, y),
    )


def create_dataset(
    session: Session,
    *,
    tenant_id: str,
    name: str,
    X: np.ndarray,
    y: np.ndarray,
    task: str,
    classes: list[Any] | None,
) -> Dataset:
    encoded = encode_dataset(X, y, task, classes)
    dataset = Dataset(id=new_id(), tenant_id=tenant_id, name=name, **encoded.columns())
    session.add(dataset)
    session.flush()
    return dataset


def content_sha256(data: bytes, *, format_name: str, label_column: str | None) -> str:
    """The identity of an upload: its bytes and the options that decide how they are parsed.

    The same bytes parsed with another label column are another dataset; the dataset's name
    is not part of it.
    """
    digest = hashlib.sha256(f"dataset/1\0{format_name}\0{label_column or ''}\0".encode())
    digest.update(data)
    return digest.hexdigest()


def store_once(
    session: Session,
    *,
    tenant_id: str,
    name: str,
    dataset: EncodedDataset,
    sha256: str,
    dedupe: bool,
) -> tuple[Dataset, bool]:
    """The tenant's dataset with this content hash, stored now unless dedupe finds it stored.

    Returns the dataset and whether it was created. Two concurrent uploads of the same content
    meet in the unique constraint on (tenant_id, dedupe_key): ON CONFLICT DO NOTHING makes the
    second wait for the first and then take its row, so one dataset results, never two.
    """
    if dedupe:
        found = _find_stored(session, tenant_id, sha256)
        if found is not None:
            return found, False
    values = {
        "id": new_id(),
        "tenant_id": tenant_id,
        "name": name,
        "content_sha256": sha256,
        "dedupe_key": sha256 if dedupe else None,
        **dataset.columns(),
    }
    inserted = insert_unless_conflict(
        session, Dataset, values, ["tenant_id", "dedupe_key"], Dataset.id
    )
    if inserted is None:  # a concurrent upload of the same content committed first
        found = _find_stored(session, tenant_id, sha256)
        assert found is not None  # the conflicting row is committed, so it is visible now
        return found, False
    return get_dataset(session, tenant_id, inserted), True


def _find_stored(session: Session, tenant_id: str, sha256: str) -> Dataset | None:
    query = select(Dataset).where(Dataset.tenant_id == tenant_id, Dataset.dedupe_key == sha256)
    return session.scalar(query)


def get_dataset(session: Session, tenant_id: str, dataset_id: str) -> Dataset:
    dataset = session.get(Dataset, dataset_id)
    if dataset is None or dataset.tenant_id != tenant_id:
        raise NotFound(f"dataset {dataset_id!r} does not exist")
    return dataset


def list_datasets(
    session: Session, tenant_id: str, *, limit: int, offset: int
) -> Sequence[Dataset]:
    query = (
        select(Dataset)
        .where(Dataset.tenant_id == tenant_id)
        .order_by(Dataset.created_at.desc(), Dataset.id)
        .limit(limit)
        .offset(offset)
    )
    return session.scalars(query).all()


def delete_dataset(session: Session, tenant_id: str, dataset_id: str) -> None:
    session.delete(get_dataset(session, tenant_id, dataset_id))


def load_arrays(session: Session, dataset_id: str) -> DatasetArrays:
    blob = session.scalar(select(Dataset.data).where(Dataset.id == dataset_id))
    if blob is None:
        raise NotFound(f"dataset {dataset_id!r} does not exist")
    return decode_arrays(blob)
