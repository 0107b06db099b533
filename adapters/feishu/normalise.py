"""``im.message.receive_v1`` → what the adapter needs: where it belongs, who wrote it, its text
(mentions resolved), the images and files to fetch, and a polite note for what cannot be read.

Feishu sends ``message.content`` as a JSON string whose shape depends on ``message_type``:
``text`` (``{"text": "@_user_1 hi"}``: mentions are placeholders listed in ``mentions``),
``post`` (rich text: paragraphs of ``text`` / ``a`` / ``at`` / ``img`` / ``code_block`` /
``md`` / ``emotion`` runs, with an optional title, sometimes under a locale key), ``image``,
``file``; stickers, audio, video, merged forwards and cards are answered with a note.
"""

from __future__ import annotations

import json
import mimetypes
from dataclasses import dataclass, field
from typing import Any, Literal

from bot.platform import WHAT_I_READ, readable

UNSUPPORTED = {
    "sticker": "a sticker",
    "audio": "a voice message",
    "media": "a video",
    "merge_forward": "merged forwarded messages",
    "interactive": "a card",
    "share_chat": "a shared group",
    "share_user": "a shared contact",
    "location": "a location",
    "video_chat": "a video call",
    "todo": "a task",
    "vote": "a poll",
    "share_calendar_event": "a calendar event",
    "calendar": "a calendar event",
    "folder": "a folder",
    "hongbao": "a red packet",
    "system": "a system message",
}
NOTE_TAIL = "Send me text, an image or a document instead."


@dataclass(frozen=True, slots=True)
class Identity:
    open_id: str
    name: str


@dataclass(frozen=True, slots=True)
class FileRef:
    key: str
    kind: Literal["image", "file"]
    name: str
    mime: str


@dataclass
class Received:
    """One user's message as the adapter reads it."""

    tenant: str
    chat_id: str
    chat_type: str  # "p2p" or "group"
    message_id: str
    sender: str  # open_id
    text: str
    thread: str  # the conversation's thread key: the thread's root message id, or ""
    in_thread: bool  # answer in the thread
    addressed: bool
    parent_id: str = ""
    threaded: bool = False  # said inside a topic or thread (every message of a topic group is)
    files: list[FileRef] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def private(self) -> bool:
        return self.chat_type == "p2p"


def _content(raw: Any) -> Any:
    if isinstance(raw, dict):
        return raw
    try:
        return json.loads(raw) if isinstance(raw, str) and raw else {}
    except ValueError:
        return {}


def _mentions(message: dict, me: Identity) -> tuple[dict[str, str], bool]:
    """Each placeholder key's replacement ("" for the bot itself, "@Name" for anyone else)
    and whether the bot was mentioned."""
    names: dict[str, str] = {}
    mentioned = False
    for mention in message.get("mentions") or ():
        if not isinstance(mention, dict) or not isinstance(mention.get("key"), str):
            continue
        ids = mention.get("id") or {}
        open_id = ids.get("open_id") if isinstance(ids, dict) else ids
        if open_id == me.open_id:
            names[mention["key"]] = ""
            mentioned = True
        else:
            names[mention["key"]] = f"@{mention.get('name') or 'someone'}"
    return names, mentioned


def _resolve(text: str, names: dict[str, str]) -> str:
    # Longest keys first: "@_user_1" must not eat the start of "@_user_10".
    for key in sorted(names, key=len, reverse=True):
        text = text.replace(key, names[key])
    return text.replace("@_all", "@all")


def _tidy(text: str) -> str:
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return "\n".join(lines).strip()


def _post(body: Any, names: dict[str, str]) -> tuple[str, list[str]]:
    """Rich text → (Markdown-ish text, image keys in order)."""
    if isinstance(body, dict) and "content" not in body:  # {"zh_cn": {...}}: the first locale
        body = next((v for v in body.values() if isinstance(v, dict)), {})
    if not isinstance(body, dict):
        return "", []
    lines: list[str] = []
    images: list[str] = []
    title = body.get("title")
    if isinstance(title, str) and title.strip():
        lines.append(f"**{title.strip()}**")
    for paragraph in body.get("content") or ():
        parts: list[str] = []
        for run in paragraph if isinstance(paragraph, list) else ():
            if not isinstance(run, dict):
                continue
            tag = run.get("tag")
            if tag in ("text", "md"):
                parts.append(str(run.get("text", "")))
            elif tag == "a":
                label, href = str(run.get("text") or ""), str(run.get("href") or "")
                parts.append(f"[{label}]({href})" if label and href else label or href)
            elif tag == "at":
                key = str(run.get("user_id") or "")
                parts.append(names.get(key, f"@{run.get('user_name') or 'someone'}"))
            elif tag == "img" and run.get("image_key"):
                images.append(str(run["image_key"]))
            elif tag == "code_block":
                parts.append(f"\n```{run.get('language') or ''}\n{run.get('text', '')}\n```\n")
            elif tag == "emotion":
                parts.append(f":{run.get('emoji_type', '')}:")
            elif tag == "media":
                parts.append("(a video)")
        lines.append("".join(parts))
    return "\n".join(lines), images


def _words(kind: str, body: Any, names: dict[str, str]) -> tuple[str, list[str]]:
    """The words of a text or rich-text message (placeholders not yet resolved) and the rich
    text's image keys; other kinds have none."""
    if kind == "text":
        return (str(body.get("text", "")) if isinstance(body, dict) else ""), []
    if kind == "post":
        return _post(body, names)
    return "", []


def quoted(kind: str, content: str, mentions: list[dict[str, str]], me: Identity) -> str:
    """The text of a message read back by its id (what a reply quotes), read as a received one:
    text and rich text, mentions resolved to names; "" for every other kind."""
    names, _ = _mentions({"mentions": mentions}, me)
    text, _ = _words(kind, _content(content), names)
    return _tidy(_resolve(text, names))


def thread_of(message: dict, *, private: bool, group_threads: bool) -> tuple[str, bool]:
    """(the conversation's thread key, answer in that thread). A message in a thread (话题; every
    message of a topic group) belongs to its root's conversation; in a group's main chat the
    whole chat is one conversation, unless each mention opens a thread (``group_threads``)."""
    message_id = str(message.get("message_id") or "")
    if message.get("thread_id"):
        return str(message.get("root_id") or message_id), True
    if group_threads and not private:
        return message_id, True
    return "", False


def received(event: dict, tenant: str, me: Identity, *, group_threads: bool = False) -> Received | None:
    """The message of an ``im.message.receive_v1`` event, or None (not a person's message)."""
    message, sender = event.get("message"), event.get("sender")
    if not isinstance(message, dict) or not isinstance(sender, dict):
        return None
    sender_ids = sender.get("sender_id") or {}
    open_id = sender_ids.get("open_id") if isinstance(sender_ids, dict) else None
    if sender.get("sender_type", "user") != "user" or not open_id or open_id == me.open_id:
        return None
    chat_id, message_id = message.get("chat_id"), message.get("message_id")
    if not chat_id or not message_id:
        return None
    private = message.get("chat_type") == "p2p"
    names, mentioned = _mentions(message, me)
    kind = str(message.get("message_type") or "")
    body = _content(message.get("content"))
    text, images = _words(kind, body, names)
    files = [FileRef(key, "image", f"image-{i + 1}.png", "image/png") for i, key in enumerate(images)]
    notes: list[str] = []
    if kind == "image" and isinstance(body, dict) and body.get("image_key"):
        files = [FileRef(str(body["image_key"]), "image", "image.png", "image/png")]
    elif kind == "file" and isinstance(body, dict) and body.get("file_key"):
        name = str(body.get("file_name") or "file")
        ref = document(str(body["file_key"]), name)
        if ref is None:
            notes.append(f"I can't read the file “{name}”: I read images and {WHAT_I_READ}.")
        else:
            files = [ref]
    elif kind not in ("text", "post"):
        what = UNSUPPORTED.get(kind, "this kind of message")
        notes.append(f"I can't handle {what}. {NOTE_TAIL}")
    thread, in_thread = thread_of(message, private=private, group_threads=group_threads)
    text = _tidy(_resolve(text, names))
    if not text and not files and not notes and mentioned:
        text = f"@{me.name}"  # a bare @: answered like a greeting, not ignored
    return Received(
        tenant=tenant,
        chat_id=str(chat_id),
        chat_type="p2p" if private else "group",
        message_id=str(message_id),
        sender=str(open_id),
        text=text,
        thread=thread,
        in_thread=in_thread,
        addressed=private or mentioned,
        parent_id=str(message.get("parent_id") or ""),
        threaded=bool(message.get("thread_id")),
        files=files,
        notes=notes,
    )


def document(key: str, name: str) -> FileRef | None:
    """A file worth downloading: an image, or a document the core reads."""
    mime = (mimetypes.guess_type(name)[0] or "").lower()
    if readable(mime, name) is None:  # anything the bot cannot use is not downloaded at all
        return None
    return FileRef(key, "file", name, mime or "application/octet-stream")
