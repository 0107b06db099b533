"""Updates python-telegram-bot cannot parse: acknowledged, logged once, dropped.

Telegram redelivers a webhook update answered with non-2xx for ever, and a getUpdates batch
PTB fails to parse (``Update.de_list`` raises) is fetched again and again with the same
offset. Both paths parse each update on its own here; a bad one becomes one log line and,
in polling, an empty ``Update`` carrying only its id so the offset still moves past it.
"""

from __future__ import annotations

import datetime as dtm
import logging
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import httpx
from telegram import Update
from telegram.ext import ExtBot
from telegram.request import BaseRequest, HTTPXRequest
from telegram.warnings import PTBUserWarning

if TYPE_CHECKING:
    from telegram import Bot

    from adapters.telegram.settings import TelegramSettings

log = logging.getLogger(__name__)
POLL_READ_TIMEOUT = 5.0  # HTTPXRequest's default read timeout, on top of the long-poll wait

# Bot.do_api_request warns when asked for a method PTB also wraps; here the raw call is the point.
warnings.filterwarnings("ignore", message=r"Please use 'Bot\.getUpdates'", category=PTBUserWarning)


def _describe(data: object) -> str:
    """What a bad update was, for the log: its id and top-level keys, never its content."""
    if not isinstance(data, dict):
        return f"a {type(data).__name__}"
    keys = ",".join(sorted(str(k) for k in data)[:8])
    return f"update {data.get('update_id')!r} (keys: {keys})"


def parse_update(data: object, bot: Bot) -> Update | None:
    """``Update.de_json`` that never raises: None (and one log line) for a shape PTB refuses."""
    try:
        if not isinstance(data, dict):
            raise TypeError("not a JSON object")
        update = Update.de_json(data, bot)
    except Exception as exc:  # noqa: BLE001 - any parse failure means the same: drop it
        log.warning(
            "telegram: dropped %s that could not be parsed: %s: %s", _describe(data), type(exc).__name__, str(exc)[:200]
        )
        return None
    if update is None:
        log.warning("telegram: dropped an empty update")
        return None
    message = update.effective_message
    if message is not None and getattr(message, "chat", None) is None:
        # PTB accepts a message without a chat; every handler needs one.
        log.warning("telegram: dropped %s: its message has no chat", _describe(data))
        return None
    return update


def extra_of(update: Update, name: str) -> object | None:
    """A top-level field of a raw update that PTB does not know (newer than its Bot API),
    as Telegram sent it: PTB keeps such fields in ``api_kwargs``."""
    return update.api_kwargs.get(name)


class TolerantBot(ExtBot):
    """An ExtBot whose ``get_updates`` parses each update on its own (see module docstring)."""

    async def get_updates(
        self,
        offset: int | None = None,
        limit: int | None = None,
        timeout: int | float | dtm.timedelta | None = None,
        allowed_updates: Sequence[str] | None = None,
        *,
        read_timeout: Any = BaseRequest.DEFAULT_NONE,
        write_timeout: Any = BaseRequest.DEFAULT_NONE,
        connect_timeout: Any = BaseRequest.DEFAULT_NONE,
        pool_timeout: Any = BaseRequest.DEFAULT_NONE,
        api_kwargs: dict | None = None,
    ) -> tuple[Update, ...]:
        seconds = timeout.total_seconds() if isinstance(timeout, dtm.timedelta) else (timeout or 0)
        kwargs = {
            "offset": offset,
            "limit": limit,
            "timeout": timeout,
            "allowed_updates": allowed_updates,
            **(api_kwargs or {}),
        }
        # Long polling: the read must outlast the server's wait, as PTB's own get_updates does.
        raw = await self.do_api_request(
            "getUpdates",
            api_kwargs={k: v for k, v in kwargs.items() if v is not None},
            read_timeout=(read_timeout or POLL_READ_TIMEOUT) + float(seconds),
            write_timeout=write_timeout,
            connect_timeout=connect_timeout,
            pool_timeout=pool_timeout,
        )
        updates: list[Update] = []
        for item in raw if isinstance(raw, list) else []:
            update = parse_update(item, self)
            if update is None:
                update_id = item.get("update_id") if isinstance(item, dict) else None
                if not isinstance(update_id, int):
                    continue
                update = Update(update_id)  # nothing to handle, but the offset confirms it
            self.insert_callback_data(update)
            updates.append(update)
        return tuple(updates)


def tolerant_bot(settings: TelegramSettings) -> TolerantBot:
    """The adapter's bot, with the connection pools ``Application.builder()`` would give it."""
    assert settings.bot_token is not None
    api = settings.api_url
    # One TLS context (its CA certificates take about a megabyte) for both clients, as each
    # would otherwise load its own.
    tls = {"verify": httpx.create_ssl_context()}
    return TolerantBot(
        settings.bot_token.get_secret_value(),
        base_url=f"{api}/bot",
        base_file_url=f"{api}/file/bot",
        request=HTTPXRequest(connection_pool_size=64, httpx_kwargs=tls),
        get_updates_request=HTTPXRequest(connection_pool_size=1, read_timeout=POLL_READ_TIMEOUT, httpx_kwargs=tls),
    )
