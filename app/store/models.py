"""Trained models: safetensors bytes plus metadata, versioned per (tenant, name)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db.tables import Model, ModelVersionCounter
from app.errors import Conflict, NotFound, StoredModelCorrupt
from app.ids import new_id
from app.store import aliases
from app.store.upsert import insert_for


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def create_model(
    session: Session,
    *,
    tenant_id: str,
    name: str,
    job_id: str,
    dataset_id: str | None,
    architecture: dict[str, Any],
    metrics: dict[str, Any],
    weights: bytes,
    train_state: bytes | None = None,
    parent_model_id: str | None = None,
) -> Model:
    model = Model(
        id=new_id(),
        tenant_id=tenant_id,
        name=name,
        version=next_version(session, tenant_id, name),
        job_id=job_id,
        dataset_id=dataset_id,
        architecture=architecture,
        metrics=metrics,
        sha256=sha256_hex(weights),
        size_bytes=len(weights),
        weights=weights,
        train_state=train_state,
        parent_model_id=parent_model_id,
    )
    session.add(model)
    session.flush()
    return model


def next_version(session: Session, tenant_id: str, name: str) -> int:
    """Mint the next version of (tenant, name) in one conditional upsert of its counter row.

    Two workers finishing models of one name at once both run this statement; the database
    serializes them on the counter row (the second waits for the first to commit, then
    increments the committed value), so they get different versions. Deleting a model never
    lowers the counter.
    """
    values = {"tenant_id": tenant_id, "name": name, "last_version": 1}
    statement = insert_for(session, ModelVersionCounter).values(**values)
    upsert = statement.on_conflict_do_update(
        index_elements=["tenant_id", "name"],
        set_={"last_version": ModelVersionCounter.last_version + 1},
    ).returning(ModelVersionCounter.last_version)
    return int(session.execute(upsert).scalar_one())


def get_model(session: Session, tenant_id: str, model_id: str) -> Model:
    model = session.get(Model, model_id)
    if model is None or model.tenant_id != tenant_id:
        raise NotFound(f"model {model_id!r} does not exist")
    return model


def find_model(session: Session, tenant_id: str, name: str, version: int | None) -> Model:
    """The given version of a named model, or its latest version."""
    query = select(Model).where(Model.tenant_id == tenant_id, Model.name == name)
    query = query.where(Model.version == version) if version is not None else query
    model = session.scalar(query.order_by(Model.version.desc()).limit(1))
    if model is None:
        which = f"version {version} of " if version is not None else ""
        raise NotFound(f"{which}model {name!r} does not exist")
    return model


def list_models(
    session: Session, tenant_id: str, *, name: str | None, limit: int, offset: int
) -> Sequence[Model]:
    query = select(Model).where(Model.tenant_id == tenant_id)
    if name is not None:
        query = query.where(Model.name == name)
    query = query.order_by(Model.created_at.desc(), Model.id).limit(limit).offset(offset)
    return session.scalars(query).all()


def stored_train_state(session: Session, model: Model) -> bytes | None:
    """The training state stored with the model (None for a model trained before it was kept)."""
    return session.scalar(select(Model.train_state).where(Model.id == model.id))


def delete_model(session: Session, tenant_id: str, model_id: str) -> None:
    model = get_model(session, tenant_id, model_id)
    held = aliases.aliases_of_model(session, model.id)
    if held:
        raise Conflict(
            f"version {model.version} of model {model.name!r} is named by the alias(es) "
            f"{', '.join(held)}; move or remove them first"
        )
    session.delete(model)
    try:
        session.flush()
    except IntegrityError as exc:  # an alias moved onto it meanwhile (the foreign key says so)
        raise Conflict(f"model {model_id!r} became the target of an alias; try again") from exc


def verified_weights(session: Session, model: Model) -> bytes:
    """The stored weights, refused if they no longer match the sha256 recorded at training."""
    data = session.scalar(select(Model.weights).where(Model.id == model.id))
    if data is None:
        raise NotFound(f"model {model.id!r} does not exist")
    if sha256_hex(data) != model.sha256:
        raise StoredModelCorrupt(
            f"the stored weights of model {model.id!r} do not match their sha256; "
            "they were changed after training and will not be loaded"
        )
    return data
