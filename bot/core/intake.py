"""The core's side of the one door: ``PlatformInbox`` implements ``bot.platform.Inbox``
for one platform, so every adapter takes events in the same order:

place in line (before any await) → durable dedupe → access (admins, the platform's
allowlist, blocked users) → ``build`` (downloads happen only now) → stored in line →
answered; every step in a task the core tracks, what fails logged. With its place in line
each message takes its place in a burst (``bot.core.bursts``): a file without text and the
same person's text right after it (or before it) become one stored message, one turn.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from bot.core.bursts import Slot
from bot.core.order import Ticket
from bot.core.service import ChatService
from bot.platform.base import Admission
from bot.platform.controls import Click
from bot.platform.inbox import Acknowledge, Arrival, Build, CommandInfo, Membership, Moved, Notice, Surfaces
from bot.platform.messages import ConversationKey, IncomingMessage
from bot.platform.surface import Ending, ReplySurface
from bot.ratelimits.counters import Counters, counters_for

log = logging.getLogger(__name__)

Allowlist = Callable[[str, str, str], Admission]  # (workspace, chat, user) → verdict


class PlatformInbox:
    """One platform's door into ``ChatService``."""

    def __init__(self, service: ChatService, platform: str, allowlist: Allowlist) -> None:
        self._service = service
        self._platform = platform
        self._allowlist = allowlist

    @property
    def platform(self) -> str:
        return self._platform

    @property
    def time_scale(self) -> float:
        return self._service.settings.platform_time_scale

    @property
    def poll_interval(self) -> float:
        return self._service.settings.sweep_interval

    @property
    def commands(self) -> Sequence[CommandInfo]:
        return self._service.commands.infos

    def unknown_command(self, name: str) -> str:
        return self._service.commands.unknown_text(name.lstrip("/"))

    async def complete(self, key: ConversationKey, command: str, args: str) -> list[str]:
        return await self._service.commands.complete(key, command.lstrip("/").lower(), args)

    # --- events ---
    def receive(self, arrival: Arrival, build: Build) -> asyncio.Task[None]:
        ticket = self._service.arrive(arrival.key)  # before any await: arrival order
        burst = self._service.arrive_burst(arrival.key, arrival.sender.id)
        return self._service.track(
            self._receive(arrival, build, ticket, burst),
            name=f"{self._platform} event {arrival.event_id or arrival.key}",
        )

    async def _receive(self, arrival: Arrival, build: Build, ticket: Ticket | None, burst: Slot | None) -> None:
        service = self._service
        try:
            if arrival.event_id and not await service.claim_event(self._platform, arrival.event_id):
                log.info("%s: event %s already handled", self._platform, arrival.event_id)
                if burst is not None:
                    burst.pass_over(service.bursts)  # a redelivery ends no burst
                return
            key = arrival.key
            decision = await service.decide(
                key,
                arrival.sender.id,
                addressed=arrival.addressed,
                admission=self._allowlist(key.workspace, key.chat, arrival.sender.id),
            )
            if not decision.allowed:
                log.info(
                    "%s: not answering %s in %s: %s",
                    self._platform,
                    arrival.sender.id,
                    key.chat,
                    decision.reason or decision.verdict,
                )
                if decision.text:
                    await self.notify(arrival.surface, decision.text, ending=Ending.REFUSED, to=arrival.sender.id)
                return
            built = await build()
            if built is None:
                if burst is not None:
                    burst.pass_over(service.bursts)  # no message (a later item of an album): no end either
                return
            if isinstance(built, Notice):
                handed, ticket = ticket, None
                assert handed is not None
                await service.say_in_line(key, handed, arrival.surface, built.text)
                return
            msg, surface = (built.message, built.surface) if isinstance(built, Moved) else (built, arrival.surface)
            if msg.key != key:  # answered elsewhere: its place in line is the new conversation's
                assert ticket is not None
                ticket.drop()
                ticket = service.arrive(msg.key)
                if burst is not None:
                    burst.settle()
                    burst = None  # nobody joins a message answered elsewhere
            handed, ticket = ticket, None
            assert handed is not None
            await service.take_in(msg, surface, handed, burst)
        finally:
            if burst is not None:
                burst.settle()  # dropped (a redelivery, refused, nothing built): nobody joins it
            if ticket is not None:
                ticket.drop()

    def click(
        self, click: Click, surface: ReplySurface, acknowledge: Acknowledge | None = None, *, event_id: str = ""
    ) -> asyncio.Task[None]:
        return self._service.track(
            self._click(click, surface, acknowledge, event_id), name=f"{self._platform} click {click.data}"
        )

    async def _click(self, click: Click, surface: ReplySurface, acknowledge: Acknowledge | None, event_id: str) -> None:
        if event_id and not await self._service.claim_event(self._platform, event_id):
            log.info("%s: click %s already handled", self._platform, event_id)
            return
        key = click.key
        ack = await self._service.click(click, surface, self._allowlist(key.workspace, key.chat, click.user.id))
        if acknowledge is not None:
            await acknowledge(ack)

    def membership(self, workspace: str, chat: str, change: Membership, *, event_id: str = "") -> asyncio.Task[None]:
        return self._service.track(
            self._membership(workspace, chat, change, event_id), name=f"{self._platform} {change} {chat}"
        )

    async def _membership(self, workspace: str, chat: str, change: Membership, event_id: str) -> None:
        if event_id and not await self._service.claim_event(self._platform, event_id):
            return
        if change is Membership.LEFT:
            await self._service.chat_left(self._platform, workspace, chat)
        else:
            await self._service.chat_joined(self._platform, workspace, chat)

    def spawn(self, work: Coroutine[Any, Any, Any], *, name: str) -> asyncio.Task[Any]:
        return self._service.track(work, name=f"{self._platform} {name}")

    # --- asked from inside an event ---
    async def notify(self, surface: ReplySurface, text: str, *, ending: Ending | None = None, to: str = "") -> None:
        try:
            await self._service.notify(surface, text, ending=ending, to=to)
        except Exception:
            log.warning("%s: could not send a notice", self._platform, exc_info=True)

    async def known(self, key: ConversationKey) -> bool:
        return await self._service.has_conversation(key)

    async def record(self, message: IncomingMessage) -> None:
        await self._service.record(message)

    async def lead(self, name: str) -> bool:
        return await self._service.lead(name)

    def counters(self, account: str) -> Counters | None:
        return counters_for(self._service.settings.redis_url, account)

    def attach(self, surfaces: Surfaces) -> None:
        self._service.attach(self._platform, surfaces)

    async def drain(self) -> None:
        await self._service.drain()
