"""`dnn-service keys create|list|revoke`: API keys, managed directly in the database."""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

from app.db.engine import make_engine, make_session_factory, transaction
from app.db.migrate import upgrade_to_head
from app.errors import NotFound
from app.schemas.admin import TENANT_PATTERN
from app.settings import Settings
from app.store import keys


def _factory() -> Any:
    settings = Settings()
    upgrade_to_head(settings.database_url)
    return make_session_factory(make_engine(settings.database_url))


def _create(args: argparse.Namespace) -> int:
    if not re.fullmatch(TENANT_PATTERN, args.tenant):
        # On stderr: a script capturing the key from stdout must not capture this instead.
        sys.stderr.write(
            f"error: tenant names are 1-64 letters, digits, '_', '.', '-': {args.tenant!r}\n"
        )
        return 2
    with transaction(_factory()) as session:
        first = not keys.keys_ever_created(session)
        record, plain = keys.create_key(session, args.tenant, is_admin=args.admin)
    if first:
        print("the first key of this database: from now on every request needs an API key")
    kind = "admin key" if record.is_admin else "key"
    print(f"created {kind} {record.id} for tenant {record.tenant_id}; it is shown once:")
    # Alone on the last line, so scripts can capture it with `tail -n 1`.
    print(plain)
    return 0


def _list(_args: argparse.Namespace) -> int:
    with transaction(_factory()) as session:
        records = keys.list_keys(session)
        if not records:
            sys.stderr.write("no keys yet: `dnn-service keys create --tenant NAME` makes one\n")
        for record in records:
            state = "revoked" if record.revoked_at else "active"
            role = "admin" if record.is_admin else "tenant"
            print(f"{record.id}  {record.tenant_id:<20} {role:<6} {state:<7} {record.prefix}…")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    try:
        with transaction(_factory()) as session:
            record = keys.revoke_key(session, args.key_id)
    except NotFound as exc:
        sys.stderr.write(f"error: {exc.message}; `dnn-service keys list` shows the ids\n")
        return 1
    print(f"revoked key {record.id} of tenant {record.tenant_id}")
    return 0


def register(commands: Any) -> None:
    parser = commands.add_parser("keys", help="create, list and revoke API keys")
    actions = parser.add_subparsers(dest="keys_command", required=True)
    create = actions.add_parser("create", help="create a key for a tenant and print it once")
    create.add_argument("--tenant", required=True)
    create.add_argument(
        "--admin", action="store_true", help="may use /admin (tenants, keys) and read /metrics"
    )
    create.set_defaults(handler=_create)
    listing = actions.add_parser("list", help="list keys (never the keys themselves)")
    listing.set_defaults(handler=_list)
    revoke = actions.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id")
    revoke.set_defaults(handler=_revoke)
