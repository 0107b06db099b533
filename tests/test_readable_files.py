"""One list of what the bot can read, for every platform: each adapter downloads exactly the
files the readers take (decks, sheets and books included) and answers the rest with a sentence."""

from __future__ import annotations

import pytest
from telegram import Message

from adapters.feishu.normalise import document as feishu_document
from adapters.slack.files import _kind as slack_kind
from adapters.telegram.media import files_of
from bot.documents import kind_of
from bot.platform import readable

FILES = [
    ("deck.pptx", ""),
    ("sales.xlsx", "application/octet-stream"),
    ("book.epub", ""),
    ("table.csv", "text/csv"),
    ("report.pdf", "application/pdf"),
    ("notes.md", "text/markdown"),
    ("card.json", "application/json"),
    ("brief.docx", ""),
    ("photo.png", "image/png"),
]
REFUSED = [("old.doc", "application/msword"), ("song.mp3", "audio/mpeg"), ("archive.zip", "application/zip")]


@pytest.mark.parametrize(("name", "mime"), FILES)
def test_what_the_readers_take_every_adapter_downloads(name: str, mime: str) -> None:
    kind = readable(mime, name)
    assert kind is not None
    if kind == "document":
        assert kind_of(b"", mime, name) is not None  # a reader takes it
    telegram = Message.de_json(
        {
            "message_id": 1,
            "date": 0,
            "chat": {"id": 5, "type": "private"},
            "document": {
                "file_id": "F1",
                "file_unique_id": "U1",
                "file_name": name,
                "mime_type": mime or None,
                "file_size": 10,
            },
        },
        None,
    )
    refs, notes = files_of(telegram)
    assert [r.filename for r in refs] == [name] and notes == []
    assert slack_kind({"name": name, "mimetype": mime}) == kind
    assert feishu_document("k1", name) is not None


@pytest.mark.parametrize(("name", "mime"), REFUSED)
def test_what_no_reader_takes_is_answered_not_downloaded(name: str, mime: str) -> None:
    assert readable(mime, name) is None
    telegram = Message.de_json(
        {
            "message_id": 1,
            "date": 0,
            "chat": {"id": 5, "type": "private"},
            "document": {
                "file_id": "F1",
                "file_unique_id": "U1",
                "file_name": name,
                "mime_type": mime,
                "file_size": 10,
            },
        },
        None,
    )
    refs, notes = files_of(telegram)
    assert refs == [] and name in notes[0] and ".pptx" in notes[0]
    assert slack_kind({"name": name, "mimetype": mime}) is None
    assert feishu_document("k1", name) is None
