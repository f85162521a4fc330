"""The `dnn-service` command: serve, migrate, worker, keys, and the client commands."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from app.auth import AuthDecision, decide_mode, log_decision
from app.cli import commands as cli_client
from app.cli import export as cli_export
from app.cli import keys as cli_keys
from app.cli import sweeps as cli_sweeps
from app.cli import worker as cli_worker
from app.db.engine import make_engine, make_session_factory, transaction
from app.db.migrate import upgrade_to_head
from app.http.request_id import RequestIdFilter
from app.settings import Settings
from app.store import keys

log = logging.getLogger("app")

# Settings whose values are secrets (`repr=False` in Settings): never printed.
SECRET_SETTINGS = frozenset(name for name, field in Settings.model_fields.items() if not field.repr)


def _auth_decision(settings: Settings, host: str) -> AuthDecision:
    engine = make_engine(settings.database_url)
    try:
        with transaction(make_session_factory(engine)) as session:
            decision = decide_mode(
                settings, host, keys_ever_created=keys.keys_ever_created(session)
            )
            log_decision(decision, active_keys=keys.active_key_count(session))
            return decision
    finally:
        engine.dispose()


def _serve(args: argparse.Namespace) -> int:
    from app.cli.serve import serve

    overrides: dict[str, Any] = {}
    if args.workers is not None:
        overrides["workers"] = args.workers
    if args.api_workers is not None:
        overrides["api_workers"] = args.api_workers
    settings = Settings(**overrides)
    upgrade_to_head(settings.database_url)
    decision = _auth_decision(settings, args.host)
    log.info("serving on http://%s:%d with %s executor", args.host, args.port, settings.executor)
    serve(args, settings, decision.mode)
    return 0


def _migrate(_args: argparse.Namespace) -> int:
    settings = Settings()
    upgrade_to_head(settings.database_url)
    print("database schema is up to date")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dnn-service", description="Train NumPy neural networks over REST and serve them."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the API and its local training workers")
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default: 127.0.0.1; a non-loopback one needs API keys unless "
        "DNN_AUTH=none)",
    )
    serve.add_argument("--port", type=int, default=8000, help="(default: 8000)")
    serve.add_argument(
        "--workers",
        type=int,
        default=None,
        help="training worker processes, 0 for none (default: DNN_WORKERS, else CPU count - 1, "
        "at least 1)",
    )
    serve.add_argument(
        "--api-workers",
        type=int,
        default=None,
        help="API processes serving HTTP, each with its own model cache (default: DNN_API_WORKERS, "
        "else 1)",
    )
    serve.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )
    serve.set_defaults(handler=_serve)

    migrate = commands.add_parser("migrate", help="create or upgrade the database schema")
    migrate.set_defaults(handler=_migrate)

    cli_worker.register(commands)
    cli_keys.register(commands)
    cli_client.register(commands)
    cli_export.register(commands)
    cli_sweeps.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s",
        handlers=[handler],
    )
    parser = build_parser()
    args = parser.parse_args(argv)
    validate = getattr(args, "validate", None)
    if validate is not None:
        validate(parser, args)
    try:
        return int(args.handler(args))
    except ValidationError as exc:
        if exc.title != Settings.__name__:
            raise
        parser.exit(2, settings_error(exc))


def settings_error(exc: ValidationError) -> str:
    """One line per bad DNN_* variable, instead of a traceback."""
    lines = []
    for error in exc.errors(include_url=False):
        if not error["loc"]:
            # A check across several settings (e.g. DNN_MAX_CLASSES against the layer width):
            # its message names the variables, and its input is every setting at once.
            message = error["msg"].removeprefix("Value error, ")
            lines.append(f"dnn-service: {message}\n")
            continue
        name = "_".join(map(str, error["loc"]))
        # A secret is never echoed, not even a malformed one: it may be a real token mistyped.
        shown = "(hidden)" if name in SECRET_SETTINGS else repr(error["input"])
        lines.append(f"dnn-service: DNN_{name.upper()}={shown}: {error['msg']}\n")
    return "".join(lines)


if __name__ == "__main__":
    sys.exit(main())
