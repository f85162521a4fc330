"""/models/names/{name}: a name's versions, its aliases, and the history of every alias move."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, status

from app.api.deps import ReadSessionDep, SessionDep, TenantDep, get_caller
from app.errors import NotFound
from app.schemas.common import error_responses
from app.schemas.registry import AliasMoveOut, AliasOut, AliasTarget, NameOut, VersionOut
from app.store import aliases
from app.store.keys import Caller

router = APIRouter(
    prefix="/models/names",
    tags=["registry"],
    responses=error_responses(400, 401, 404, 409, 413, 422),
)
CallerDep = Annotated[Caller, Depends(get_caller)]
# check_alias refuses with its own message; the pattern documents the same rule.
AliasPath = Annotated[
    str,
    Path(
        description=f"the alias: {aliases.ALIAS_RULE}",
        max_length=64,
        json_schema_extra={"pattern": f"^{aliases.ALIAS_PATTERN.pattern}$"},
    ),
]


def _by(caller: Caller) -> str:
    return caller.key_id or caller.tenant_id


@router.get("/{name}", response_model=NameOut, summary="A model name's versions and aliases")
def get_name(name: str, session: ReadSessionDep, tenant: TenantDep) -> NameOut:
    versions = aliases.versions_of_name(session, tenant, name)
    moves = aliases.history(session, tenant, name)
    if not versions and not moves:
        raise NotFound(f"model {name!r} does not exist")
    return NameOut(
        name=name,
        versions=[VersionOut.model_validate(m, from_attributes=True) for m in versions],
        aliases=aliases.aliases_of_name(session, tenant, name),
        alias_history=[
            AliasMoveOut(
                alias=move.alias,
                version=move.version,
                previous_version=move.previous_version,
                at=move.at,
                by=move.moved_by,
            )
            for move in moves
        ],
    )


@router.put(
    "/{name}/aliases/{alias}",
    response_model=AliasOut,
    summary="Point an alias at a version (moving or creating it)",
)
def put_alias(
    name: str,
    alias: AliasPath,
    body: AliasTarget,
    session: SessionDep,
    caller: CallerDep,
) -> AliasOut:
    aliases.check_alias(alias)
    with session.begin():
        move = aliases.set_alias(session, caller.tenant_id, name, alias, body.version, _by(caller))
    return AliasOut(
        name=name,
        alias=move.alias,
        version=move.version,
        model_id=move.model_id,
        previous_version=move.previous_version,
    )


@router.delete(
    "/{name}/aliases/{alias}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove an alias (recorded in the history)",
)
def delete_alias(name: str, alias: AliasPath, session: SessionDep, caller: CallerDep) -> None:
    aliases.check_alias(alias)
    with session.begin():
        aliases.remove_alias(session, caller.tenant_id, name, alias, _by(caller))
