"""The `dnn-service` command: serve, migrate, worker, keys, and the client commands."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import sys
from collections.abc import Sequence

from app import cli_client, cli_export, cli_keys, cli_worker
from app.db.engine import make_engine, make_session_factory, transaction
from app.db.migrate import upgrade_to_head
from app.request_id import RequestIdFilter
from app.settings import Settings
from app.store import keys

log = logging.getLogger("app")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _keys_configured(settings: Settings) -> bool:
    engine = make_engine(settings.database_url)
    try:
        with transaction(make_session_factory(engine)) as session:
            return keys.active_key_count(session) > 0
    finally:
        engine.dispose()


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from app.main import create_app

    overrides = {"workers": args.workers} if args.workers is not None else {}
    settings = Settings(**overrides)
    upgrade_to_head(settings.database_url)
    if not _keys_configured(settings):
        if not is_loopback(args.host) and not settings.allow_open_network:
            log.error(
                "refusing to serve on %s without API keys: anyone on the network could use it. "
                "Create one with `dnn-service keys create --tenant NAME`, bind 127.0.0.1, or set "
                "DNN_ALLOW_OPEN_NETWORK=true to override.",
                args.host,
            )
            return 2
        log.warning(
            "no API keys configured: open single-tenant mode; every caller that reaches %s:%d "
            "shares one tenant. Create a key with `dnn-service keys create --tenant NAME`.",
            args.host,
            args.port,
        )
    log.info("serving on http://%s:%d with %s executor", args.host, args.port, settings.executor)
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

    cli_worker.register(commands)
    cli_keys.register(commands)
    cli_client.register(commands)
    cli_export.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s",
        handlers=[handler],
    )
    args = build_parser().parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
