"""Scanned PDF pages read through the model's vision, a few pages per request.

``transcribe_pages`` renders the pages (``pdf.render_pages``) batch by batch, so only one
batch of images exists at a time, asks the model to transcribe them page by page, reports
progress (pages done / total) after each batch, and returns the text per page with which
pages were read this way, which were over the cap and which failed. The batch size, the page
cap and the concurrency are the caller's: quotas and cost settings decide them.
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.documents.archive import label
from bot.documents.document import ranges
from bot.documents.textnorm import normalise
from bot.gateway.errors import CapabilityError, GatewayError
from bot.gateway.events import ChatRequest

log = logging.getLogger(__name__)

BATCH_PAGES = 3
PAGE_CAP = 30
TOKENS_PER_PAGE = 2_500  # a dense CJK page is ~1,000–1,500 characters
MAX_TOKENS = 16_384
SYSTEM = (
    "You transcribe scanned document pages. For each page image, in the order given, write a line "
    "'=== page N ===' with the page number you were told, then the page's text exactly as printed: "
    "the original language (never translate), reading order, paragraphs kept, tables as Markdown "
    "tables, headings as Markdown headings. Describe a chart or picture in one bracketed line, e.g. "
    "[图表：2023 年销量柱状图]. Write [blank page] for an empty page. Add nothing else."
)
_MARKER = re.compile(
    r"^[ \t]*(?:=+|#+)?[ \t]*(?:page|第)[ \t]*(\d+)[ \t]*(?:页)?[ \t]*=*[ \t]*$", re.IGNORECASE | re.MULTILINE
)


class VisionGateway(Protocol):
    async def complete(self, request: ChatRequest) -> Any: ...


Progress = Callable[[int, int], Awaitable[None] | None]
Pages = Callable[[dict[int, str]], Awaitable[None]]  # a batch's transcriptions, as soon as they come


@dataclass(slots=True)
class Transcription:
    filename: str
    page_cap: int = PAGE_CAP
    texts: dict[int, str] = field(default_factory=dict)  # page → transcribed text
    skipped: list[int] = field(default_factory=list)  # over the page cap: not asked
    failed: list[int] = field(default_factory=list)  # asked, no usable answer
    error: str = ""  # the gateway's sentence for the user, when a batch failed
    prompt_tokens: int = 0
    completion_tokens: int = 0
    requests: int = 0

    @property
    def read(self) -> list[int]:
        """Pages read through vision, in order."""
        return sorted(self.texts)

    def notices(self) -> list[str]:
        """What to tell the user: which pages were read from images, which were not."""
        name = label(self.filename)
        out = []
        if self.texts:
            out.append(
                f"pages {ranges(self.read)} of {name} have no text layer (scanned); I read them from "
                "their images, so names and figures there may contain recognition errors"
            )
        if self.skipped:
            out.append(
                f"scanned pages {ranges(self.skipped)} of {name} were not read (the limit is "
                f"{self.page_cap} scanned pages per document)"
            )
        if self.failed:
            reason = f": {self.error}" if self.error else ""
            out.append(f"scanned pages {ranges(self.failed)} of {name} could not be read{reason}")
        return out


def split_pages(answer: str, pages: Sequence[int]) -> dict[int, str]:
    """The model's answer cut at its '=== page N ===' lines; a one-page batch needs none."""
    found = list(_MARKER.finditer(answer))
    out: dict[int, str] = {}
    for i, match in enumerate(found):
        number = int(match.group(1))
        end = found[i + 1].start() if i + 1 < len(found) else len(answer)
        if number in pages and number not in out:
            out[number] = answer[match.end() : end].strip()
    if not found and len(pages) == 1 and answer.strip():
        out[pages[0]] = answer.strip()
    return out


def _request(images: list[Any], filename: str) -> ChatRequest:
    numbers = ", ".join(str(image.page) for image in images)
    blocks: list[dict[str, Any]] = [{"type": "text", "text": f"Document {label(filename)}: pages {numbers}."}]
    for image in images:
        blocks.append({"type": "text", "text": f"page {image.page}:"})
        url = f"data:{image.mime};base64,{base64.b64encode(image.data).decode('ascii')}"
        blocks.append({"type": "image_url", "image_url": {"url": url}})
    return ChatRequest(
        messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": blocks}],
        max_tokens=min(MAX_TOKENS, TOKENS_PER_PAGE * len(images)),
    )


async def transcribe_pages(
    gateway: VisionGateway,
    data: bytes,
    pages: Sequence[int],
    *,
    filename: str = "",
    batch_pages: int = BATCH_PAGES,
    page_cap: int = PAGE_CAP,
    concurrency: int = 1,
    progress: Progress | None = None,
    on_pages: Pages | None = None,
) -> Transcription:
    """Transcribe the given 1-based PDF pages (usually ``Document.scanned``).

    At most ``page_cap`` pages are asked for, ``batch_pages`` images per request, at most
    ``concurrency`` requests at a time. ``progress(done, total)`` is called after each batch
    (``total`` is the pages asked for). A page missing from a batch's answer is asked once
    more on its own. A batch the gateway refuses marks its pages failed; when the model
    cannot take images at all, the remaining batches are not sent. ``on_pages`` gets each
    batch's transcriptions as they come (a caller keeping them loses none to a restart).
    """
    from bot.documents.pdf import render_pages

    result = Transcription(filename, page_cap)
    wanted = list(dict.fromkeys(pages))
    asked, result.skipped = wanted[: max(0, page_cap)], wanted[max(0, page_cap) :]
    size = max(1, batch_pages)
    batches = [asked[i : i + size] for i in range(0, len(asked), size)]
    gate = asyncio.Semaphore(max(1, concurrency))
    done = 0
    stop = False

    async def ask(batch: list[int]) -> dict[int, str]:
        images = await asyncio.to_thread(lambda: list(render_pages(data, batch, filename)))
        if not images:
            return {}
        reply = await gateway.complete(_request(images, filename))
        result.requests += 1
        usage = getattr(reply, "usage", None)
        if usage is not None:
            result.prompt_tokens += usage.prompt_tokens
            result.completion_tokens += usage.completion_tokens
        return split_pages(reply.text or "", [image.page for image in images])

    async def run(batch: list[int]) -> None:
        nonlocal done, stop
        async with gate:
            if stop:
                result.failed.extend(batch)
                return
            try:
                texts = await ask(batch)
                for page in [p for p in batch if p not in texts] if len(batch) > 1 else []:
                    texts.update(await ask([page]))  # the model ran pages together: ask alone
            except CapabilityError as exc:
                stop = True
                result.error = exc.user_message
                result.failed.extend(batch)
                return
            except GatewayError as exc:
                log.info("vision batch %s failed: %s", batch, exc.log_message)
                result.error = exc.user_message
                result.failed.extend(batch)
                texts = {}
            got = {page: normalise(texts[page]) for page in batch if page in texts}
            result.texts.update(got)
            result.failed.extend(page for page in batch if page not in got and page not in result.failed)
            if on_pages is not None and got:
                await on_pages(got)
            done += len(batch)
            if progress is not None:
                waiting = progress(done, len(asked))
                if inspect.isawaitable(waiting):
                    await waiting

    await asyncio.gather(*(run(batch) for batch in batches))
    result.failed.sort()
    return result
