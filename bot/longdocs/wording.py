"""What reading in parts says: the model's instructions, and the bot's own sentences (in the
user's language: Chinese when the question, or without one the document, is Chinese)."""

from __future__ import annotations

import json
from typing import Literal

Language = Literal["zh", "en"]
SAMPLE = 20_000  # characters looked at to tell a document's language


def language_of(*texts: str) -> Language:
    """ "zh" when Chinese characters make up a good share of the first text that has letters."""
    for text in texts:
        letters = [ch for ch in text[:SAMPLE] if ch.isalpha()]
        if letters:
            cjk = sum(1 for ch in letters if "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf")
            return "zh" if cjk >= 0.3 * len(letters) else "en"
    return "en"


def pick(language: Language, zh: str, en: str) -> str:
    return zh if language == "zh" else en


def titled(name: str, language: Language) -> str:
    return f"《{name}》" if language == "zh" else f"“{name}”"


def names(files: list[str], language: Language) -> str:
    shown = [titled(name, language) for name in files[:3]]
    more = len(files) - len(shown)
    if more:
        shown.append(pick(language, f"另外 {more} 个文件", f"{more} more"))
    return ("、" if language == "zh" else ", ").join(shown)


def amount(units: int, unit: str, language: Language) -> str:
    """ "1,000 pages" / "1,000 页"."""
    zh = {"page": "页", "slide": "张幻灯片", "sheet": "个工作表", "chapter": "章", "paragraph": "段", "line": "行"}
    if language == "zh":
        return f"{units:,} {zh.get(unit, unit)}"
    return f"{units:,} {unit}{'' if units == 1 else 's'}"


# --- the model's instructions --------------------------------------------------------------

PART_SYSTEM = (
    "You are reading one part of a long document for a colleague, who asked a question about the "
    "whole of it. You see only this part; your notes will be put together with the notes on the other "
    "parts, and the answer will be written from the notes alone. Write the notes:\n"
    "- First what in this part bears on the question: facts, figures, prices, dates, names, short "
    "quotes, conclusions — concrete, with numbers kept exactly.\n"
    "- Then, in a few lines, what else this part covers, so later questions can be answered too.\n"
    "- After every point, its location in square brackets, as the section markers name it: "
    "[page 12], [pages 12–13], [slide 3], [sheet “Sales”], [chapter 4], [section 2], [lines 120–240].\n"
    "- If nothing here bears on the question, say so in one line, then the brief overview.\n"
    "Write the notes in {language}, at most about {words} {unit}, as a bullet list. No preamble, no "
    "closing remarks."
)
NO_QUESTION = {
    "zh": "（用户发来文件，没有提问：记下这部分最重要的内容，供写一份全文摘要用。）",
    "en": "(The user sent the document without a question: note what matters most in this part, for a "
    "summary of the whole.)",
}
LANGUAGE_NAMES = {"zh": "Chinese (简体中文)", "en": "English"}


def part_system(language: Language, tokens: int) -> str:
    # CJK: about a character per token in our estimate; English: about 0.75 words per token.
    words, unit = (tokens, "characters") if language == "zh" else (int(tokens * 0.75), "words")
    return PART_SYSTEM.format(language=LANGUAGE_NAMES[language], words=f"{words:,}", unit=unit)


def part_request(question: str, name: str, number: int, parts: int, span: str, text: str, language: Language) -> str:
    asked = question.strip() or NO_QUESTION[language]
    return (
        f'Question: {asked}\n\n<document name={json.dumps(name, ensure_ascii=False)} part="{number} of {parts}" '
        f"covers={json.dumps(span, ensure_ascii=False)}>\n{text}\n</document>"
    )


def answer_instruction(question: str, parts: int, language: Language) -> str:
    """Added to the newest user message of the answer's prompt (volatile: never cached)."""
    asked = (
        f"“{question.strip()}”"
        if question.strip()
        else pick(language, "（没有具体问题：写一份全文摘要）", "(no question was asked: write a summary of the whole)")
    )
    return (
        f"[The document text above was too long to read at once: it was read in {parts} parts, and in its "
        f"place you have the notes on each part, with locations. Answer the question {asked} from these notes. "
        "Cite locations in square brackets as the notes do, e.g. [page 12]; never invent a location; if the "
        "notes do not cover something, say so. Do not end with a list of sources: it is added for you.]"
    )


def whole_instruction() -> str:
    return (
        "[Some pages of the document above had no text layer (scans): their text was read from their "
        "images, so names and figures there may hold recognition errors. Cite locations in square brackets "
        "as the section markers name them, e.g. [page 12]. Do not end with a list of sources: it is added "
        "for you.]"
    )


CITE_IN_CHAT = (
    "When you answer from a document in this conversation, say where each point comes from: its location in "
    "square brackets as the document's section markers name it ([page 12], [slide 3], [sheet “Sales”], "
    "[chapter 4]); end such an answer with one line “**Sources:** …” listing the locations you cited."
)


# --- the bot's own sentences -------------------------------------------------------------------


def reading_status(language: Language) -> str:
    return pick(language, "正在读取文件…", "reading the document…")


def vision_progress(files: str, done: int, total: int, language: Language) -> tuple[str, str]:
    """(the progress message, the status line) while scanned pages are read from images."""
    return (
        pick(
            language,
            f"🔎 {files}有 {total} 页是扫描页，正在从图片识别文字：{done} / {total} 页",
            f"🔎 {files}: reading {total} scanned page{'s' if total != 1 else ''} from their images — "
            f"{done} of {total}",
        ),
        pick(language, f"识别扫描页 {done} / {total}", f"scanned page {done} of {total}"),
    )


def parts_progress(files: str, size: str, done: int, parts: int, earlier: int, language: Language) -> tuple[str, str]:
    """(the progress message, the status line) while parts are read; ``earlier``: parts read
    before this turn (a resumed reading says so)."""
    again = (
        pick(language, f"（接着上次：已有 {earlier} 部分读过）", f" (resumed: {earlier} were read before)")
        if earlier
        else ""
    )
    return (
        pick(
            language,
            f"📖 {files}（{size}）一次读不完，正在分 {parts} 部分阅读：第 {done} / {parts} 部分{again}",
            f"📖 {files} ({size}) is too long to read at once: reading it in {parts} parts — "
            f"part {done} of {parts} done{again}",
        ),
        pick(language, f"第 {done} / {parts} 部分", f"part {done} of {parts}"),
    )


def stopped(files: str, done: int, total: int, unit: str, language: Language) -> str:
    """The progress message of a reading that was stopped (Stop, a restart): what is kept."""
    if unit == "page":
        return pick(
            language,
            f"⏸ {files}：识别了 {done} / {total} 页扫描页后停下；识别过的都保留了。",
            f"⏸ {files}: stopped after {done} of {total} scanned pages; those read are kept.",
        )
    return pick(
        language,
        f"⏸ {files}：读了 {done} / {total} 部分后停下；读过的部分都保留了，按“重新生成”接着读。",
        f"⏸ {files}: stopped after {done} of {total} parts; the parts read are kept, and Regenerate goes "
        "on from there.",
    )


def read_done(files: str, size: str, parts: int, read: int, language: Language) -> str:
    if read < parts:
        return pick(
            language,
            f"📖 {files}（{size}）分 {parts} 部分阅读，读完了其中 {read} 部分。",
            f"📖 Read {read} of the {parts} parts of {files} ({size}).",
        )
    return pick(language, f"📖 已分 {parts} 部分读完{files}（{size}）。", f"📖 Read {files} ({size}) in {parts} parts.")


def vision_done(files: str, pages: int, language: Language) -> str:
    return pick(
        language,
        f"🔎 {files}：已从图片识别 {pages} 页扫描页。",
        f"🔎 {files}: read {pages} scanned page{'s' if pages != 1 else ''} from their images.",
    )


def ask_text(
    files: str, size: str, parts: int, scans: int, tokens: int, cost: str, fits: str, language: Language
) -> str:
    """The go-ahead question, with the estimate."""
    if language == "zh":
        work = f"分 {parts} 部分阅读" if parts else ""
        if scans:
            work += ("，另有" if work else "") + f" {scans} 页扫描页需要从图片识别"
        money = f"（约 {cost}）" if cost else ""
        rest = f"不继续的话，我只根据能一次读入的部分（{fits}）回答。" if fits else ""
        return (
            f"{files}（{size}）超出一次能读的长度。要读完全文需{work}，预计约 **{tokens:,} tokens**{money}。"
            f"要继续吗？{rest}（也可以发送 `/read go` 或 `/read cancel`。）"
        )
    work = f"{parts} parts" if parts else ""
    if scans:
        work += (", and " if work else "") + f"{scans} scanned page{'s' if scans != 1 else ''} read from images"
    money = f" (≈ {cost})" if cost else ""
    rest = f" If not, I'll answer from what fits at once ({fits})." if fits else ""
    return (
        f"{files} ({size}) is longer than I can read at once. Reading it whole takes {work}: about "
        f"**{tokens:,} tokens**{money}. Go ahead?{rest} (Or send `/read go` or `/read cancel`.)"
    )


def go_label(language: Language) -> str:
    return pick(language, "▶ 继续阅读", "▶ Go ahead")


def cancel_label(language: Language) -> str:
    return pick(language, "✖ 取消", "✖ Cancel")


def go_ack(language: Language) -> str:
    return pick(language, "开始分部分阅读…", "Reading it in parts now…")


def cancel_ack(language: Language) -> str:
    return pick(language, "已取消，没有花费。", "Cancelled: nothing was spent.")


def go_message(language: Language) -> str:
    """The user message a go-ahead stores (it answers the estimate in the conversation)."""
    return pick(language, "继续：分部分读完全文。", "Go ahead: read it whole, in parts.")


def cancelled_text(language: Language) -> str:
    return pick(
        language,
        "好的，不读全文。之后关于它的问题，我只根据能一次读入的部分回答。",
        "OK, I won't read it whole. I'll answer questions about it from what fits at once.",
    )


def refusal_text(files: str, tokens: int, cost: str, left: str, limit: str, language: Language) -> str:
    need = f"{tokens:,} tokens" + (f"（约 {cost}）" if cost and language == "zh" else f" (≈ {cost})" if cost else "")
    return pick(
        language,
        f"读完{files}预计需要约 {need}，超过了{limit}剩余的 {left}。可以问其中某一部分的内容，或请管理员提高额度。",
        f"Reading {files} whole would take about {need}, more than the {left} left of {limit}. "
        "Ask about a part of it, or ask an admin to raise the limit.",
    )


def limit_name(scope: str, adjective: str, language: Language) -> str:
    """ "your daily limit" / "你的每日额度"."""
    if language == "zh":
        when = {"daily": "每日", "monthly": "每月"}.get(adjective, adjective)
        return {"user": f"你的{when}额度", "conversation": f"本会话的{when}额度"}.get(scope, f"全体的{when}预算")
    return {"user": f"your {adjective} limit", "conversation": f"this conversation's {adjective} limit"}.get(
        scope, f"everyone's {adjective} budget"
    )


def scanned_note(files: str, pages: str, language: Language) -> str:
    return pick(
        language,
        f"_{files}第 {pages} 页是扫描页，文字是从图片识别的，人名和数字可能有识别错误。_",
        f"_Pages {pages} of {files} are scans: their text was read from the images, so names and figures "
        "there may hold recognition errors._",
    )


def scans_skipped_note(files: str, pages: str, cap: int, language: Language) -> str:
    return pick(
        language,
        f"_{files}的扫描页第 {pages} 页没有读（这次最多识别 {cap} 页扫描页）。_",
        f"_Scanned pages {pages} of {files} were not read (the limit this time was {cap} scanned pages)._",
    )


def scans_failed_note(files: str, pages: str, reason: str, language: Language) -> str:
    why = f"：{reason}" if reason and language == "zh" else f": {reason}" if reason else ""
    return pick(
        language,
        f"_{files}的扫描页第 {pages} 页没能识别{why}。_",
        f"_Scanned pages {pages} of {files} could not be read{why}._",
    )


def parts_failed_note(files: str, where: str, reason: str, language: Language) -> str:
    why = f"（{reason}）" if reason and language == "zh" else f" ({reason})" if reason else ""
    return pick(
        language,
        f"_{files}的{where}没能读到{why}。按“重新生成”可以再试，已读过的部分不会重读。_",
        f"_{where} of {files} could not be read{why}. Press Regenerate to try again: the parts already read are kept._",
    )


def press_ack(state: str, language: Language) -> str:
    """The toast for a go-ahead or cancel press on a job that is no longer waiting."""
    return {
        "running": pick(language, "已经在读了。", "Already reading it."),
        "done": pick(language, "已经读完了。", "Already read."),
        "cancelled": pick(language, "已经取消了。", "This was cancelled."),
    }.get(state, pick(language, "这个按钮已经失效。", "This button no longer works."))
