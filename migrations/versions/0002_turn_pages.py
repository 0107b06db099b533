"""A turn keeps every platform message it wrote; a waiting user message keeps its request.

- ``turns.pages``: the platform ids of all the messages an answer wrote (every page, in
  order), so restart repair can rewrite each of them. It replaces
  ``messages.platform_refs``, which lived on the answer's message and missed the pages a
  platform split off after rendering.
- ``messages.request``: what a pending user message asks for when it is not a plain chat
  message (a /copy, a refinement, a regeneration: ``{"kind": …, "extra": …}``), so the
  queue of a conversation is the stored messages themselves.

Revision ID: 0002_turn_pages
Revises: 0001_initial
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_turn_pages"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("turns") as batch:
        batch.add_column(sa.Column("pages", sa.JSON(), nullable=True))
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("request", sa.JSON(), nullable=True))
    turns = sa.table("turns", sa.column("id"), sa.column("response_message_id"), sa.column("pages", sa.JSON()))
    messages = sa.table("messages", sa.column("id"), sa.column("platform_refs", sa.JSON()))
    refs = sa.select(messages.c.platform_refs).where(messages.c.id == turns.c.response_message_id).scalar_subquery()
    op.execute(turns.update().where(turns.c.response_message_id.isnot(None)).values(pages=refs))
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("platform_refs")


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("platform_refs", sa.JSON(), nullable=True))
    turns = sa.table("turns", sa.column("id"), sa.column("response_message_id"), sa.column("pages", sa.JSON()))
    messages = sa.table("messages", sa.column("id"), sa.column("platform_refs", sa.JSON()))
    pages = sa.select(turns.c.pages).where(turns.c.response_message_id == messages.c.id).scalar_subquery()
    op.execute(messages.update().values(platform_refs=pages))
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("request")
    with op.batch_alter_table("turns") as batch:
        batch.drop_column("pages")
