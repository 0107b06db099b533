"""The reply surface for one Slack thread: post, chat.update, status, native streams.

Every call carries its priority (``bot.ratelimits.budgets.Priority``). A new answer's first text is
created by whichever frees first of the workspace's chat.startStream budget (Tier 2) and
the channel's chat.postMessage budget (about one a second), in arrival order; an answer
created by a post goes on with chat.update. A workspace whose startStream is refused is
remembered and not asked again. Writes that only show progress are skipped when their
budget has no room (the next one, or the final one, carries the whole text); the status is
cosmetic (dropped without spare capacity, a 429 on it never retried); first texts and
final writes always wait for their budget. A file (an exported card) is uploaded the way
Slack wants it since files.upload was retired: files.getUploadURLExternal, the bytes
posted to the URL it gives, files.completeUploadExternal sharing it in the thread.

Tool progress (``show_steps``) goes into the answer's native stream as ``task_update``
chunks, a timeline above the answer's text: the steps may start the stream (cosmetic: only
with spare startStream capacity) and the answer then continues in it. Updates without room
are kept and ride along with the next text append or the stopStream. Without a native
stream the core shows the steps on the status line (assistant.threads.setStatus). A turn
whose first steps come several at once (tools called together) is drawn as a plan
(``task_display_mode`` plan, a ``plan_update`` title that counts them off) instead.

A native stream lives about five minutes on Slack's side. An answer still writing after
``stream_max_age`` stops its stream and goes on with chat.update in the same message; one
that Slack expired first (``message_not_in_streaming_state``) does the same, so a slow answer
stays one message with its buttons; only text past one message's length continues in new
ones (the core's pages).

A notice meant for one person (``Write.audience``: a refusal, a reached quota, /help) is
shown to that person alone with chat.postEphemeral in a channel or its thread, and posted
as usual when Slack refuses that (the person left the channel) or in a DM.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
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
    Step,
    StreamUnavailable,
    SurfaceGone,
    SurfaceLimits,
    Write,
    WriteFailed,
    utf16_len,
)

log = logging.getLogger(__name__)
UPLOAD_TIMEOUT = 60.0  # seconds for posting a file's bytes to Slack's upload URL

# startStream errors that concern one channel or thread, not the workspace's permission.
_LOCAL_STREAM_ERRORS = {
    "channel_not_found",
    "not_in_channel",
    "is_archived",
    "thread_not_found",
    "message_not_found",
    "invalid_thread_ts",
    "msg_too_long",
}
# Errors that say the bot can't write in the channel any more (removed, archived).
_CHANNEL_GONE = {"not_in_channel", "channel_not_found", "is_archived"}
# chat.update errors that no stopStream can fix (any other may mean the message still streams).
_GONE = {
    "message_not_found",
    "channel_not_found",
    "not_in_channel",
    "is_archived",
    "msg_too_long",
    "invalid_blocks",
    "no_text",
}
# A step's state as a task_update status (slack_sdk 3.48 TaskUpdateChunk).
_TASK_STATUS = {"pending": "pending", "running": "in_progress", "done": "complete", "error": "error"}
EXPIRED = "message_not_in_streaming_state"
EPHEMERAL = "ephemeral:"  # a MessageRef id prefix: a message only one person sees (not editable)
PLAN_FROM = 2  # steps known at once that make a plan rather than a timeline


def task_chunk(step: Step) -> dict[str, Any]:
    chunk: dict[str, Any] = {
        "type": "task_update",
        "id": step.id[:64],
        "title": step.title[:120],
        "status": _TASK_STATUS[step.state],
    }
    if step.detail:
        chunk["details"] = step.detail[:200]
    return chunk


def plan_title(steps: Sequence[Step]) -> str:
    """The plan's heading, counting its steps off as they finish."""
    done = sum(1 for s in steps if s.finished)
    failed = sum(1 for s in steps if s.state == "error")
    if done < len(steps):
        return f"Working through {len(steps)} steps ({done} done)"
    return f"{len(steps)} steps done" + (f", {failed} failed" if failed else "")


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
    personal: bool = False  # every message for ``user`` alone (a message shortcut's answer)

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
    session: aiohttp.ClientSession | None = None  # file uploads (None: files are declined)


class SlackSurface(ReplySurface):
    def __init__(self, outlet: SlackOutlet, thread: SlackThread) -> None:
        self.rt = outlet
        self.thread = thread
        self.limits = SurfaceLimits(max_chars=render.MAX_CHARS, edit_interval=outlet.edit_interval, measure=utf16_len)
        self._status = ""
        self._streams: dict[int, SlackStream] = {}  # each turn's current native stream
        self._finished: set[int] = set()  # turns whose answer is written: no late steps

    @property
    def api(self) -> SlackApi:
        return self.rt.api

    async def post(self, text: str, write: Write, *, acquired: bool = False) -> MessageRef:
        t = self.thread
        audience = write.audience or (t.user if t.personal else "")
        if audience and not t.is_dm and not acquired:
            shown = await self._ephemeral(text, write, audience)
            if shown is not None:
                return shown
        stream = self._streams.get(write.turn_id) if write.turn_id else None
        if stream is not None and not stream.used and stream.ts and not stream.ended:
            # The turn's steps opened a stream and no text followed: the answer ends in it.
            stream.used = True
            return await stream.close(text, write)
        if write.final and write.turn_id:
            self.finished(write.turn_id)
        try:
            resp = await self.api.call(
                t.team,
                "chat.postMessage",
                channel=t.channel,
                thread_ts=t.thread_ts,
                priority=Priority.TEXT,
                acquired=acquired,
                **render.payload(text, write).kwargs(),
            )
        except SlackApiError as exc:
            raise _failure("chat.postMessage", exc) from exc
        return MessageRef(str(resp["ts"]))

    async def _ephemeral(self, text: str, write: Write, audience: str) -> MessageRef | None:
        """Show ``text`` to ``audience`` alone, in this thread; None when Slack refuses
        (not a member of the channel, say): the caller posts it for everyone instead."""
        t = self.thread
        try:
            resp = await self.api.call(
                t.team,
                "chat.postEphemeral",
                channel=t.channel,
                user=audience,
                thread_ts=t.thread_ts,
                priority=Priority.TEXT,
                **render.payload(text, write).kwargs(),
            )
        except SlackApiError as exc:
            if error_code(exc) in _CHANNEL_GONE:
                raise _failure("chat.postEphemeral", exc) from exc
            log.info("slack: ephemeral notice refused in %s (%s); posting it", t.channel, error_code(exc))
            return None
        return MessageRef(EPHEMERAL + str(resp.get("message_ts") or ""))

    async def edit(self, ref: MessageRef, text: str, write: Write) -> MessageRef:
        t = self.thread
        if ref.id.startswith(EPHEMERAL):  # Slack can't edit an ephemeral message: show it anew
            return await self.post(text, write)
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
            await self.api.call(
                t.team,
                "assistant.threads.setStatus",
                channel_id=t.channel,
                thread_ts=t.thread_ts,
                status=status,
                priority=Priority.COSMETIC,
            )
            self._status = status
        except Dropped:
            log.debug("setStatus dropped in %s: no spare capacity", t.channel)
        except (SlackApiError, RateLimited) as exc:
            log.info("setStatus failed in %s: %s", t.channel, exc)

    async def send_file(self, name: str, data: bytes, mime: str, caption: str = "") -> MessageRef | None:
        t, session = self.thread, self.rt.session
        if session is None:
            return None
        try:
            upload = await self.api.call_retrying(
                t.team, "files.getUploadURLExternal", filename=name, length=len(data), priority=Priority.TEXT
            )
            async with session.post(
                upload["upload_url"], data=data, timeout=aiohttp.ClientTimeout(total=UPLOAD_TIMEOUT)
            ) as resp:
                if resp.status != 200:
                    raise WriteFailed(f"file upload: HTTP {resp.status}")
            await self.api.call_retrying(
                t.team,
                "files.completeUploadExternal",
                channel_id=t.channel,
                thread_ts=t.thread_ts,
                initial_comment=caption or None,
                files=[{"id": upload["file_id"], "title": name}],
                priority=Priority.TEXT,
            )
        except SlackApiError as exc:
            raise _failure("file upload", exc) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise WriteFailed(f"file upload: {exc}") from exc
        return MessageRef(str(upload["file_id"]))

    def _streams_allowed(self) -> bool:
        return self.rt.native_streaming and self.thread.team not in self.rt.streaming_refused

    async def open_stream(self, turn_id: int) -> NativeStream | None:
        if not self._streams_allowed():
            return None
        stream = self._streams.get(turn_id)
        if stream is None or stream.used or stream.ended:  # else: started by the turn's steps
            stream = self._streams[turn_id] = SlackStream(self, turn_id)
        stream.used = True
        return stream

    async def show_steps(self, turn_id: int, steps: Sequence[Step]) -> bool:
        """task_update chunks in the turn's native stream (started here if the answer has
        none yet); False, for the status line, where there is no stream to draw in."""
        if turn_id in self._finished:
            return True  # a late update after the answer was written: nothing more to show
        if not self._streams_allowed():
            return False
        stream = self._streams.get(turn_id)
        if stream is None or stream.ended:
            stream = self._streams[turn_id] = SlackStream(self, turn_id)
        return await stream.show_tasks(steps)

    def finished(self, turn_id: int) -> None:
        self._finished.add(turn_id)

    @property
    def finished_turns(self) -> set[int]:
        return self._finished


class SlackStream:
    """One native stream = one Slack message, from startStream to stopStream."""

    def __init__(self, surface: SlackSurface, turn_id: int) -> None:
        self.surface = surface
        self.turn_id = turn_id
        rt = surface.rt
        # No max_age for the core: an old stream goes on as a message (``_to_message``).
        self.limits = SurfaceLimits(max_chars=render.MAX_CHARS, edit_interval=rt.stream_interval, measure=utf16_len)
        self.max_age = rt.stream_max_age
        self.opened = 0.0  # when Slack started the stream (monotonic)
        self.ts: str | None = None
        self.appended = ""  # what Slack holds
        self.claimed = ""  # what the core believes is shown (an update may have been skipped)
        self.posted: MessageRef | None = None  # the message was created by a post, not a stream
        self.used = False  # the core's writer took it (steps may start a stream before that)
        self.ended = False
        self._tasks_sent: dict[str, dict[str, Any]] = {}  # task id → the chunk Slack shows
        self._tasks_due: dict[str, dict[str, Any]] = {}  # task id → a newer chunk not yet sent
        self.plan = False  # drawn as a plan (task_display_mode plan) rather than a timeline
        self._plan_sent = ""  # the plan title Slack shows
        self._plan_due = ""  # a newer one not yet sent

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
        first = await api.first_free(
            t.team, ("chat.startStream", None), ("chat.postMessage", t.channel), priority=Priority.TEXT
        )
        if first == 1:
            self.posted = await self.surface.post(text, Write(self.turn_id), acquired=True)
            self.ts, self.appended = self.posted.id, text
            return
        kwargs = {**self._where(), "markdown_text": text}
        try:
            resp = await api.call(t.team, "chat.startStream", priority=Priority.TEXT, acquired=True, **kwargs)
        except SlackApiError as exc:
            self._refused(exc)
            raise StreamUnavailable(f"chat.startStream: {error_code(exc)}") from exc
        self.ts = str(resp["ts"])
        self.opened = time.monotonic()
        self.appended = text

    def _where(self) -> dict[str, Any]:
        t = self._t
        kwargs: dict[str, Any] = {"channel": t.channel, "thread_ts": t.thread_ts}
        if t.user and not t.is_dm:
            kwargs.update(recipient_user_id=t.user, recipient_team_id=t.user_team or t.team)
        return kwargs

    def _refused(self, exc: SlackApiError) -> None:
        """startStream failed: a channel gone raises; a workspace without streams is remembered."""
        t, code = self._t, error_code(exc)
        self.ended = True
        if code in _CHANNEL_GONE:
            raise _failure("chat.startStream", exc) from exc
        if code not in _LOCAL_STREAM_ERRORS:
            log.warning("native streaming refused in workspace %s (%s); using chat.update", t.team, code)
            self.surface.rt.streaming_refused.add(t.team)

    # --- tool steps as task_update chunks ---
    async def show_tasks(self, steps: Sequence[Step]) -> bool:
        for step in steps:
            chunk = task_chunk(step)
            if self._tasks_sent.get(chunk["id"]) != chunk:
                self._tasks_due[chunk["id"]] = chunk
        if self.ts is None and len(steps) >= PLAN_FROM:
            self.plan = True  # several steps known from the start: a plan to tick off
        if self.plan:
            title = plan_title(steps)
            self._plan_due = title if title != self._plan_sent else ""
        if self.posted is not None or self.ended:
            return False
        if not self._tasks_due and not self._plan_due:
            return True
        t, api = self._t, self.surface.api
        due = self._due_chunks()
        try:
            if self.ts is None:  # the answer has no message yet: the steps start its stream
                resp = await api.call(
                    t.team,
                    "chat.startStream",
                    priority=Priority.COSMETIC,
                    task_display_mode="plan" if self.plan else "timeline",
                    chunks=due,
                    **self._where(),
                )
                self.ts = str(resp["ts"])
                self.opened = time.monotonic()
                if self.turn_id in self.surface.finished_turns and not self.used:
                    # The answer was written meanwhile, elsewhere: end this stream at once.
                    self.ended = True
                    await api.call_retrying(t.team, "chat.stopStream", channel=t.channel, ts=self.ts)
                    return True
            elif api.has_room(t.team, "chat.appendStream"):
                await api.call(
                    t.team, "chat.appendStream", channel=t.channel, ts=self.ts, chunks=due, priority=Priority.COSMETIC
                )
            else:
                return True  # they go with the next append or the stop
        except Dropped:
            return self.ts is not None  # no spare capacity: a stream shows them later; else the status line
        except RateLimited:
            return self.ts is not None
        except SlackApiError as exc:
            if self.ts is None:
                self._refused(exc)
                return False
            log.info("slack: task update refused in %s: %s", t.channel, error_code(exc))
            return error_code(exc) != EXPIRED  # expired: the steps go to the status line
        self._sent(due)
        return True

    def _due_chunks(self) -> list[dict[str, Any]]:
        plan = [{"type": "plan_update", "title": self._plan_due}] if self._plan_due else []
        return [*plan, *self._tasks_due.values()]

    def _sent(self, chunks: list[dict[str, Any]]) -> None:
        for chunk in chunks:
            if chunk["type"] == "plan_update":
                self._plan_sent = chunk["title"]
                if self._plan_due == chunk["title"]:
                    self._plan_due = ""
                continue
            self._tasks_sent[chunk["id"]] = chunk
            if self._tasks_due.get(chunk["id"]) == chunk:
                del self._tasks_due[chunk["id"]]

    def _with_tasks(self, text: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """A stream call's content: the text alone, or (with task updates due) all as chunks."""
        due = self._due_chunks()
        if not due:
            return ({"markdown_text": text} if text else {}), []
        text_chunk = [{"type": "markdown_text", "text": text}] if text else []
        return {"chunks": [*due, *text_chunk]}, due

    async def update(self, text: str, write: Write) -> None:  # a stream carries no buttons (Stop: the shortcut)
        if self.ts is None:
            await self._start(text)
            self.claimed = text
            return
        if self.posted is None and time.monotonic() - self.opened > self.max_age:
            await self._to_message(stop=True)  # before Slack expires it
        if self.posted is not None:  # created by a post, or an old stream: edited like a post,
            self.posted = await self.surface.edit(self.posted, text, write)  # its Stop button too
            self.claimed = text
            return
        delta = text[len(self.appended) :] if text.startswith(self.appended) else None
        if delta is None:
            raise StreamUnavailable("stream text is append-only")
        first = not self.appended  # the stream was started by tool steps: this is the first text
        if delta and (first or self.surface.api.has_room(self._t.team, "chat.appendStream")):
            await self._append(delta, text, write, Priority.TEXT if first else Priority.EDIT)
        self.claimed = text

    async def _append(self, delta: str, text: str, write: Write, priority: Priority = Priority.EDIT) -> None:
        t = self._t
        content, tasks = self._with_tasks(delta)
        try:
            await self.surface.api.call(
                t.team, "chat.appendStream", channel=t.channel, ts=self.ts, priority=priority, **content
            )
            self._sent(tasks)
        except SlackApiError as exc:
            if error_code(exc) in _CHANNEL_GONE:
                raise _failure("chat.appendStream", exc) from exc
            if error_code(exc) == EXPIRED:  # Slack ended it (~5 min): the message goes on as a post
                await self._to_message(stop=False)
                self.posted = await self.surface.edit(self.posted or MessageRef(str(self.ts)), text, write)
                return
            # Over length: the message keeps what the core last saw, and the core continues
            # in a new message.
            await self._settle(self.claimed)
            raise StreamUnavailable(f"chat.appendStream: {error_code(exc)}") from exc
        self.appended += delta

    async def _to_message(self, *, stop: bool) -> None:
        """The stream's message goes on as an ordinary one, written with chat.update (the whole
        text each time, its buttons at the end). ``stop``: end the stream first (Slack has not)."""
        t = self._t
        if stop:
            content, tasks = self._with_tasks("")  # steps' last states go with the stop
            try:
                await self.surface.api.call_retrying(
                    t.team, "chat.stopStream", channel=t.channel, ts=self.ts, priority=Priority.EDIT, **content
                )
                self._sent(tasks)
            except SlackApiError as exc:
                log.info("slack: stopping an old stream in %s: %s", t.channel, error_code(exc))
        log.info("slack: the stream in %s %s; going on with chat.update", t.channel, "is old" if stop else "expired")
        self.posted = MessageRef(str(self.ts))

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
            await self.surface.api.call_retrying(
                t.team, "chat.update", channel=t.channel, ts=self.ts, markdown_text=text
            )
            self.appended = text
        except (SlackApiError, RateLimited) as exc:
            log.warning("could not settle an ended stream in %s: %s", t.channel, exc)

    async def close(self, text: str, write: Write) -> MessageRef:
        t, api = self._t, self.surface.api
        self.ended = True
        if write.final:
            self.surface.finished(self.turn_id)
        if self.ts is None:  # nothing streamed yet: one plain post is cheaper than start+stop
            return await self.surface.post(text, write)
        if self.posted is not None:
            return await self.surface.edit(self.posted, text, write)
        blocks = controls.blocks(write.controls)
        # The final text rewrites the start (rare): stop, then replace it whole.
        rewrites = not text.startswith(self.appended)
        # Task updates still due (their final states) go with the stop.
        tail, tasks = self._with_tasks("" if rewrites or text == self.appended else text[len(self.appended) :])
        try:
            await api.call(
                t.team,
                "chat.stopStream",
                channel=t.channel,
                ts=self.ts,
                blocks=blocks or None,
                priority=Priority.FINAL,
                **tail,
            )
            self._sent(tasks)
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
            await self.surface.api.call(
                t.team,
                "chat.update",
                channel=t.channel,
                ts=self.ts,
                priority=Priority.FINAL,
                **render.payload(text, write).kwargs(),
            )
        except SlackApiError as exc:
            raise _failure("chat.update after stream", exc) from exc
        self.appended = text
