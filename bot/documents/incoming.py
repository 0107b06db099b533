"""A message's documents as they arrive: read into parts to store, and whether they need a
turn of their own that reads them in parts (``READ_IN_PARTS``).

They do when one prompt cannot hold them: a document longer than the budget, several whose
text together is, or more scanned pages than a prompt may carry as images (those are read
through the model's vision a few pages at a time instead). Such a message keeps the
original files (the ``attachments`` table, by sha256) so the turn can read them whole, and
stores what fits as the document part's text: what later turns see until the reading in
parts replaces it with its notes (or for ever, if the user declines the cost).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.config import Settings
from bot.documents import (
    DocumentText,
    DocumentUnreadable,
    document_budget,
    document_parts,
    read_document,
    sentence,
    to_parts,
    unreadable,
)

READ_IN_PARTS = "document"  # the kind of turn (turns.kind) that reads documents in parts


@dataclass(slots=True)
class Arrived:
    parts: list[Any] = field(default_factory=list)  # NewParts to store with the message
    notices: list[str] = field(default_factory=list)  # sentences for the user now
    in_parts: bool = False  # answer with a READ_IN_PARTS turn


def scanned_within(doc: DocumentText) -> list[int]:
    """Scanned pages among those ``doc`` read."""
    pages = doc.document.scanned if doc.document is not None else []
    return [p for p in pages if p <= doc.read] if doc.unit == "page" else list(pages)


def needs_parts(docs: Sequence[DocumentText], settings: Settings) -> bool:
    """True when one prompt cannot hold ``docs`` (sent together) as they are."""
    budget = document_budget(settings)
    if any(doc.truncated for doc in docs) or sum(doc.tokens for doc in docs) > budget:
        return True
    scanned = sum(len(scanned_within(doc)) for doc in docs)
    return bool(settings.vision) and settings.doc_vision_pages > 0 and scanned > settings.max_images


async def take_in(attachments: Sequence[Any], settings: Settings, *, may_split: bool = True) -> Arrived:
    """Parts and notices for a message's documents (``Attachment``s). ``may_split``: the message
    asks for a plain answer (not a /copy brief, not context), so it may become a turn that
    reads in parts."""
    arrived = Arrived()
    if not may_split:
        for att in attachments:
            parts, notices = await to_parts(att, settings)
            arrived.parts.extend(parts)
            arrived.notices.extend(notices)
        return arrived
    budget = document_budget(settings)
    read: list[tuple[Any, DocumentText | DocumentUnreadable]] = []
    for att in attachments:
        try:
            read.append(
                (
                    att,
                    await read_document(
                        att.data, att.mime, att.filename, budget, page_images=0, vision=bool(settings.vision)
                    ),
                )
            )
        except DocumentUnreadable as exc:
            read.append((att, exc))
    docs = [doc for _, doc in read if isinstance(doc, DocumentText)]
    arrived.in_parts = needs_parts(docs, settings)
    for att, doc in read:
        if isinstance(doc, DocumentUnreadable):
            parts, notices = unreadable(att, doc)
        elif arrived.in_parts:
            # The reader's own notes only: what was cut, and scanned pages, the turn tells.
            notes = doc.document.notes if doc.document is not None else []
            parts, notices = document_parts(att, doc, in_parts=True), [sentence(n) for n in notes]
            parts[0].blob, parts[0].mime = att.data, att.mime or "application/octet-stream"
        elif scanned_within(doc) and settings.vision:
            parts, notices = await to_parts(att, settings)  # a few scanned pages: shown as images
        else:
            parts, notices = document_parts(att, doc), [sentence(n) for n in doc.notes]
        arrived.parts.extend(parts)
        arrived.notices.extend(notices)
    return arrived
