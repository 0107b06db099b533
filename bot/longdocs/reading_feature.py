"""Reading in parts, registered with the core as one ``Extension``: the turn kind, the
go-ahead control, the citation rule for chat answers about documents, and taking up a
reading a restart interrupted."""

from __future__ import annotations

import logging

from bot.core.kinds import Command, CommandCall, Core, Extension, PromptAddition
from bot.core.outcome import SHUTDOWN_ERROR
from bot.core.turns import TurnKind, TurnRequest, TurnState
from bot.documents.incoming import READ_IN_PARTS
from bot.longdocs import wording
from bot.longdocs.reading import DOC_PRESS, MAX_RESUMES, RESUME_WINDOW, ReadInParts
from bot.platform.controls import Action
from bot.platform.inbox import CommandInfo
from bot.platform.messages import Author, ConversationKey, IncomingMessage
from bot.platform.surface import ReplySurface
from bot.store.doc_jobs import JobStore
from bot.store.repo import ConversationRow, RecoveredAnswer, Store, StoredMessage

log = logging.getLogger(__name__)


async def on_press(action: Action, surface: ReplySurface, core: Core) -> str | None:
    """Go ahead (the reading starts as a turn of its own) or Cancel, on an estimate."""
    if action.press.args not in (("go",), ("cancel",)):
        return None
    return await decide(action.press.turn_id, action.press.args[0], action.user, action.key, surface, core)


async def read_command(call: CommandCall) -> None:
    """``/read go`` or ``/read cancel``: the buttons of the newest estimate, typed (the
    terminal has no buttons; Slack threads take "!read go")."""
    core, msg = call.core, call.msg
    choice = call.args.strip().lower()
    conversation = await core.store.conversation(msg.key, create=False)
    jobs = JobStore(core.store.db)
    job = await jobs.waiting(conversation.id) if conversation is not None else None
    if job is None or choice not in ("go", "cancel"):
        language = wording.language_of(job.question if job else msg.text)
        await core.notify(
            call.surface,
            wording.pick(
                language,
                "用 `/read go` 读完全文，`/read cancel` 取消（在我报出预计用量之后）。",
                "Use `/read go` to read the document whole, or `/read cancel`, after I've shown the estimate.",
            ),
        )
        return
    ack = await decide(job.id, choice, msg.author, msg.key, call.surface, core)
    language = wording.language_of(job.question)
    if ack and ack not in (wording.go_ack(language), wording.cancel_ack(language)):  # those said it already
        await core.notify(call.surface, ack)


async def decide(
    job_id: int, choice: str, user: Author, key: ConversationKey, surface: ReplySurface, core: Core
) -> str | None:
    """Act on an estimate's Go ahead / Cancel; returns what the person who chose is told."""
    jobs = JobStore(core.store.db)
    job = await jobs.job(job_id)
    if job is None:
        return None
    language = wording.language_of(job.question)
    if choice == "cancel":
        if not await jobs.move(job.id, "cancelled", only_from=("asking",)):
            return wording.press_ack(job.state, language)
        await core.notify(surface, wording.cancelled_text(language))
        return wording.cancel_ack(language)
    conversation = await core.store.conversation(key, create=False)
    if conversation is None or conversation.id != job.conversation_id:
        return wording.press_ack("", language)  # the conversation moved on (/new)
    if not await jobs.move(job.id, "running", only_from=("asking", "cancelled"), approved_by=user.id):
        return wording.press_ack(job.state, language)
    await core.submit(
        IncomingMessage(key=key, author=user, text=wording.go_message(language), group=conversation.shared),
        surface,
        TurnRequest(READ_IN_PARTS, {"job": job.id}),
    )
    return wording.go_ack(language)


async def cite_in_chat(conversation: ConversationRow, kind: str, history: list[StoredMessage]) -> PromptAddition | None:
    """Chat answers in a conversation that holds a document cite where they found things
    (stable text: it joins the system prompt once a document is there)."""
    if kind != TurnKind.CHAT:
        return None
    if any(part.kind == "document" for message in history if message.role == "user" for part in message.parts):
        return PromptAddition(system=wording.CITE_IN_CHAT)
    return None


async def take_up(recovered: list[RecoveredAnswer], core: Core) -> None:
    """Readings whose turn a restart interrupted (the process died, or shut down mid-way) are
    queued again: the new turn skips every part already read."""
    jobs = JobStore(core.store.db)
    dead = {answer.turn_id for answer in recovered}
    for item in await jobs.interrupted(RESUME_WINDOW):
        job = item.job
        if job.turn_id is None or job.resumes >= MAX_RESUMES:
            continue
        shut_down = item.turn_state == TurnState.INTERRUPTED and item.turn_error == SHUTDOWN_ERROR
        if job.turn_id not in dead and not shut_down:
            continue
        record = await core.store.turn(job.turn_id)
        if record is None:
            continue
        await core.store.reopen_question(
            record.conversation_id, record.request_seq, TurnRequest(READ_IN_PARTS, {"job": job.id})
        )
        await jobs.update(job.id, resumes=job.resumes + 1, turn_id=None)
        log.info("job %s: reading interrupted by a restart, taken up again", job.id)


def long_documents(store: Store) -> Extension:
    return Extension(
        kinds=(ReadInParts(store),),
        commands=(
            Command(
                CommandInfo(
                    "read", "Read a long document whole, after its estimate · 读完长文档", "go | cancel", menu=False
                ),
                read_command,
            ),
        ),
        presses={DOC_PRESS: on_press},
        prompt=(cite_in_chat,),
        recovered=(take_up,),
    )
