"""Characters (issue 17): a table of characters, shared in a workspace, a group or a chat,
and the character a conversation speaks as.

``conversations.character_id`` is added without a foreign key and dropped with SQLite's own
ALTER TABLE … DROP COLUMN: a batch copy of ``conversations`` on SQLite ends in DROP TABLE,
which with foreign keys on would cascade into messages and turns.

Revision ID: 0005_characters
Revises: 0004_usage_quotas
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_characters"
down_revision = "0004_usage_quotas"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "characters",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("workspace", sa.String(64), nullable=False),
        sa.Column("chat", sa.String(128), nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("name_key", sa.String(64), nullable=False),
        sa.Column("card", sa.JSON(), nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("avatar", sa.LargeBinary(), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_characters")),
        sa.UniqueConstraint(
            "platform", "workspace", "chat", "name_key", name=op.f("uq_characters_platform_workspace_chat_name_key")
        ),
    )
    # Plain ADD COLUMN on both databases (no batch copy on SQLite).
    op.add_column("conversations", sa.Column("character_id", sa.Integer(), nullable=True))
    op.create_index(op.f("ix_conversations_character_id"), "conversations", ["character_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_conversations_character_id"), table_name="conversations")
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE conversations DROP COLUMN character_id")  # SQLite 3.35+, no table copy
    else:
        op.drop_column("conversations", "character_id")
    op.drop_table("characters")
