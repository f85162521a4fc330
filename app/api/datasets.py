"""/datasets: upload (JSON rows, CSV or .npz), list, show, delete."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker
from starlette.datastructures import UploadFile

from app import ingest
from app.api.deps import ReadSessionDep, SessionDep, SettingsDep, TenantDep
from app.db.tables import Dataset
from app.errors import Conflict, InvalidInput
from app.schemas.common import ErrorBody
from app.schemas.datasets import DatasetCreate, DatasetList, DatasetOut
from app.store import datasets, idempotency, jobs
from app.validation import invalid_input_from

router = APIRouter(prefix="/datasets", tags=["datasets"])
UPLOAD_SCOPE = "POST /datasets"

UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": DatasetCreate.model_json_schema()},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "a .csv or .npz file",
                        },
                        "name": {"type": "string", "maxLength": 200},
                        "label_column": {
                            "type": "string",
                            "description": "CSV only; default: last column",
                        },
                    },
                }
            },
        },
    }
}
ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody},
    409: {"model": ErrorBody},
    413: {"model": ErrorBody},
    422: {"model": ErrorBody},
}


def to_out(dataset: Dataset) -> DatasetOut:
    return DatasetOut.model_validate(dataset, from_attributes=True)


async def _parse_upload(request: Request, max_cells: int) -> tuple[str, ingest.ParsedDataset]:
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        form = await request.form()
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidInput(
                "the multipart upload needs a 'file' part", [{"loc": ["file"], "msg": "missing"}]
            )
        filename = upload.filename or "upload"
        data = await upload.read()
        label_column = form.get("label_column")
        name = form.get("name")
        dataset_name = str(name) if isinstance(name, str) and name else filename
        if filename.lower().endswith(".npz"):
            return dataset_name, await run_in_threadpool(ingest.from_npz, data, max_cells=max_cells)
        column = label_column if isinstance(label_column, str) and label_column else None
        return dataset_name, await run_in_threadpool(
            ingest.from_csv, data, column, max_cells=max_cells
        )
    if not content_type.startswith("application/json"):
        raise InvalidInput(
            "send JSON (application/json) or a file upload (multipart/form-data)",
            [{"loc": ["header", "content-type"], "msg": f"unsupported: {content_type or 'none'}"}],
        )
    try:
        body = DatasetCreate.model_validate_json(await request.body())
    except ValidationError as exc:
        raise invalid_input_from(exc, prefix=("body",)) from exc
    parsed = await run_in_threadpool(
        ingest.from_rows, body.features, body.labels, max_cells=max_cells
    )
    return body.name, parsed


def _replay(
    factory: sessionmaker[Session], tenant_id: str, key: str, digest: str
) -> idempotency.Replay | None:
    with factory() as session, session.begin():
        return idempotency.find_replay(session, tenant_id, UPLOAD_SCOPE, key, digest)


def _store(
    factory: sessionmaker[Session],
    tenant_id: str,
    name: str,
    parsed: ingest.ParsedDataset,
    idempotent: tuple[str, str] | None,
) -> JSONResponse:
    with factory() as session, session.begin():
        if idempotent is not None:
            # Checked again inside the write transaction: a concurrent retry may have won.
            replay = idempotency.find_replay(session, tenant_id, UPLOAD_SCOPE, *idempotent)
            if replay is not None:
                return JSONResponse(replay.response, status_code=replay.status_code)
        dataset = datasets.create_dataset(
            session,
            tenant_id=tenant_id,
            name=name[:200],
            X=parsed.X,
            y=parsed.y,
            task=parsed.task,
            classes=parsed.classes,
        )
        created = to_out(dataset).model_dump(mode="json")
        if idempotent is not None:
            idempotency.remember(session, tenant_id, UPLOAD_SCOPE, *idempotent, 201, created)
    return JSONResponse(created, status_code=status.HTTP_201_CREATED)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=DatasetOut,
    openapi_extra=UPLOAD_BODY,
    responses=ERRORS,
    summary="Upload a dataset as JSON rows, a CSV file or an .npz archive",
)
async def create_dataset(
    request: Request,
    settings: SettingsDep,
    tenant: TenantDep,
    idempotency_key: Annotated[
        str | None,
        Header(description="retrying with the same key returns the first response"),
    ] = None,
) -> JSONResponse:
    factory = request.app.state.session_factory
    idempotent = None
    if idempotency_key is not None:
        key = idempotency.check_key(idempotency_key)
        idempotent = (key, idempotency.request_digest(await request.body()))
        replay = await run_in_threadpool(_replay, factory, tenant, *idempotent)
        if replay is not None:
            return JSONResponse(replay.response, status_code=replay.status_code)
    name, parsed = await _parse_upload(request, settings.max_dataset_cells)
    return await run_in_threadpool(_store, factory, tenant, name, parsed, idempotent)


@router.get("", response_model=DatasetList)
def list_datasets(
    session: ReadSessionDep,
    tenant: TenantDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> DatasetList:
    items = datasets.list_datasets(session, tenant, limit=limit, offset=offset)
    return DatasetList(items=[to_out(d) for d in items], limit=limit, offset=offset)


@router.get("/{dataset_id}", response_model=DatasetOut, responses=ERRORS)
def get_dataset(dataset_id: str, session: ReadSessionDep, tenant: TenantDep) -> DatasetOut:
    return to_out(datasets.get_dataset(session, tenant, dataset_id))


@router.delete("/{dataset_id}", status_code=status.HTTP_204_NO_CONTENT, responses=ERRORS)
def delete_dataset(dataset_id: str, session: SessionDep, tenant: TenantDep) -> None:
    with session.begin():
        datasets.get_dataset(session, tenant, dataset_id)
        if jobs.dataset_in_use(session, dataset_id):
            raise Conflict(
                f"dataset {dataset_id!r} is used by a queued or running job; cancel it first"
            )
        datasets.delete_dataset(session, tenant, dataset_id)
