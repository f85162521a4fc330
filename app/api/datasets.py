"""/datasets: upload (JSON rows, CSV or .npz), list, show, delete."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any

from anyio import to_thread
from fastapi import APIRouter, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker
from starlette.datastructures import FormData, UploadFile

from app import ingest
from app.api.deps import (
    IdempotencyKeyDep,
    ReadSessionDep,
    SessionDep,
    SessionFactoryDep,
    SettingsDep,
    TenantDep,
)
from app.db.tables import Dataset
from app.errors import Conflict, InvalidInput, UnsupportedMediaType
from app.parsing import ParsePool, no_room_for_body, spooled
from app.schemas.common import Limit, Offset, error_responses
from app.schemas.datasets import (
    MAX_NAME_LENGTH,
    DatasetCreate,
    DatasetCreated,
    DatasetList,
    DatasetOut,
    name_problem,
)
from app.store import datasets, idempotency, jobs, sweeps
from app.validation import invalid_input_from

router = APIRouter(
    prefix="/datasets",
    tags=["datasets"],
    responses=error_responses(400, 401, 404, 409, 413, 415, 422),
)
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


def to_out(dataset: Dataset) -> DatasetOut:
    return DatasetOut.model_validate(dataset, from_attributes=True)


@dataclass(frozen=True)
class Upload:
    name: str
    dataset: datasets.EncodedDataset
    # What the request meant, independent of its encoding (a multipart boundary differs per try).
    digest: str
    # The content and its parse options: a second upload of the same is stored once.
    content_sha256: str


async def _parse_upload(request: Request, limits: ingest.Limits, pool: ParsePool) -> Upload:
    content_type = request.headers.get("content-type", "")
    # Media types are case-insensitive (RFC 9110): "Application/JSON" is JSON.
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == "multipart/form-data":
        form = await request.form()
        check_form(form)
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidInput(
                "the multipart upload needs a 'file' part", [{"loc": ["file"], "msg": "missing"}]
            )
        filename = upload.filename or "upload"
        label_column = form.get("label_column")
        name = form.get("name")
        given = name if isinstance(name, str) and name else None
        dataset_name = given or filename
        column = label_column if isinstance(label_column, str) and label_column else None
        if "\x00" in filename:  # PostgreSQL cannot store it (see app/http/request_guard.py)
            raise _field_error("file", "has a file name holding a NUL character")
        if given is not None and len(given) > MAX_NAME_LENGTH:
            # As in a JSON body; cut to fit, it was stored as another name than the one sent.
            raise _field_error("name", f"has {len(given)} characters; at most {MAX_NAME_LENGTH}")
        problem = name_problem(dataset_name)
        if problem is not None:
            if given is not None:
                raise _field_error("name", problem)
            raise _field_error("file", f"has a file name that {problem}")
        fields = f"{filename}\0{column}\0{dataset_name}\0".encode()
        chunks = [await upload.read()]
        return await parse_body(
            pool, chunks, parse_file, dataset_name, fields, filename, column, limits
        )
    if media_type != "application/json":
        raise UnsupportedMediaType(
            "send JSON (application/json) or a file upload (multipart/form-data)",
            [{"loc": ["header", "content-type"], "msg": f"unsupported: {content_type or 'none'}"}],
        )
    # The chunks as they came, not joined: a large body goes to a file without one more copy.
    chunks = [chunk async for chunk in request.stream() if chunk]
    return await parse_body(pool, chunks, parse_json, limits)


async def parse_body(
    pool: ParsePool, chunks: list[bytes], parse: Callable[..., Upload], *args: Any
) -> Upload:
    """parse(body, *args) on a thread, or for a large body in the parsing pool, the body and the
    encoded dataset going there and back through a file (see app/parsing.py)."""
    size = sum(len(chunk) for chunk in chunks)
    if not pool.offloads(size):
        return await pool.run("dataset", size, parse, b"".join(chunks), *args)
    async with spooled(chunks) as path:
        chunks.clear()  # the file holds the body now
        upload = await pool.run("dataset", size, parse_spooled, parse, str(path), *args)
        blob = await to_thread.run_sync(path.read_bytes)
    return replace(upload, dataset=replace(upload.dataset, blob=blob))


def parse_spooled(parse: Callable[..., Upload], path: str, *args: Any) -> Upload:
    """parse() on the body in the file at path, in the parsing pool; the encoded dataset is
    written back over the body and returned without it."""
    file = Path(path)
    upload = parse(file.read_bytes(), *args)
    try:
        file.write_bytes(upload.dataset.blob)
    except OSError as exc:
        raise no_room_for_body(exc) from None
    return replace(upload, dataset=replace(upload.dataset, blob=b""))


FORM_FIELDS = ("file", "name", "label_column")


def _field_error(field: str, problem: str) -> InvalidInput:
    return InvalidInput(
        f"the multipart field {field!r} {problem}", [{"loc": [field], "msg": problem}]
    )


def check_form(form: FormData) -> None:
    """Each field once and of its kind, no other field: like a JSON body's extra="forbid".

    A label_column sent as a file part (curl -F label_column=@col.txt) was ignored, so the last
    column became the label without a word; of two file parts, the last was stored.
    """
    for field in form:
        if field not in FORM_FIELDS:
            raise _field_error(field, f"is not one of {', '.join(FORM_FIELDS)}")
        values = form.getlist(field)
        if len(values) > 1:
            raise _field_error(field, f"is sent {len(values)} times; send it once")
        value = values[0]
        if field != "file" and not isinstance(value, str):
            raise _field_error(field, "must be text, not a file")
        if isinstance(value, str) and "\x00" in value:
            raise _field_error(field, "holds a NUL character")


def parse_file(
    data: bytes,
    dataset_name: str,
    fields: bytes,
    filename: str,
    column: str | None,
    limits: ingest.Limits,
) -> Upload:
    """A .csv or .npz upload parsed, encoded and hashed (CPU-bound: run on a thread or the pool).

    ``fields`` are the form's other fields, which the request digest covers with the file.
    """
    is_npz = filename.lower().endswith(".npz")
    content = datasets.content_sha256(
        data, format_name="npz" if is_npz else "csv", label_column=None if is_npz else column
    )
    parsed = ingest.from_npz(data, limits) if is_npz else ingest.from_csv(data, column, limits)
    digest = idempotency.request_digest(fields + data)
    return Upload(dataset_name, _encoded(parsed), digest, content)


def parse_json(data: bytes, limits: ingest.Limits) -> Upload:
    """A JSON upload validated, parsed, encoded and hashed (CPU-bound, like parse_file)."""
    try:
        body = DatasetCreate.model_validate_json(data)
    except ValidationError as exc:
        raise invalid_input_from(exc, prefix=("body",)) from None
    parsed = ingest.from_rows(body.features, body.labels, limits)
    rows = body.model_dump_json(include={"features", "labels"}).encode()
    content = datasets.content_sha256(rows, format_name="json", label_column=None)
    digest = idempotency.request_digest(body.model_dump_json().encode())
    return Upload(body.name, _encoded(parsed), digest, content)


def _encoded(parsed: ingest.ParsedDataset) -> datasets.EncodedDataset:
    return datasets.encode_dataset(parsed.X, parsed.y, parsed.task, parsed.classes)


def _store(
    factory: sessionmaker[Session], tenant_id: str, upload: Upload, key: str | None, dedupe: bool
) -> JSONResponse:
    def create(session: Session) -> tuple[int, dict[str, Any]]:
        dataset, is_new = datasets.store_once(
            session,
            tenant_id=tenant_id,
            name=upload.name[:200],
            dataset=upload.dataset,
            sha256=upload.content_sha256,
            dedupe=dedupe,
        )
        created = DatasetCreated(**to_out(dataset).model_dump(), deduplicated=not is_new)
        code = status.HTTP_201_CREATED if is_new else status.HTTP_200_OK
        return code, created.model_dump(mode="json")

    with factory() as session, session.begin():
        outcome = idempotency.run_once(
            session,
            tenant_id=tenant_id,
            scope=UPLOAD_SCOPE,
            key=key,
            # The query is part of the request: a retry asking dedupe=false is another request.
            digest=idempotency.request_digest(f"{upload.digest}\0dedupe={dedupe}".encode()),
            act=lambda: create(session),
        )
    return JSONResponse(outcome.response, status_code=outcome.status_code)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=DatasetCreated,
    responses={200: {"model": DatasetCreated, "description": "the same content, stored before"}},
    openapi_extra=UPLOAD_BODY,
    summary="Upload a dataset as JSON rows, a CSV file or an .npz archive",
)
async def create_dataset(
    request: Request,
    settings: SettingsDep,
    tenant: TenantDep,
    factory: SessionFactoryDep,
    key: IdempotencyKeyDep,
    dedupe: Annotated[
        bool,
        Query(description="false: store this upload even if the same content is stored already"),
    ] = True,
) -> JSONResponse:
    pool: ParsePool = request.app.state.parse_pool
    upload = await _parse_upload(request, ingest.Limits.from_settings(settings), pool)
    return await run_in_threadpool(_store, factory, tenant, upload, key, dedupe)


@router.get("", response_model=DatasetList)
def list_datasets(
    session: ReadSessionDep,
    tenant: TenantDep,
    limit: Limit = 50,
    offset: Offset = 0,
) -> DatasetList:
    items = datasets.list_datasets(session, tenant, limit=limit, offset=offset)
    return DatasetList(items=[to_out(d) for d in items], limit=limit, offset=offset)


@router.get("/{dataset_id}", response_model=DatasetOut)
def get_dataset(dataset_id: str, session: ReadSessionDep, tenant: TenantDep) -> DatasetOut:
    return to_out(datasets.get_dataset(session, tenant, dataset_id))


@router.delete("/{dataset_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_dataset(dataset_id: str, session: SessionDep, tenant: TenantDep) -> None:
    with session.begin():
        # A submission, or a sweep's creation, holds this lock from before it reads the dataset
        # to its commit, so the checks below see every job and sweep that will use it.
        jobs.lock_tenant_jobs(session, tenant)
        datasets.get_dataset(session, tenant, dataset_id)
        if jobs.dataset_in_use(session, dataset_id):
            raise Conflict(
                f"dataset {dataset_id!r} is used by a queued or running job; cancel it first"
            )
        if sweeps.dataset_in_use(session, dataset_id):
            raise Conflict(f"dataset {dataset_id!r} is used by a running sweep; cancel it first")
        datasets.delete_dataset(session, tenant, dataset_id)
