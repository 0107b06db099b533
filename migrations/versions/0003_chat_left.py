"""A chat the bot was removed from is recorded: nothing is sent there again until the bot
is added back.

Revision ID: 0003_chat_left
Revises: 0002_turn_pages
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_chat_left"
down_revision = "0002_turn_pages"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("left_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("left_at")
