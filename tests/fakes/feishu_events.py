"""Events the fake Feishu sends to the bot: realistic schema-2.0 payloads, and their delivery
over the HTTP callback (plain, or encrypted and signed as Feishu does).

Field names follow the SDK's event models (``lark_oapi/api/im/v1/model/p2_im_message_receive_v1.py``,
``event_message.py``, ``mention_event.py``, ``p2_im_chat_member_bot_added_v1.py``,
``lark_oapi/event/callback/model/p2_card_action_trigger.py``). As on the wire, ``message.content``
is a JSON *string* and times are strings of milliseconds.

Encryption (an app with an Encrypt Key): body ``{"encrypt": base64(iv + AES-256-CBC(key=sha256(
encrypt_key), iv, PKCS#7(json)))}``; headers ``X-Lark-Request-Timestamp``, ``X-Lark-Request-Nonce``,
``X-Lark-Signature`` = hex sha256(timestamp + nonce + encrypt_key + body).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

if TYPE_CHECKING:
    from tests.fakes.feishu_api import FakeFeishu
    from tests.fakes.feishu_model import FakeChat, FakeMessage, FakeUser

MERGE_FORWARD_CONTENT = "Merged and Forwarded Message"


def encrypt(encrypt_key: str, plaintext: str) -> str:
    """Feishu's event encryption: base64(iv + AES-256-CBC(sha256(key), iv, PKCS#7(text)))."""
    key = hashlib.sha256(encrypt_key.encode()).digest()
    iv = os.urandom(16)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext.encode()) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return base64.b64encode(iv + encryptor.update(padded) + encryptor.finalize()).decode()


def decrypt(encrypt_key: str, encrypted: str) -> str:
    """The inverse, for tests that read what the fake sent."""
    raw = base64.b64decode(encrypted)
    key = hashlib.sha256(encrypt_key.encode()).digest()
    decryptor = Cipher(algorithms.AES(key), modes.CBC(raw[:16])).decryptor()
    padded = decryptor.update(raw[16:]) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return (unpadder.update(padded) + unpadder.finalize()).decode()


def signature(timestamp: str, nonce: str, encrypt_key: str, body: bytes) -> str:
    return hashlib.sha256((timestamp + nonce + encrypt_key).encode() + body).hexdigest()


@dataclass
class HttpDelivery:
    url: str
    payload: dict  # the event before encryption
    body: bytes  # what was posted
    headers: dict[str, str]
    status: int | None = None  # None: no answer within the timeout
    response: bytes = b""
    latency: float | None = None

    def response_json(self) -> Any:
        return json.loads(self.response)


async def post_event(
    url: str, payload: dict, *, encrypt_key: str | None, answer_within: float, signature_key: str | None = None
) -> HttpDelivery:
    """POST ``payload`` to the bot as Feishu would (``signature_key`` overrides the key used to
    sign, to test a forged signature)."""
    plain = json.dumps(payload, ensure_ascii=False)
    body = (json.dumps({"encrypt": encrypt(encrypt_key, plain)}) if encrypt_key else plain).encode()
    headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "Go-http-client/1.1"}
    if encrypt_key:
        timestamp, nonce = str(int(time.time())), secrets.token_hex(8)
        headers.update(
            {
                "X-Lark-Request-Timestamp": timestamp,
                "X-Lark-Request-Nonce": nonce,
                "X-Lark-Signature": signature(timestamp, nonce, signature_key or encrypt_key, body),
            }
        )
    delivery = HttpDelivery(url, payload, body, headers)
    started = time.monotonic()
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=answer_within)) as session:
            async with session.post(url, data=body, headers=headers) as response:
                delivery.status, delivery.response = response.status, await response.read()
                delivery.latency = time.monotonic() - started
    except TimeoutError:
        pass
    return delivery


class EventFactory:
    """Builds events and records the users' messages in the fake, so the bot can reply to them
    and download their images and files. ``fake.events`` is one."""

    def __init__(self, fake: FakeFeishu) -> None:
        self.fake = fake

    def envelope(self, event_type: str, event: dict, *, event_id: str | None = None) -> dict:
        return {
            "schema": "2.0",
            "header": {
                "event_id": event_id or secrets.token_hex(16),
                "token": self.fake.verification_token,
                "create_time": str(int(time.time() * 1000)),
                "event_type": event_type,
                "tenant_key": self.fake.tenant_key,
                "app_id": self.fake.app_id,
            },
            "event": event,
        }

    def _mentions(self, mentioned: Sequence[FakeUser]) -> list[dict]:
        return [
            {
                "key": f"@_user_{i}",
                "id": user.ids(),
                "name": user.name,
                "tenant_key": self.fake.tenant_key,
                "mentioned_type": "bot" if user.is_bot else "user",
            }
            for i, user in enumerate(mentioned, start=1)
        ]

    def message(
        self,
        chat: FakeChat,
        sender: FakeUser,
        msg_type: str,
        content: dict,
        *,
        mentions: Sequence[FakeUser] = (),
        parent: FakeMessage | None = None,
        in_thread: bool = False,
        event_id: str | None = None,
    ) -> tuple[FakeMessage, dict]:
        """A user's message as ``im.message.receive_v1``: (the stored message, the event)."""
        message = self.fake.store_user_message(
            chat, sender, msg_type, json.dumps(content, ensure_ascii=False), parent=parent, in_thread=in_thread
        )
        message.mentions = self._mentions(mentions)
        body: dict[str, Any] = {
            "message_id": message.message_id,
            "create_time": str(message.create_time),
            "update_time": str(message.create_time),
            "chat_id": chat.chat_id,
            "chat_type": chat.chat_type,
            "message_type": msg_type,
            "content": message.content,
            "user_agent": "Mozilla/5.0 (Macintosh) Lark/7.40.0",
        }
        for key in ("root_id", "parent_id", "thread_id"):
            if getattr(message, key):
                body[key] = getattr(message, key)
        if message.mentions:
            body["mentions"] = message.mentions
        event = {
            "sender": {"sender_id": sender.ids(), "sender_type": "user", "tenant_key": self.fake.tenant_key},
            "message": body,
        }
        return message, self.envelope("im.message.receive_v1", event, event_id=event_id)

    def text(
        self,
        chat: FakeChat,
        sender: FakeUser,
        text: str,
        *,
        mentions: Sequence[FakeUser] = (),
        parent: FakeMessage | None = None,
        in_thread: bool = False,
        event_id: str | None = None,
    ) -> tuple[FakeMessage, dict]:
        """``text`` carries the placeholders ``@_user_1``… in the order of ``mentions``."""
        return self.message(
            chat,
            sender,
            "text",
            {"text": text},
            mentions=mentions,
            parent=parent,
            in_thread=in_thread,
            event_id=event_id,
        )

    def post(
        self,
        chat: FakeChat,
        sender: FakeUser,
        lines: Sequence[str],
        *,
        title: str = "",
        images: Sequence[bytes] = (),
        mentions: Sequence[FakeUser] = (),
        parent: FakeMessage | None = None,
    ) -> tuple[FakeMessage, dict]:
        """Rich text: the mentions open the first paragraph, one paragraph per line, then one per image."""
        paragraphs: list[list[dict]] = [[{"tag": "text", "text": line, "style": []}] for line in lines] or [[]]
        for i, user in reversed(list(enumerate(mentions, start=1))):
            paragraphs[0].insert(0, {"tag": "at", "user_id": f"@_user_{i}", "user_name": user.name, "style": []})
        keys = [self.fake.new_key("img") for _ in images]
        paragraphs += [[{"tag": "img", "image_key": key, "width": 800, "height": 600}] for key in keys]
        message, event = self.message(
            chat, sender, "post", {"title": title, "content": paragraphs}, mentions=mentions, parent=parent
        )
        for key, data in zip(keys, images):
            self.fake.add_resource(message, key, data, kind="image", content_type="image/png")
        return message, event

    def image(
        self,
        chat: FakeChat,
        sender: FakeUser,
        data: bytes,
        *,
        content_type: str = "image/png",
        parent: FakeMessage | None = None,
    ) -> tuple[FakeMessage, dict]:
        key = self.fake.new_key("img")
        message, event = self.message(chat, sender, "image", {"image_key": key}, parent=parent)
        self.fake.add_resource(message, key, data, kind="image", content_type=content_type)
        return message, event

    def file(
        self,
        chat: FakeChat,
        sender: FakeUser,
        data: bytes,
        file_name: str,
        *,
        content_type: str = "application/octet-stream",
        parent: FakeMessage | None = None,
    ) -> tuple[FakeMessage, dict]:
        key = self.fake.new_key("file")
        message, event = self.message(chat, sender, "file", {"file_key": key, "file_name": file_name}, parent=parent)
        self.fake.add_resource(message, key, data, kind="file", content_type=content_type, file_name=file_name)
        return message, event

    def audio(
        self, chat: FakeChat, sender: FakeUser, data: bytes = b"OggS", *, duration_ms: int = 2000
    ) -> tuple[FakeMessage, dict]:
        key = self.fake.new_key("file")
        message, event = self.message(chat, sender, "audio", {"file_key": key, "duration": duration_ms})
        self.fake.add_resource(message, key, data, kind="file", content_type="audio/opus", file_name="audio.opus")
        return message, event

    def sticker(self, chat: FakeChat, sender: FakeUser) -> tuple[FakeMessage, dict]:
        """Stickers cannot be downloaded through the message-resource API (no resource stored)."""
        return self.message(chat, sender, "sticker", {"file_key": self.fake.new_key("file")})

    def merge_forward(self, chat: FakeChat, sender: FakeUser) -> tuple[FakeMessage, dict]:
        return self.message(chat, sender, "merge_forward", {"content": MERGE_FORWARD_CONTENT})

    def bot_added(self, chat: FakeChat, operator: FakeUser) -> dict:
        chat.bot_member = True
        return self.envelope("im.chat.member.bot.added_v1", self._membership(chat, operator))

    def bot_deleted(self, chat: FakeChat, operator: FakeUser) -> dict:
        """The bot removed from ``chat``: from now on the fake refuses its writes there (230002)."""
        chat.bot_member = False
        return self.envelope("im.chat.member.bot.deleted_v1", self._membership(chat, operator))

    def _membership(self, chat: FakeChat, operator: FakeUser) -> dict:
        return {
            "chat_id": chat.chat_id,
            "operator_id": operator.ids(),
            "external": False,
            "operator_tenant_key": self.fake.tenant_key,
            "name": chat.name,
            "i18n_names": {"zh_cn": chat.name, "en_us": chat.name},
        }

    def card_action(
        self,
        message: FakeMessage,
        operator: FakeUser,
        value: dict,
        *,
        tag: str = "button",
        name: str | None = None,
        option: str | None = None,
    ) -> dict:
        """``card.action.trigger``: someone pressed a button (``value`` = the button's value) or
        chose ``option`` in a select (``tag`` "select_static")."""
        action: dict[str, Any] = {"value": value, "tag": tag}
        if name:
            action["name"] = name
        if option is not None:
            action["option"] = option
        event = {
            "operator": {"tenant_key": self.fake.tenant_key, **operator.ids()},
            "token": f"c-{secrets.token_hex(20)}",
            "action": action,
            "host": "im_message",
            "delivery_type": "url_callback",
            "context": {"open_message_id": message.message_id, "open_chat_id": message.chat_id},
        }
        return self.envelope("card.action.trigger", event)

    def url_verification(self, *, token: str | None = None) -> dict:
        return {
            "challenge": secrets.token_hex(16),
            "token": token or self.fake.verification_token,
            "type": "url_verification",
        }
