"""Reading in parts, registered with the core as one ``Extension``: the turn kind, the
go-ahead control, the citation rule for chat answers about documents, and taking up a
reading a restart interrupted."""
from __future__ import annotations

import logging

from bot.core.kinds import Core, Extension, PromptAddition
from bot.core.outcome import SHUTDOWN_ERROR
from bot.core.turns import TurnKind, TurnRequest, TurnState
from bot.documents.incoming import READ_IN_PARTS
from bot.longdocs import wording
from bot.longdocs.reading import DOC_PRESS, MAX_RESUMES, RESUME_WINDOW, ReadInParts
from bot.platform.controls import Action
from bot.platform.messages import IncomingMessage
from bot.platform.surface import ReplySurface
from bot.store.doc_jobs import JobStore
from bot.store.repo import ConversationRow, RecoveredAnswer, Store, StoredMessage

log = logging.getLogger(__name__)


async def on_press(action: Action, surface: ReplySurface, core: Core) -> str | None:
    """Go ahead (the reading starts as a turn of its own) or Cancel, on an estimate."""
    args = action.press.args
    if args not in (("go",), ("cancel",)):
        return None
    jobs = JobStore(core.store.db)
    job = await jobs.job(action.press.turn_id)
    if job is None:
        return None
    language = wording.language_of(job.question)
    if args == ("cancel",):
        if not await jobs.move(job.id, "cancelled", only_from=("asking",)):
            return wording.press_ack(job.state, language)
        await core.notify(surface, wording.cancelled_text(language))
        return pick_cancelled(language)
    conversation = await core.store.conversation(action.key, create=False)
    if conversation is None or conversation.id != job.conversation_id:
        return wording.press_ack("", language)  # the conversation moved on (/new)
    if not await jobs.move(job.id, "running", only_from=("asking", "cancelled"), approved_by=action.user.id):
        return wording.press_ack(job.state, language)
    await core.submit(IncomingMessage(key=action.key, author=action.user, text=wording.go_message(language),
                                      group=conversation.shared),
                      surface, TurnRequest(READ_IN_PARTS, {"job": job.id}))
    return wording.pick(language, "开始分部分阅读…", "Reading it in parts now…")


def pick_cancelled(language: wording.Language) -> str:
    return wording.pick(language, "已取消，没有花费。", "Cancelled: nothing was spent.")


async def cite_in_chat(conversation: ConversationRow, kind: str,
                       history: list[StoredMessage]) -> PromptAddition | None:
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
        await core.store.reopen_question(record.conversation_id, record.request_seq,
                                         TurnRequest(READ_IN_PARTS, {"job": job.id}))
        await jobs.update(job.id, resumes=job.resumes + 1, turn_id=None)
        log.info("job %s: reading interrupted by a restart, taken up again", job.id)


def long_documents(store: Store) -> Extension:
    return Extension(kinds=(ReadInParts(store),), presses={DOC_PRESS: on_press}, prompt=(cite_in_chat,),
                     recovered=(take_up,))
