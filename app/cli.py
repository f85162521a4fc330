"""The `dnn-service` command: serve, migrate."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from app.db.migrate import upgrade_to_head
from app.settings import Settings


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from app.main import create_app

    overrides = {"workers": args.workers} if args.workers is not None else {}
    settings = Settings(**overrides)
    upgrade_to_head(settings.database_url)
    logging.getLogger("app").info(
        "serving on http://%s:%d with %s executor", args.host, args.port, settings.executor
    )
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level=args.log_level)
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
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--workers", type=int, default=None, help="training worker processes (default: CPU count)"
    )
    serve.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )
    serve.set_defaults(handler=_serve)

    migrate = commands.add_parser("migrate", help="create or upgrade the database schema")
    migrate.set_defaults(handler=_migrate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    args = build_parser().parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
