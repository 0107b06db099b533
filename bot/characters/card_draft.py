"""``/character new NAME: one line``: the model drafts a whole card as JSON, validated here.

As with copy (``bot.copywriting``): ask with ``response_format`` and the same shape in words
(some servers ignore ``response_format``), strip reasoning, extract and repair the JSON, map
field-name synonyms, check in code, and retry once with the problems quoted. Never show a
user raw JSON: ``DraftResult.reason`` words a failure for them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.characters.character import (
    DEFAULT_LIMITS,
    CardLimits,
    Character,
    CharacterError,
    Dialogue,
    ExampleLine,
    SpeechStyle,
    clean_list,
    clean_text,
    normalize_name,
    parse_examples,
    problems,
)
from bot.copywriting.structured import extract_json, strip_reasoning

SCHEMA_NAME = "character_card"
MAX_LINE_CHARS = 500


def parse_new_args(args: str) -> tuple[str, str]:
    """``NAME: one line`` → (name, line). Raises ``CharacterError`` with the usage."""
    match = re.match(r"(?P<name>[^:：\n]+)[:：](?P<line>.+)", args.strip(), re.DOTALL)
    name = normalize_name(match["name"]) if match else ""
    line = clean_text(match["line"]) if match else ""
    if not name or not line:
        raise CharacterError(
            "Usage: /character new NAME: who they are in one line — e.g. /character new Mochi: "
            "a sleepy rice-cake mascot who loves puns"
        )
    return name, line[:MAX_LINE_CHARS]


def draft_schema() -> dict[str, Any]:
    text = {"type": "string"}
    texts = {"type": "array", "items": text}
    line = {
        "type": "object",
        "additionalProperties": False,
        "required": ["speaker", "text"],
        "properties": {"speaker": {"type": "string", "enum": ["user", "char"]}, "text": text},
    }
    return {
        "type": "object",
        "additionalProperties": False,
        "required": [
            "identity",
            "personality",
            "speech_style",
            "background",
            "scenario",
            "boundaries",
            "example_dialogue",
            "first_message",
            "language",
        ],
        "properties": {
            "identity": text,
            "personality": text,
            "background": text,
            "scenario": text,
            "speech_style": {
                "type": "object",
                "additionalProperties": False,
                "required": ["vocabulary", "catchphrases", "punctuation", "emoji"],
                "properties": {"vocabulary": text, "catchphrases": texts, "punctuation": text, "emoji": text},
            },
            "boundaries": {**texts, "minItems": 1},
            "example_dialogue": {
                "type": "array",
                "minItems": 1,
                "items": {"type": "array", "minItems": 2, "items": line},
            },
            "first_message": text,
            "alternate_greetings": texts,
            "language": text,
            "tags": texts,
        },
    }


def response_format() -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": SCHEMA_NAME, "schema": draft_schema()}}


def draft_instruction(name: str, line: str) -> str:
    return (
        f"Draft a character card for “{name}”: {line}\n\n"
        "Write it in the language of that description. Make the voice specific enough to recognise without "
        "the name: real words and phrases it uses, its catchphrases, its punctuation and emoji habits. "
        "Boundaries are things it never says or does (stay brand-safe: no insults, no medical or financial "
        "promises, nothing offensive). Give 2–3 short example dialogues of 2–6 lines each, written as "
        'speaker "user" (whoever talks to it) or "char" (the character), and a first message that '
        "introduces it. Refer to the person it talks to as {{user}} when needed.\n\n"
        "Reply with only one JSON object, no prose and no code fences: "
        '{"identity": "one line: who this is", "personality": "…", "speech_style": {"vocabulary": "…", '
        '"catchphrases": ["…"], "punctuation": "…", "emoji": "…"}, "background": "…", "scenario": "where and '
        'with whom it usually talks", "boundaries": ["…"], "example_dialogue": [[{"speaker": "user", '
        '"text": "…"}, {"speaker": "char", "text": "…"}]], "first_message": "…", "alternate_greetings": '
        '["…"], "language": "the language it speaks, e.g. zh or en", "tags": ["…"]}'
    )


def draft_messages(name: str, line: str, *, base_system: str = "") -> list[dict[str, str]]:
    messages = [{"role": "system", "content": base_system}] if base_system.strip() else []
    return [*messages, {"role": "user", "content": draft_instruction(name, line)}]


def retry_instruction(found: Sequence[str]) -> str:
    return (
        "That card could not be used: " + "; ".join(found) + ". Write the whole card again and reply with "
        "only the JSON object."
    )


@dataclass(slots=True)
class DraftResult:
    character: Character | None
    problems: list[str] = field(default_factory=list)  # worded for the retry prompt

    @property
    def ok(self) -> bool:
        return self.character is not None and not self.problems

    @property
    def reason(self) -> str:
        """For the user when the retry failed too."""
        plain = [re.sub(r"\s*\([^)]*[{}][^)]*\)", "", p).replace("_", " ") for p in self.problems[:4]]
        return (
            "The model's draft could not be used (" + "; ".join(plain) + "). Try again, or describe the "
            "character a little more."
        )


_SYNONYMS = {
    "identity": ("identity", "one_line", "tagline", "summary", "身份", "一句话"),
    "personality": ("personality", "traits", "性格"),
    "speech_style": ("speech_style", "speech", "voice", "speaking_style", "说话风格", "语言风格"),
    "background": ("background", "description", "backstory", "背景"),
    "scenario": ("scenario", "setting", "场景"),
    "boundaries": ("boundaries", "never", "limits", "taboos", "边界", "禁忌"),
    "example_dialogue": ("example_dialogue", "examples", "example_dialogues", "dialogues", "mes_example", "示例对话"),
    "first_message": ("first_message", "first_mes", "greeting", "开场白"),
    "alternate_greetings": ("alternate_greetings", "greetings"),
    "language": ("language", "lang", "语言"),
    "tags": ("tags", "标签"),
}
_USER_WORDS = {"user", "{{user}}", "human", "fan", "customer", "you", "用户", "粉丝"}


def _get(obj: dict[str, Any], name: str) -> Any:
    lowered = {re.sub(r"[\s-]+", "_", str(k).strip().lower()): v for k, v in obj.items()}
    for key in _SYNONYMS[name]:
        if lowered.get(key) not in (None, "", [], {}):
            return lowered[key]
    return None


def _speech(raw: Any) -> SpeechStyle:
    if isinstance(raw, str):
        return SpeechStyle(vocabulary=clean_text(raw))
    if not isinstance(raw, dict):
        return SpeechStyle()
    lowered = {str(k).strip().lower(): v for k, v in raw.items()}
    return SpeechStyle(
        clean_text(lowered.get("vocabulary") or lowered.get("words")),
        clean_list(lowered.get("catchphrases") or lowered.get("catchphrase"), split=True),
        clean_text(lowered.get("punctuation")),
        clean_text(lowered.get("emoji")),
    )


def _examples(raw: Any, name: str) -> tuple[tuple[ExampleLine, ...], ...]:
    if isinstance(raw, str):
        return parse_examples(raw, name)
    if not isinstance(raw, list):
        return ()
    if raw and all(isinstance(x, dict) for x in raw):
        raw = [raw]  # one dialogue without the outer list
    dialogues: list[Dialogue] = []
    for d in raw:
        if isinstance(d, str):
            dialogues += parse_examples(d, name)
            continue
        if not isinstance(d, list):
            continue
        lines = []
        for x in d:
            if not isinstance(x, dict):
                continue
            who = str(x.get("speaker") or x.get("role") or x.get("name") or "").strip().lower()
            text = clean_text(x.get("text") or x.get("content") or x.get("line"))
            if text:
                lines.append(ExampleLine("user" if who in _USER_WORDS else "char", text))
        if lines:
            dialogues.append(tuple(lines))
    return tuple(dialogues)


def _one_line(raw: Any) -> str:
    return re.sub(r"\s*\n\s*", " ", clean_text(raw))


def _extract_object(text: str) -> Any:
    """The answer's JSON object. ``extract_json`` returns the first value that parses as is,
    which for an answer cut off mid-object is an inner list; the object, repaired, is wanted."""
    value = extract_json(text)
    start = text.find("{")
    if isinstance(value, dict) or start == -1:
        return value
    import json_repair  # only for broken answers (memory at start)

    try:
        repaired = json_repair.loads(text[start:])
    except Exception:  # noqa: BLE001 - best effort: no object here
        return value
    return repaired if isinstance(repaired, dict) and repaired else value


def parse_draft(text: str, name: str, *, limits: CardLimits = DEFAULT_LIMITS, creator: str = "") -> DraftResult:
    """A checked ``Character`` named ``name`` from the model's answer, or the problems."""
    value = _extract_object(strip_reasoning(text))
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict):
        value = value[0]
    if not isinstance(value, dict):
        return DraftResult(None, ["the answer contained no JSON object"])
    if isinstance(value.get("data"), dict):  # a whole card object, spec and all
        value = value["data"]
    name = normalize_name(name)
    raw_boundaries = _get(value, "boundaries")
    character = Character(
        name=name,
        identity=_one_line(_get(value, "identity")),
        personality=clean_text(_get(value, "personality")),
        speech=_speech(_get(value, "speech_style")),
        background=clean_text(_get(value, "background")),
        scenario=clean_text(_get(value, "scenario")),
        boundaries=clean_list(raw_boundaries.split("\n") if isinstance(raw_boundaries, str) else raw_boundaries),
        examples=_examples(_get(value, "example_dialogue"), name),
        first_message=clean_text(_get(value, "first_message")),
        alternate_greetings=clean_list(_get(value, "alternate_greetings")),
        language=_one_line(_get(value, "language"))[:32],
        tags=clean_list(_get(value, "tags"), split=True)[:12],
        creator=creator,
    )
    found = []
    for label, present in (
        ("identity", character.identity),
        ("personality", character.personality),
        ("speech_style", not character.speech.empty),
        ("background", character.background),
        ("boundaries", character.boundaries),
        ("first_message", character.first_message),
    ):
        if not present:
            found.append(f"missing {label}")
    if not any(line.speaker == "char" for d in character.examples for line in d):
        found.append("missing example_dialogue (dialogues of {speaker: user|char, text})")
    found += problems(character, limits)
    return DraftResult(character if not found else None, found)
