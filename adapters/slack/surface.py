"""The reply surface for one Slack thread: post, chat.update, status, native streams.

Every call carries its priority (``bot.ratelimits.budgets.Priority``). A new answer's first text is
created by whichever frees first of the workspace's chat.startStream budget (Tier 2) and
the channel's chat.postMessage budget (about one a second), in arrival order; an answer
created by a post goes on with chat.update. A workspace whose startStream is refused is
remembered and not asked again. Writes that only show progress are skipped when their
budget has no room (the next one, or the final one, carries the whole text); the status is
cosmetic (dropped without spare capacity, a 429 on it never retried); first texts and
final writes always wait for their budget.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.errors import SlackApiError

from adapters.slack import controls, render
from adapters.slack.api import SlackApi, error_code
from bot.platform import (
    Dropped,
    MessageRef,
    NativeStream,
    Priority,
    RateLimited,
    ReplySurface,
    StreamUnavailable,
    SurfaceGone,
    SurfaceLimits,
    Write,
    WriteFailed,
    utf16_len,
)

log = logging.getLogger(__name__)

# startStream errors that concern one channel or thread, not the workspace's permission.
_LOCAL_STREAM_ERRORS = {"channel_not_found", "not_in_channel", "is_archived", "thread_not_found",
                        "message_not_found", "invalid_thread_ts", "msg_too_long"}
# Errors that say the bot can't write in the channel any more (removed, archived).
_CHANNEL_GONE = {"not_in_channel", "channel_not_found", "is_archived"}
# chat.update errors that no stopStream can fix (any other may mean the message still streams).
_GONE = {"message_not_found", "channel_not_found", "not_in_channel", "is_archived", "msg_too_long",
         "invalid_blocks", "no_text"}


def _failure(method: str, exc: SlackApiError) -> WriteFailed:
    code = error_code(exc)
    return (SurfaceGone if code in _CHANNEL_GONE else WriteFailed)(f"{method}: {code}")


@dataclass(slots=True)
class SlackThread:
    """Where an answer goes and whom it is for."""

    team: str
    channel: str
    thread_ts: str
    user: str = ""  # the asker: recipient of a native stream in a channel
    user_team: str = ""

    @property
    def is_dm(self) -> bool:
        return self.channel.startswith("D")


@dataclass
class SlackOutlet:
    """The app's one outlet into Slack: what every surface of one adapter shares."""

    api: SlackApi
    edit_interval: float = 1.5
    stream_interval: float = 1.0
    stream_max_age: float = 270.0
    native_streaming: bool = True
    streaming_refused: set[str] = field(default_factory=set)  # team ids


class SlackSurface(ReplySurface):
    def __init__(self, outlet: SlackOutlet, thread: SlackThread) -> None:
        self.rt = outlet
        self.thread = thread
        self.limits = SurfaceLimits(max_chars=render.MAX_CHARS, edit_interval=outlet.edit_interval,
                                    measure=utf16_len)
        self._status = ""

    @property
    def api(self) -> SlackApi:
        return self.rt.api

    async def post(self, text: str, write: Write, *, acquired: bool = False) -> MessageRef:
        t = self.thread
        try:
            resp = await self.api.call(t.team, "chat.postMessage", channel=t.channel, thread_ts=t.thread_ts,
                                       priority=Priority.TEXT, acquired=acquired,
                                       **render.payload(text, write).kwargs())
        except SlackApiError as exc:
            raise _failure("chat.postMessage", exc) from exc
        return MessageRef(str(resp["ts"]))

    async def edit(self, ref: MessageRef, text: str, write: Write) -> MessageRef:
        t = self.thread
        if not write.final and not self.api.has_room(t.team, "chat.update"):
            return ref  # progress only: the next write carries everything
        content = render.payload(text, write).kwargs()
        priority = Priority.FINAL if write.final else Priority.EDIT
        try:
            await self.api.call(t.team, "chat.update", channel=t.channel, ts=ref.id, priority=priority, **content)
            return ref
        except SlackApiError as exc:
            if not write.final or error_code(exc) in _GONE:
                raise _failure("chat.update", exc) from exc
        # A native stream still open on Slack's side (its writer died) can't be updated:
        # stop it, then write the final text.
        try:
            await self.api.call_retrying(t.team, "chat.stopStream", channel=t.channel, ts=ref.id)
        except SlackApiError as exc:
            log.info("slack: stopStream before a final update: %s", error_code(exc))
        try:
            await self.api.call_retrying(t.team, "chat.update", channel=t.channel, ts=ref.id, **content)
        except SlackApiError as exc:
            raise _failure("chat.update", exc) from exc
        return ref

    async def set_status(self, status: str) -> None:
        """Cosmetic: sent only with spare capacity; dropped (and a 429 on it not retried)
        otherwise. Slack clears a status itself when the answer is posted."""
        t = self.thread
        if status == self._status:
            return
        try:
            await self.api.call(t.team, "assistant.threads.setStatus", channel_id=t.channel,
                                thread_ts=t.thread_ts, status=status, priority=Priority.COSMETIC)
            self._status = status
        except Dropped:
            log.debug("setStatus dropped in %s: no spare capacity", t.channel)
        except (SlackApiError, RateLimited) as exc:
            log.info("setStatus failed in %s: %s", t.channel, exc)

    async def open_stream(self, turn_id: int) -> NativeStream | None:
        t = self.thread
        if not self.rt.native_streaming or t.team in self.rt.streaming_refused:
            return None
        return SlackStream(self, turn_id)


class SlackStream:
    """One native stream = one Slack message, from startStream to stopStream."""

    def __init__(self, surface: SlackSurface, turn_id: int) -> None:
        self.surface = surface
        self.turn_id = turn_id
        rt = surface.rt
        self.limits = SurfaceLimits(max_chars=render.MAX_CHARS, edit_interval=rt.stream_interval,
                                    measure=utf16_len, max_age=rt.stream_max_age)
        self.ts: str | None = None
        self.appended = ""  # what Slack holds
        self.claimed = ""  # what the core believes is shown (an update may have been skipped)
        self.posted: MessageRef | None = None  # the message was created by a post, not a stream

    @property
    def ref(self) -> MessageRef | None:
        return MessageRef(self.ts) if self.ts else None

    @property
    def _t(self):  # noqa: ANN202
        return self.surface.thread

    async def _start(self, text: str) -> None:
        t, api = self._t, self.surface.api
        # The scarce call that creates the message: whichever of the workspace's startStream
        # and the channel's postMessage frees first, in arrival order.
        first = await api.first_free(t.team, ("chat.startStream", None), ("chat.postMessage", t.channel),
                                     priority=Priority.TEXT)
        if first == 1:
            self.posted = await self.surface.post(text, Write(self.turn_id), acquired=True)
            self.ts, self.appended = self.posted.id, text
            return
        kwargs = {"channel": t.channel, "thread_ts": t.thread_ts, "markdown_text": text}
        if t.user and not t.is_dm:
            kwargs.update(recipient_user_id=t.user, recipient_team_id=t.user_team or t.team)
        try:
            resp = await api.call(t.team, "chat.startStream", priority=Priority.TEXT, acquired=True, **kwargs)
        except SlackApiError as exc:
            code = error_code(exc)
            if code in _CHANNEL_GONE:
                raise _failure("chat.startStream", exc) from exc
            if code not in _LOCAL_STREAM_ERRORS:
                log.warning("native streaming refused in workspace %s (%s); using chat.update", t.team, code)
                self.surface.rt.streaming_refused.add(t.team)
            raise StreamUnavailable(f"chat.startStream: {code}") from exc
        self.ts = str(resp["ts"])
        self.appended = text

    async def update(self, text: str) -> None:
        if self.ts is None:
            await self._start(text)
            self.claimed = text
            return
        if self.posted is not None:  # created by a post: edited like one
            self.posted = await self.surface.edit(self.posted, text, Write(self.turn_id))
            self.claimed = text
            return
        delta = text[len(self.appended):] if text.startswith(self.appended) else None
        if delta is None:
            raise StreamUnavailable("stream text is append-only")
        if delta and self.surface.api.has_room(self._t.team, "chat.appendStream"):
            await self._append(delta, text)
        self.claimed = text

    async def _append(self, delta: str, text: str) -> None:
        t = self._t
        try:
            await self.surface.api.call(t.team, "chat.appendStream", channel=t.channel, ts=self.ts,
                                        markdown_text=delta, priority=Priority.EDIT)
        except SlackApiError as exc:
            if error_code(exc) in _CHANNEL_GONE:
                raise _failure("chat.appendStream", exc) from exc
            # Expired (~5 min) or over length: the message keeps what the core last saw, and
            # the core continues in a new message.
            await self._settle(self.claimed)
            raise StreamUnavailable(f"chat.appendStream: {error_code(exc)}") from exc
        self.appended += delta

    async def _settle(self, text: str) -> None:
        """Make an ended stream's message show ``text`` (it may lack skipped appends)."""
        if text == self.appended or not text:
            return
        t = self._t
        try:
            await self.surface.api.call_retrying(t.team, "chat.stopStream", channel=t.channel, ts=self.ts)
        except (SlackApiError, RateLimited):
            pass  # already ended
        try:
            await self.surface.api.call_retrying(t.team, "chat.update", channel=t.channel, ts=self.ts,
                                                 markdown_text=text)
            self.appended = text
        except (SlackApiError, RateLimited) as exc:
            log.warning("could not settle an ended stream in %s: %s", t.channel, exc)

    async def close(self, text: str, write: Write) -> MessageRef:
        t, api = self._t, self.surface.api
        if self.ts is None:  # nothing streamed yet: one plain post is cheaper than start+stop
            return await self.surface.post(text, write)
        if self.posted is not None:
            return await self.surface.edit(self.posted, text, write)
        blocks = controls.blocks(write.controls)
        # The final text rewrites the start (rare): stop, then replace it whole.
        rewrites = not text.startswith(self.appended)
        tail: dict[str, Any] = {} if rewrites or text == self.appended else {"markdown_text": text[len(self.appended):]}
        try:
            await api.call(t.team, "chat.stopStream", channel=t.channel, ts=self.ts,
                           blocks=blocks or None, priority=Priority.FINAL, **tail)
        except SlackApiError as exc:
            code = error_code(exc)
            if code not in ("message_not_in_streaming_state", "msg_too_long"):
                raise _failure("chat.stopStream", exc) from exc
            if code == "msg_too_long":
                try:
                    await api.call_retrying(t.team, "chat.stopStream", channel=t.channel, ts=self.ts)
                except (SlackApiError, RateLimited):
                    pass
            await self._replace(text, write)
            return MessageRef(self.ts)
        if rewrites:
            await self._replace(text, write)
        self.appended = text
        return MessageRef(self.ts)

    async def _replace(self, text: str, write: Write) -> None:
        """The stream ended without our final text: write it with chat.update."""
        t = self._t
        try:
            await self.surface.api.call(t.team, "chat.update", channel=t.channel, ts=self.ts,
                                        priority=Priority.FINAL, **render.payload(text, write).kwargs())
        except SlackApiError as exc:
            raise _failure("chat.update after stream", exc) from exc
        self.appended = text
