"""Long documents (issue 21): jobs reading a message's documents in parts, and what each
part's notes (and each scanned page's transcription) came to, kept so nothing is paid twice.

Revision ID: 0008_document_jobs
Revises: 0007_mcp_tools
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_document_jobs"
down_revision = "0007_mcp_tools"
branch_labels = None
depends_on = None


def _ts(name: str) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "document_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("request_seq", sa.Integer(), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("plan", sa.JSON(), nullable=True),
        sa.Column("estimate_tokens", sa.BigInteger(), nullable=False),
        sa.Column("estimate_cost", sa.Float(), nullable=False),
        sa.Column("turn_id", sa.Integer(), nullable=True),
        sa.Column("progress", sa.JSON(), nullable=True),
        sa.Column("approved_by", sa.String(128), nullable=False),
        sa.Column("resumes", sa.Integer(), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            ondelete="CASCADE",
            name=op.f("fk_document_jobs_conversation_id_conversations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_document_jobs")),
        sa.UniqueConstraint(
            "conversation_id", "request_seq", name=op.f("uq_document_jobs_conversation_id_request_seq")
        ),
    )
    op.create_index(op.f("ix_document_jobs_conversation_id"), "document_jobs", ["conversation_id"])
    op.create_table(
        "document_results",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("document", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=True),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        _ts("created_at"),
        sa.ForeignKeyConstraint(
            ["job_id"], ["document_jobs.id"], ondelete="CASCADE", name=op.f("fk_document_results_job_id_document_jobs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_document_results")),
        sa.UniqueConstraint(
            "job_id", "kind", "document", "number", name=op.f("uq_document_results_job_id_kind_document_number")
        ),
    )
    op.create_index(op.f("ix_document_results_job_id"), "document_results", ["job_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_document_results_job_id"), table_name="document_results")
    op.drop_table("document_results")
    op.drop_index(op.f("ix_document_jobs_conversation_id"), table_name="document_jobs")
    op.drop_table("document_jobs")
