"""`dnn-service export MODEL --format onnx -o FILE`: download a model in a portable format."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.cli.commands import add_connection_options, client_from_args, guarded
from app.client import Client, ClientError

FORMATS = ("onnx",)


def resolve_model_id(api: Client, model: str, version: int | None, alias: str | None) -> str:
    """A model id given an id, or a name (its latest version unless version or alias)."""
    if alias is not None:
        page = api.get_model_name(model)
        if alias not in page["aliases"]:
            raise ClientError(404, "not_found", f"model {model!r} has no alias {alias!r}")
        version = int(page["aliases"][alias])
    if version is None:
        try:
            return str(api.get_model(model)["id"])
        except ClientError as exc:
            if exc.status != 404:
                raise
    found = api.find_model(model, version=version)
    return str(found["id"])


def _export(args: argparse.Namespace) -> int:
    with client_from_args(args) as api:
        model_id = resolve_model_id(api, args.model, args.version, args.alias)
        data = api.export_onnx(model_id)
    target = Path(args.output or f"{model_id}.onnx")
    target.write_bytes(data)
    sys.stderr.write(f"model {model_id} written to {target} ({len(data)} bytes)\n")
    sys.stdout.write(f"{target}\n")
    return 0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    export = commands.add_parser("export", help="download a model as ONNX")
    export.add_argument(
        "model", help="a model id, or a model name (its latest version unless --version or --alias)"
    )
    export.add_argument("--format", choices=FORMATS, default="onnx")
    which = export.add_mutually_exclusive_group()
    which.add_argument("--version", type=int, default=None, help="with a model name")
    which.add_argument("--alias", default=None, help="with a model name, e.g. production")
    export.add_argument("-o", "--output", default=None, help="file to write (default: ID.onnx)")
    add_connection_options(export)
    export.set_defaults(handler=guarded(_export))
