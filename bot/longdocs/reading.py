"""The turn that reads documents too big for one prompt (``READ_IN_PARTS``), end to end.

1. The files come back from the store (the message kept them) and are read whole; scanned
   pages transcribed earlier by this job are filled in.
2. The work left is estimated (tokens, and cost when prices are set) and checked against the
   quota left (``Quotas.headroom``): past it, the user is told and nothing is spent; past
   ``BOT_DOC_CONFIRM_ABOVE``, the user is shown the estimate with Go ahead / Cancel (a
   ``doc`` press) and the turn ends there.
3. Scanned pages are read through the model's vision a few pages a call, as many as
   ``BOT_DOC_VISION_PAGES`` and the quota allow.
4. Text that now fits one prompt is answered whole. Otherwise it is cut into parts
   (``plan``), and each part's notes are asked for with the question in mind, in parallel
   (``summarise``), each stored the moment it comes: a restart, Regenerate or a follow-up
   pays for none of them again.
5. The answer is written from the notes by the core's own chat kind (so tools, streaming and
   Stop work as for any answer), followed by a "Sources" line of the locations it cited
   that the documents have, and what was not read, and why.
6. The document part the conversation keeps is rewritten to the notes (or the whole text),
   so follow-up questions are answered from them by ordinary chat turns.

Progress shows on the platform throughout (``progress``): a message of the bot's own and
the turn's status line. Every call goes through the turn's metered gateway.
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from bot.core.kinds import TurnContext
from bot.core.tokens import MESSAGE_OVERHEAD, estimate_tokens
from bot.core.turns import TurnKind
from bot.documents import Document, DocumentUnreadable, document_budget, read
from bot.documents.budget import marked
from bot.documents.document import ranges
from bot.documents.incoming import READ_IN_PARTS
from bot.documents.vision import transcribe_pages
from bot.longdocs import wording
from bot.longdocs.citations import cited, sources_line
from bot.longdocs.estimate import VISION_PAGE_TEXT, Estimate, estimate
from bot.longdocs.plan import Plan, PlanPart, chapters_within, part_text, plan_parts, section_costs, span
from bot.longdocs.progress import EVERY, ProgressNote
from bot.longdocs.summarise import PartCall, PartNotes, read_parts
from bot.longdocs.wording import Language, pick
from bot.platform.controls import Button, Press, streaming_controls
from bot.store.doc_jobs import Job, JobStore, Result, StoredDocument
from bot.store.repo import ConversationRow, Store
from bot.usage.allowance import parse_allowance
from bot.usage.pricing import Prices
from bot.usage.quotas import Headroom

log = logging.getLogger(__name__)

DOC_PRESS = "doc"  # Press("doc", job id, ("go",) | ("cancel",))
NOTES_SHARE = 0.45  # of the window, the notes of all parts together may fill at most this
MIN_NOTES = 200  # tokens of notes a part gets however many parts there are
RESUME_WINDOW = timedelta(hours=1)  # a reading interrupted longer ago is not taken up by itself
MAX_RESUMES = 3


class ReadInParts:
    """The kind of turn (``turns.kind`` "document") the core gives a message whose documents
    one prompt cannot hold (``bot.documents.incoming``)."""

    kind = READ_IN_PARTS

    def __init__(self, store: Store) -> None:
        self.store = store
        self.jobs = JobStore(store.db)

    def takes_plain_messages(self, conversation: ConversationRow) -> bool:
        return False

    def system_addition(self, conversation: ConversationRow) -> str:
        return ""

    async def produce(self, turn: TurnContext) -> None:
        await Reading(self.store, self.jobs, turn).run()


@dataclass(slots=True)
class Files:
    """The job's documents, as read for this turn."""

    stored: list[StoredDocument]
    docs: list[Document]
    blobs: list[bytes]
    language: Language
    unread: list[str] = field(default_factory=list)  # files that could not be read again
    # Each document's place among the message's documents: what stored results name it by,
    # so they still match if another of them could not be read this time.
    keys: list[int] = field(default_factory=list)

    @property
    def names(self) -> str:
        return wording.names([d.filename for d in self.docs], self.language)

    @property
    def size(self) -> str:
        if len(self.docs) == 1:
            return wording.amount(self.docs[0].total, self.docs[0].unit, self.language)
        return pick(self.language, f"{len(self.docs)} 个文件", f"{len(self.docs)} files")


@dataclass(slots=True)
class Scans:
    """Scanned pages: read from images by this job (now or before), left out, or failed."""

    read: dict[int, list[int]] = field(default_factory=dict)  # document → pages
    skipped: dict[int, list[int]] = field(default_factory=dict)
    failed: dict[int, tuple[list[int], str]] = field(default_factory=dict)
    cap: int = 0


class Reading:
    def __init__(self, store: Store, jobs: JobStore, turn: TurnContext) -> None:
        self.store = store
        self.jobs = jobs
        self.turn = turn
        self.settings = turn.settings
        self.prices = Prices.from_settings(turn.settings)
        self.progress: ProgressNote | None = None
        self.stopped_text = ""  # what the progress message says if the reading is stopped now

    # --- the whole turn ---
    async def run(self) -> None:
        turn = self.turn
        job = await self._job()
        files = await self._files(job) if job is not None else None
        if job is None or files is None:  # nothing to read in parts (any more): an ordinary answer
            await turn.produce_as(TurnKind.CHAT)
            return
        await self.jobs.update(job.id, turn_id=turn.turn_id)
        scans = Scans(read=await self._transcribed(job, files))
        vision_pages = 0  # Regenerate, or a restart after the reading ("done"): every part is kept
        if job.state != "done":
            work = await self._estimate(job, files, scans)
            if work is None:
                return  # refused, or waiting for the go-ahead: the turn's text says so
            if job.state != "running":
                await self.jobs.move(
                    job.id, "running", only_from=(job.state,), estimate_tokens=work.tokens, estimate_cost=work.cost
                )
            vision_pages = work.vision_pages
        to_scan = self._to_scan(files, scans, vision_pages)
        try:
            if to_scan:
                await self._transcribe(job, files, scans, to_scan)
            if sum(sum(section_costs(d)) for d in files.docs) <= document_budget(self.settings):
                await self._answer_whole(job, files, scans)
            else:
                await self._answer_in_parts(job, files, scans)
        except asyncio.CancelledError:  # Stop, or the process is going: say where the reading stands
            if self.progress is not None and self.stopped_text:
                await self.progress.stopped(self.stopped_text)
            raise

    # --- finding the job and its files ---
    async def _job(self) -> Job | None:
        turn = self.turn
        wanted = turn.extra.get("job")
        if isinstance(wanted, int) and (job := await self.jobs.job(wanted)) is not None:
            return job
        record = await self.store.turn(turn.turn_id)
        if record is None:
            return None
        conversation = turn.conversation.id
        question = await self.jobs.message_text(conversation, record.request_seq)
        return await self.jobs.open(conversation, record.request_seq, question)

    async def _files(self, job: Job) -> Files | None:
        stored = [
            d
            for d in await self.jobs.documents(job.conversation_id, job.request_seq)
            if d.data.get("in_parts") and d.attachment_id is not None
        ]
        if not stored:
            return None
        language = wording.language_of(job.question, *(d.text for d in stored))
        await self.turn.status(wording.reading_status(language))
        data = await self.store.attachment_data([d.attachment_id for d in stored if d.attachment_id is not None])
        files = Files([], [], [], language)
        for key, document in enumerate(stored):
            blob = data.get(document.attachment_id or 0)
            name = str(document.data.get("filename") or "document")
            try:
                if blob is None:
                    raise DocumentUnreadable(f"{name} is no longer stored")
                doc = await asyncio.to_thread(read, blob, str(document.data.get("mime") or ""), name)
            except DocumentUnreadable as exc:
                log.warning("job %s: %s", job.id, exc)
                files.unread.append(name)
                continue
            files.stored.append(document)
            files.docs.append(doc)
            files.blobs.append(blob)
            files.keys.append(key)
        return files if files.docs else None

    async def _transcribed(self, job: Job, files: Files) -> dict[int, list[int]]:
        """Fill in the scanned pages this job already paid to read."""
        done: dict[int, dict[int, str]] = {}
        for (key, page), result in (await self.jobs.results(job.id, "page")).items():
            if key in files.keys:
                done.setdefault(files.keys.index(key), {})[page] = result.text
        for index, texts in done.items():
            files.docs[index].fill(texts)
        return {index: sorted(texts) for index, texts in done.items()}

    # --- what it will take, and whether to go ahead ---
    def _notes_tokens(self, parts: int) -> int:
        room = int((self.settings.context_tokens - self.settings.max_tokens) * NOTES_SHARE)
        return max(MIN_NOTES, min(self.settings.doc_summary_tokens, room // max(1, parts)))

    def _part_tokens(self) -> int:
        s = self.settings
        return max(2_000, min(s.doc_part_tokens, s.context_tokens - s.max_tokens - 8_000))

    async def _headroom(self) -> Headroom:
        meter = getattr(self.turn.gateway, "meter", None)
        if meter is None:
            return Headroom()
        ctx = self.turn.gateway.ctx
        return await meter.quotas.headroom(ctx.conversation_id, ctx.platform, ctx.user_id)

    async def _estimate(self, job: Job, files: Files, scans: Scans) -> Estimate | None:
        """The work left as an estimate, or None after telling the user why it stops here."""
        settings, turn = self.settings, self.turn
        pending = sum(len(d.scanned) for d in files.docs)
        cap = max(0, settings.doc_vision_pages - sum(len(p) for p in scans.read.values())) if settings.vision else 0
        headroom = await self._headroom()
        stored = Plan.from_dict(job.plan)
        done = (
            set(self._kept(files, stored, await self.jobs.results(job.id, "part")))
            if stored is not None and stored.fits(files.docs)
            else set()
        )
        # As many scanned pages as the quota left allows, with everything else the reading needs
        # (a page costs its call, and its text in the parts and the answer).
        low, high = 0, min(pending, cap)
        while low < high:
            middle = (low + high + 1) // 2
            trial = self._work(job, files, middle, done)
            low, high = (middle, high) if headroom.allows(trial.tokens, trial.cost) else (low, middle - 1)
        if high < min(pending, cap):
            cap = high
        scans.cap = cap + sum(len(p) for p in scans.read.values())
        work = self._work(job, files, min(pending, cap), done)
        language = files.language
        if not headroom.allows(work.tokens, work.cost):
            over_tokens = headroom.tokens is not None and work.tokens > headroom.tokens
            status = headroom.tokens_of if over_tokens else headroom.cost_of
            left = f"{headroom.tokens:,} tokens" if over_tokens else self.prices.money(headroom.cost or 0.0)
            limit = wording.limit_name(status.scope.value, status.period.adjective, language) if status else ""
            turn.feed(wording.refusal_text(files.names, work.tokens, self._money(work.cost), left, limit, language))
            await self.jobs.update(job.id, state="refused", estimate_tokens=work.tokens, estimate_cost=work.cost)
            return None
        go = turn.extra.get("job") == job.id or job.state == "running"
        if not go and work.exceeds(parse_allowance(settings.doc_confirm_above)):
            fits = self._fits_statement(files)
            turn.feed(
                wording.ask_text(
                    files.names,
                    files.size,
                    work.parts,
                    work.vision_pages,
                    work.tokens,
                    self._money(work.cost),
                    fits,
                    language,
                )
            )
            turn.controls.append(
                (
                    Button(wording.go_label(language), Press(DOC_PRESS, job.id, ("go",)), "primary"),
                    Button(wording.cancel_label(language), Press(DOC_PRESS, job.id, ("cancel",))),
                )
            )
            await self.jobs.update(job.id, state="asking", estimate_tokens=work.tokens, estimate_cost=work.cost)
            return None
        return work

    def _work(self, job: Job, files: Files, vision_pages: int, done: set[int]) -> Estimate:
        """The calls left: ``vision_pages`` transcriptions, the parts not in ``done``, the answer."""
        settings = self.settings
        text = sum(sum(section_costs(d)) for d in files.docs) + vision_pages * VISION_PAGE_TEXT
        answer_prompt = max(0, prompt_tokens(self.turn.messages) - sum(estimate_tokens(d.text) for d in files.stored))
        question = estimate_tokens(job.question)
        stored = Plan.from_dict(job.plan)
        if text <= document_budget(settings):
            parts = todo = todo_tokens = 0
        elif stored is not None and stored.fits(files.docs) and not vision_pages:
            parts = len(stored.parts)
            todo = sum(1 for p in stored.parts if p.number not in done)
            todo_tokens = sum(p.tokens for p in stored.parts if p.number not in done)
        else:
            parts = todo = sum(max(1, math.ceil(sum(section_costs(d)) / self._part_tokens())) for d in files.docs)
            todo_tokens = text
        return estimate(
            todo_tokens=todo_tokens,
            todo_parts=todo,
            all_parts=parts,
            vision_pages=vision_pages,
            question_tokens=question,
            summary_tokens=self._notes_tokens(max(parts, 1)),
            answer_prompt=answer_prompt,
            answer_tokens=settings.max_tokens,
            whole_tokens=text,
            prices=self.prices,
        )

    def _money(self, cost: float) -> str:
        return self.prices.money(cost) if cost > 0 else ""

    def _fits_statement(self, files: Files) -> str:
        """What the conversation keeps of the documents without the reading ("pages 1–97")."""
        shown = []
        for document in files.stored:
            data = document.data
            unit, done, total = str(data.get("unit") or ""), int(data.get("read") or 0), int(data.get("total") or 0)
            if unit in ("page", "slide", "chapter") and done and total and done < total:
                whole = wording.amount(total, unit, files.language)
                shown.append(
                    pick(files.language, f"{_numbers_zh(unit, done)}，共 {whole}", f"{unit}s 1–{done:,} of {total:,}")
                )
        return pick(files.language, "；", "; ").join(shown)

    # --- scanned pages ---
    def _to_scan(self, files: Files, scans: Scans, count: int) -> list[tuple[int, int]]:
        wanted = [(index, page) for index, doc in enumerate(files.docs) for page in doc.scanned]
        for index, page in wanted[count:]:
            scans.skipped.setdefault(index, []).append(page)
        return wanted[:count]

    async def _transcribe(self, job: Job, files: Files, scans: Scans, pages: list[tuple[int, int]]) -> None:
        turn, settings = self.turn, self.settings
        note = self._note(job)
        total, before = len(pages), 0
        by_doc: dict[int, list[int]] = {}
        for index, page in pages:
            by_doc.setdefault(index, []).append(page)

        for index, wanted in by_doc.items():
            doc = files.docs[index]

            async def progress(done: int, _total: int, offset: int = before) -> None:
                message, status = wording.vision_progress(files.names, offset + done, total, files.language)
                self.stopped_text = wording.stopped(files.names, offset + done, total, "page", files.language)
                note.show(message)
                await turn.status(status)

            async def keep(texts: dict[int, str], document: int = files.keys[index]) -> None:
                for page, text in texts.items():
                    await self.jobs.keep(job.id, Result("page", document, page, text))

            await progress(0, len(wanted))
            result = await transcribe_pages(
                turn.gateway,
                files.blobs[index],
                wanted,
                filename=doc.filename,
                batch_pages=settings.doc_vision_batch,
                page_cap=len(wanted),
                concurrency=settings.doc_concurrency,
                progress=progress,
                on_pages=keep,
            )
            before += len(wanted)
            doc.fill(result.texts)
            turn.usage.completion_tokens += result.completion_tokens
            turn.usage.calls += result.requests
            if result.texts:
                scans.read.setdefault(index, []).extend(result.read)
            if result.failed:
                scans.failed[index] = (result.failed, result.error)
        done = sum(len(p) for p in scans.read.values())
        note.show(wording.vision_done(files.names, done, files.language))

    # --- answering ---
    def _note(self, job: Job) -> ProgressNote:
        if self.progress is None:

            async def posted(refs: list[str]) -> None:
                await self.jobs.update(job.id, progress=refs)

            self.progress = ProgressNote(
                self.turn.writer.surface,
                self.turn.turn_id,
                refs=job.progress,
                every=EVERY * self.settings.platform_time_scale,
                on_posted=posted,
                controls=streaming_controls(self.turn.turn_id),
            )
        return self.progress

    async def _answer_whole(self, job: Job, files: Files, scans: Scans) -> None:
        """The text fits one prompt (scanned pages now transcribed): answered from all of it."""
        texts = []
        for document, doc in zip(files.stored, files.docs):
            body = "\n\n".join(marked(s, {}) for s in doc.sections)
            texts.append(body)
            self._replace(document.text, body)
        self._add_to_newest(wording.whole_instruction() if scans.read else "")
        if self.progress is not None:
            await self.progress.done(
                wording.vision_done(files.names, sum(map(len, scans.read.values())), files.language)
            )
        await self._answer(files, scans, fallback="", failed=[])
        for document, body in zip(files.stored, texts):
            await self.jobs.rewrite_document(document, body, {**document.data, "whole": True})
        await self.jobs.update(job.id, state="done")

    async def _answer_in_parts(self, job: Job, files: Files, scans: Scans) -> None:
        turn, settings = self.turn, self.settings
        plan = Plan.from_dict(job.plan)
        if plan is None or not plan.fits(files.docs):
            plan = plan_parts(files.docs, self._part_tokens())
            await self.jobs.update(job.id, plan=plan.to_dict())
        count = len(plan.parts)
        notes_tokens = self._notes_tokens(count)
        kept = self._kept(files, plan, await self.jobs.results(job.id, "part"))
        earlier = len(kept)
        note = self._note(job)
        language = files.language

        async def show() -> None:
            message, status = wording.parts_progress(files.names, files.size, len(kept), count, earlier, language)
            self.stopped_text = wording.stopped(files.names, len(kept), count, "part", language)
            note.show(message)
            await turn.status(status)

        async def on_notes(notes: PartNotes) -> None:
            part = plan.parts[notes.number - 1]
            result = Result(
                "part",
                files.keys[part.document],
                notes.number,
                notes.text,
                {
                    "span": span(files.docs[part.document], part),
                    "finish": notes.finish_reason,
                    "first": part.first,
                    "last": part.last,
                    "piece": part.piece,
                },
                notes.prompt_tokens,
                notes.completion_tokens,
            )
            await self.jobs.keep(job.id, result)
            kept[notes.number] = result
            turn.usage.add(notes.prompt_tokens, notes.completion_tokens, notes.cached_tokens)
            await show()

        await show()
        calls = [self._call(job, files, plan, part, notes_tokens) for part in plan.parts if part.number not in kept]
        outcome = await read_parts(turn.gateway, calls, concurrency=settings.doc_concurrency, on_notes=on_notes)
        # The progress message is final before the answer starts below it.
        await note.done(wording.read_done(files.names, files.size, count, count - len(outcome.failed), language))
        await turn.status(wording.pick(language, "正在写回答…", "writing the answer…"))
        digests = [
            self._digest(job, files, plan, index, kept, {f.number: f.reason for f in outcome.failed})
            for index in range(len(files.docs))
        ]
        for document, digest in zip(files.stored, digests):
            self._replace(document.text, digest)
        self._add_to_newest(wording.answer_instruction(job.question, count, language))
        failed = [(plan.parts[f.number - 1], f.reason) for f in outcome.failed]
        fallback = " · ".join(_whole(doc, count, language) for doc in files.docs)
        await self._answer(files, scans, fallback=fallback, failed=failed)
        for document, digest in zip(files.stored, digests):
            await self.jobs.rewrite_document(document, digest, {**document.data, "parts": count, "job": job.id})
        if not failed:
            await self.jobs.update(job.id, state="done")

    @staticmethod
    def _kept(files: Files, plan: Plan, results: dict[tuple[int, int], Result]) -> dict[int, Result]:
        """The stored notes that are this plan's parts (part number → notes): the same file,
        the same sections."""
        kept = {}
        for part in plan.parts:
            result = results.get((files.keys[part.document], part.number))
            if result is not None and (
                result.data.get("first"),
                result.data.get("last"),
                result.data.get("piece", 0),
            ) == (part.first, part.last, part.piece):
                kept[part.number] = result
        return kept

    def _call(self, job: Job, files: Files, plan: Plan, part: PlanPart, notes_tokens: int) -> PartCall:
        doc = files.docs[part.document]
        where = span(doc, part)
        chapters = chapters_within(doc, part)
        if chapters:
            where += " — " + "; ".join(chapters[:6])
        text = part_text(doc, part)
        return PartCall(
            part.number,
            part.document,
            wording.part_system(files.language, notes_tokens),
            wording.part_request(job.question, doc.filename, part.number, len(plan.parts), where, text, files.language),
            notes_tokens,
        )

    def _digest(
        self, job: Job, files: Files, plan: Plan, index: int, kept: dict[int, Result], failed: dict[int, str]
    ) -> str:
        """What stands for a document read in parts: the notes on each of its parts, in order."""
        doc = files.docs[index]
        mine = [p for p in plan.parts if p.document == index]
        asked = f" for the question “{job.question.strip()}”" if job.question.strip() else ""
        lines = [
            f"[“{doc.filename}”: {wording.amount(doc.total, doc.unit, 'en')}, too long to read at once. It was "
            f"read in {len(mine)} part{'s' if len(mine) != 1 else ''}; these are the notes on each part, "
            f"written{asked}, with locations.]"
        ]
        for part in mine:
            where = span(doc, part)
            chapters = chapters_within(doc, part)
            head = f"### Part {part.number} of {len(plan.parts)} — {where}" + (
                f" ({'; '.join(chapters[:4])})" if chapters else ""
            )
            result = kept.get(part.number)
            body = result.text if result is not None else f"(not read: {failed.get(part.number, 'no answer')})"
            lines.append(f"{head}\n{body}")
        return "\n\n".join(lines)

    async def _answer(self, files: Files, scans: Scans, *, fallback: str, failed: list[tuple[PlanPart, str]]) -> None:
        """The core's chat kind writes the answer from the prompt as rewritten; then the
        Sources line and what was not read."""
        turn = self.turn
        await turn.produce_as(TurnKind.CHAT)
        language = files.language
        found = cited(turn.writer.text, files.docs)
        tail = [sources_line(files.docs, found, language, fallback=fallback)]
        for index, doc in enumerate(files.docs):
            name = wording.titled(doc.filename, language)
            if scans.read.get(index):
                tail.append(wording.scanned_note(name, _runs(scans.read[index], language), language))
            if scans.skipped.get(index):
                tail.append(
                    wording.scans_skipped_note(name, _runs(scans.skipped[index], language), scans.cap, language)
                )
            if index in scans.failed:
                pages, reason = scans.failed[index]
                tail.append(wording.scans_failed_note(name, _runs(pages, language), reason, language))
            lost = [(part, reason) for part, reason in failed if part.document == index]
            if lost:
                where = pick(language, "、", ", ").join(span(doc, part, language) for part, _ in lost)
                tail.append(wording.parts_failed_note(name, where, lost[0][1].rstrip("."), language))
        for name in files.unread:
            tail.append(
                pick(
                    language,
                    f"_{wording.titled(name, language)}没能再次读取。_",
                    f"_{wording.titled(name, language)} could not be read again._",
                )
            )
        extra = "\n\n".join(t for t in tail if t)
        if extra:
            turn.feed(("\n\n" if turn.writer.text.strip() else "") + extra)

    # --- the prompt the core built, rewritten ---
    def _replace(self, old: str, new: str) -> None:
        """Put ``new`` where the prompt holds a document's stored text (or, if it is not
        there, at the end of the newest user message)."""
        for message in reversed(self.turn.messages):  # the newest copy: the message being answered
            if message.get("role") != "user" or not old:
                continue
            content = message.get("content")
            if isinstance(content, str) and old in content:
                message["content"] = content.replace(old, new, 1)
                return
            if isinstance(content, list):
                for block in content:
                    if block.get("type") == "text" and old in block.get("text", ""):
                        block["text"] = block["text"].replace(old, new, 1)
                        return
        self._add_to_newest(f"<document>\n{new}\n</document>")

    def _add_to_newest(self, text: str) -> None:
        if not text:
            return
        for message in reversed(self.turn.messages):
            if message.get("role") == "user":
                content = message.get("content")
                if isinstance(content, list):
                    message["content"] = [*content, {"type": "text", "text": text}]
                else:
                    message["content"] = f"{content}\n\n{text}" if content else text
                return
        self.turn.messages.append({"role": "user", "content": text})


def prompt_tokens(messages: list[dict[str, Any]]) -> int:
    total = 0
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            total += estimate_tokens(content)
        elif isinstance(content, list):
            total += sum(estimate_tokens(b.get("text", "")) for b in content if isinstance(b, dict))
        total += MESSAGE_OVERHEAD
    return total


def _runs(pages: list[int], language: Language) -> str:
    run = ranges(pages)
    return run.replace(", ", "、") if language == "zh" else run


def _whole(doc: Document, parts: int, language: Language) -> str:
    """What was read of a document, for a Sources line when the answer cited nothing."""
    first, last = doc.sections[0].location, doc.sections[-1].location
    where = (
        span(doc, PlanPart(0, 0, 0, len(doc.sections) - 1, 0), language)
        if first.kind == last.kind
        else wording.amount(doc.total, doc.unit, language)
    )
    return pick(
        language,
        f"《{doc.filename}》{where}（分 {parts} 部分读完）",
        f"{doc.filename} — {where}, read in {parts} parts",
    )


def _numbers_zh(unit: str, last: int) -> str:
    """ "第 1–97 页"."""
    return f"第 1–{last:,} " + {"page": "页", "chapter": "章"}.get(unit, "张幻灯片" if unit == "slide" else unit)
