"""The Alembic history stays one line: every migration has one parent and one child at most."""

from __future__ import annotations

from alembic.script import ScriptDirectory

from app.db.migrate import alembic_config


def test_the_migrations_form_one_linear_history() -> None:
    scripts = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert len(scripts.get_heads()) == 1, scripts.get_heads()
    revisions = list(scripts.walk_revisions())
    # Walking from the head down, each revision's parent is the next one, ending at the base.
    parents = [revision.down_revision for revision in revisions]
    assert parents == [r.revision for r in revisions[1:]] + [None]
