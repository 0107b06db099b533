"""Alembic migrations (named, forward-only revisions from 0001)."""
