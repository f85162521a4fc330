"""Datasets: arrays kept as an .npz blob in the database so every worker and replica can read them."""

from __future__ import annotations

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
    dataset = Dataset(
        id=new_id(),
        tenant_id=tenant_id,
        name=name,
        n_samples=int(X.shape[0]),
        n_features=int(np.prod(X.shape[1:])),
        input_shape=[int(d) for d in X.shape[1:]],
        task=task,
        classes=classes,
        data=encode_arrays(X, y),
    )
    session.add(dataset)
    session.flush()
    return dataset


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
