"""Model aliases ("production" -> version 2 of a name) and the history of every move.

An alias row references the model it names (a foreign key that restricts deletes), so the
database itself refuses to delete a version an alias points to. Concurrent moves of one alias
serialize on that row: the first ever insert through ON CONFLICT DO NOTHING, every later move
through a row lock, so each history entry names the version it really replaced.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, delete, select, update
from sqlalchemy.orm import Session

from app.db.tables import AliasMove, Model, ModelAlias, utcnow
from app.errors import Conflict, InvalidInput, NotFound
from app.store.conflicts import insert_unless_conflict

# A letter first, so an alias never reads as a version number; no "@" or "/", which separate
# it from the model name in `NAME@alias` and in paths.
ALIAS_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")
ALIAS_RULE = "1-64 characters: a letter, then letters, digits, '_', '.' or '-'"


@dataclass(frozen=True)
class Move:
    """What one PUT did: the alias now names version, previously previous_version (or none)."""

    alias: str
    version: int
    model_id: str
    previous_version: int | None


def check_alias(alias: str) -> str:
    if ALIAS_PATTERN.fullmatch(alias) is None:
        raise InvalidInput(
            f"alias {alias!r} is not allowed; use {ALIAS_RULE}",
            [{"loc": ["path", "alias"], "msg": ALIAS_RULE}],
        )
    return alias


def _key(tenant_id: str, name: str, alias: str) -> tuple[ColumnElement[bool], ...]:
    return (ModelAlias.tenant_id == tenant_id, ModelAlias.name == name, ModelAlias.alias == alias)


def resolve_alias(session: Session, tenant_id: str, name: str, alias: str) -> str | None:
    """The id of the model the alias names, or None when the name has no such alias."""
    return session.scalar(select(ModelAlias.model_id).where(*_key(tenant_id, name, alias)))


def aliases_of_model(session: Session, model_id: str) -> list[str]:
    query = select(ModelAlias.alias).where(ModelAlias.model_id == model_id)
    return sorted(session.scalars(query).all())


def aliases_of_name(session: Session, tenant_id: str, name: str) -> dict[str, int]:
    query = (
        select(ModelAlias.alias, ModelAlias.version)
        .where(ModelAlias.tenant_id == tenant_id, ModelAlias.name == name)
        .order_by(ModelAlias.alias)
    )
    return {alias: version for alias, version in session.execute(query).all()}


def history(session: Session, tenant_id: str, name: str) -> Sequence[AliasMove]:
    """Every move of the name's aliases, oldest first."""
    query = (
        select(AliasMove)
        .where(AliasMove.tenant_id == tenant_id, AliasMove.name == name)
        .order_by(AliasMove.id)
    )
    return session.scalars(query).all()


def set_alias(
    session: Session, tenant_id: str, name: str, alias: str, version: int, by: str
) -> Move:
    """Point the alias at a version of the name (creating it), and record the move.

    Raises NotFound when the name has no such version.
    """
    # KEY SHARE: a concurrent delete of this version waits for this transaction, then meets the
    # alias's foreign key (409), instead of vanishing between this read and the insert.
    model = session.scalar(
        select(Model)
        .where(Model.tenant_id == tenant_id, Model.name == name, Model.version == version)
        .with_for_update(read=True, key_share=True)
    )
    if model is None:
        raise NotFound(f"version {version} of model {name!r} does not exist")
    now = utcnow()
    row = {"tenant_id": tenant_id, "name": name, "alias": alias}
    values = {"model_id": model.id, "version": version, "updated_at": now, "updated_by": by}
    created = insert_unless_conflict(
        session, ModelAlias, row | values, ["tenant_id", "name", "alias"], ModelAlias.alias
    )
    if created is not None:
        previous = None
    else:
        # The row exists (a conflicting insert has committed by now): lock it, then move it.
        previous = session.scalar(
            select(ModelAlias.version).where(*_key(tenant_id, name, alias)).with_for_update()
        )
        if previous is None:  # removed between the two statements: the caller may retry
            raise Conflict(f"alias {alias!r} of model {name!r} changed meanwhile; try again")
        if previous == version:
            return Move(alias, version, model.id, previous)
        session.execute(update(ModelAlias).where(*_key(tenant_id, name, alias)).values(**values))
    session.add(
        AliasMove(
            tenant_id=tenant_id,
            name=name,
            alias=alias,
            version=version,
            previous_version=previous,
            at=utcnow(),  # taken after the row lock, so times follow the history's order
            moved_by=by,
        )
    )
    session.flush()
    return Move(alias, version, model.id, previous)


def remove_alias(session: Session, tenant_id: str, name: str, alias: str, by: str) -> int:
    """Delete the alias, record it as a move to no version; the version it named."""
    removed = session.scalar(
        delete(ModelAlias).where(*_key(tenant_id, name, alias)).returning(ModelAlias.version)
    )
    if removed is None:
        raise NotFound(f"model {name!r} has no alias {alias!r}")
    session.add(
        AliasMove(
            tenant_id=tenant_id,
            name=name,
            alias=alias,
            version=None,
            previous_version=removed,
            at=utcnow(),
            moved_by=by,
        )
    )
    session.flush()
    return int(removed)


def versions_of_name(session: Session, tenant_id: str, name: str) -> Sequence[Model]:
    query = (
        select(Model)
        .where(Model.tenant_id == tenant_id, Model.name == name)
        .order_by(Model.version)
    )
    return session.scalars(query).all()
