"""A character: who it is, how it talks, what it never does, and the parts Character Cards
carry (the author's system prompt and post-history instructions, greetings, keyword lore).

Text fields keep the card placeholders ``{{char}}`` and ``{{user}}`` (so an exported card
works in other tools); ``prompt.py`` substitutes them. Every size is counted in estimated
tokens (``bot.core.tokens``): a card is a prompt, and it is paid for on every turn.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from bot.core.tokens import estimate_tokens

Speaker = Literal["user", "char"]
STORED_VERSION = 1  # the shape of ``Character.to_dict``; ``from_dict`` reads older ones


class CharacterError(ValueError):
    """A character cannot be used as given; ``str(exc)`` is worded for the user."""


class CharacterInvalid(CharacterError):
    """Missing parts or sizes over the limits; ``problems`` lists each one."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("The character doesn't fit: " + "; ".join(problems) + ".")


@dataclass(frozen=True, slots=True)
class ExampleLine:
    speaker: Speaker  # "user" (whoever talks to the character) or "char" (the character)
    text: str


Dialogue = tuple[ExampleLine, ...]


@dataclass(frozen=True, slots=True)
class SpeechStyle:
    vocabulary: str = ""  # word choice, register, dialect
    catchphrases: tuple[str, ...] = ()
    punctuation: str = ""  # habits: ellipses, exclamation marks, tildes…
    emoji: str = ""  # which emoji, how often

    @property
    def empty(self) -> bool:
        return not (self.vocabulary or self.catchphrases or self.punctuation or self.emoji)


@dataclass(frozen=True, slots=True)
class LoreEntry:
    """A ``character_book`` entry: text added to the prompt when one of its keys appears in the
    newest messages (or always, when ``constant``)."""

    keys: tuple[str, ...]
    content: str
    secondary_keys: tuple[str, ...] = ()
    selective: bool = False  # needs a key from both lists
    constant: bool = False  # always on: part of the stable prefix
    enabled: bool = True
    case_sensitive: bool = False
    use_regex: bool = False  # V3: keys are regular expressions (matched literally here)
    insertion_order: int = 100  # lower comes first
    priority: int = 0  # higher is kept first when the lore budget is short
    name: str = ""
    comment: str = ""
    position: str = ""  # before_char / after_char: kept for export

    @property
    def decorators(self) -> tuple[str, ...]:
        """V3 decorators: the ``@@name value`` lines that open the content."""
        found = []
        for line in self.content.split("\n"):
            if not line.startswith("@@"):
                break
            found.append(line[2:].lstrip("@").strip())
        return tuple(found)

    @property
    def body(self) -> str:
        """The content without its decorator lines: what reaches the prompt."""
        lines = self.content.split("\n")
        while lines and lines[0].startswith("@@"):
            lines.pop(0)
        return "\n".join(lines).strip()

    @property
    def always_on(self) -> bool:
        return self.enabled and (self.constant or any(d.split()[:1] == ["constant"] for d in self.decorators))

    @property
    def never_triggers(self) -> bool:
        return not self.enabled or any(d.split()[:1] == ["dont_activate"] for d in self.decorators)


@dataclass(frozen=True, slots=True)
class Character:
    name: str
    identity: str = ""  # one line: who this is
    personality: str = ""
    speech: SpeechStyle = SpeechStyle()
    background: str = ""
    scenario: str = ""
    boundaries: tuple[str, ...] = ()  # what it never says or does
    examples: tuple[Dialogue, ...] = ()
    first_message: str = ""
    alternate_greetings: tuple[str, ...] = ()
    language: str = ""  # "" follows the people it talks to
    nickname: str = ""
    # What cards carry besides:
    system_prompt: str = ""  # the card author's instructions; "{{original}}" means ours
    post_history_instructions: str = ""
    tags: tuple[str, ...] = ()
    creator: str = ""
    creator_notes: str = ""  # for people, never for the model
    character_version: str = ""
    lore: tuple[LoreEntry, ...] = ()
    lore_scan_depth: int = 2  # how many of the newest messages lore keys are looked for in
    # Other tools' card extensions, kept (only when small) so an export gives them back.
    extras: Mapping[str, Any] = field(default_factory=dict, hash=False)

    @property
    def key(self) -> str:
        return name_key(self.name)

    @property
    def tagline(self) -> str:
        """One line for lists: the identity, else the background's first sentence."""
        if self.identity:
            return self.identity
        first = re.split(r"(?<=[.!?。！？])\s*|\n", self.background.strip(), maxsplit=1)[0]
        return first if len(first) <= 120 else first[:119] + "…"

    def greetings(self) -> tuple[str, ...]:
        return tuple(g for g in (self.first_message, *self.alternate_greetings) if g)

    # --- storage (a JSON column) ---
    def to_dict(self) -> dict[str, Any]:
        return {
            "v": STORED_VERSION,
            "name": self.name,
            "identity": self.identity,
            "personality": self.personality,
            "speech": {
                "vocabulary": self.speech.vocabulary,
                "catchphrases": list(self.speech.catchphrases),
                "punctuation": self.speech.punctuation,
                "emoji": self.speech.emoji,
            },
            "background": self.background,
            "scenario": self.scenario,
            "boundaries": list(self.boundaries),
            "examples": [[{"speaker": line.speaker, "text": line.text} for line in d] for d in self.examples],
            "first_message": self.first_message,
            "alternate_greetings": list(self.alternate_greetings),
            "language": self.language,
            "nickname": self.nickname,
            "system_prompt": self.system_prompt,
            "post_history_instructions": self.post_history_instructions,
            "tags": list(self.tags),
            "creator": self.creator,
            "creator_notes": self.creator_notes,
            "character_version": self.character_version,
            "lore": [_lore_dict(e) for e in self.lore],
            "lore_scan_depth": self.lore_scan_depth,
            "extras": dict(self.extras),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Character:
        speech = data.get("speech") or {}
        return cls(
            name=str(data.get("name", "")),
            identity=_s(data.get("identity")),
            personality=_s(data.get("personality")),
            speech=SpeechStyle(
                _s(speech.get("vocabulary")),
                _strs(speech.get("catchphrases")),
                _s(speech.get("punctuation")),
                _s(speech.get("emoji")),
            ),
            background=_s(data.get("background")),
            scenario=_s(data.get("scenario")),
            boundaries=_strs(data.get("boundaries")),
            examples=tuple(
                tuple(
                    ExampleLine("user" if x.get("speaker") == "user" else "char", _s(x.get("text")))
                    for x in d
                    if isinstance(x, Mapping)
                )
                for d in data.get("examples") or ()
                if isinstance(d, list)
            ),
            first_message=_s(data.get("first_message")),
            alternate_greetings=_strs(data.get("alternate_greetings")),
            language=_s(data.get("language")),
            nickname=_s(data.get("nickname")),
            system_prompt=_s(data.get("system_prompt")),
            post_history_instructions=_s(data.get("post_history_instructions")),
            tags=_strs(data.get("tags")),
            creator=_s(data.get("creator")),
            creator_notes=_s(data.get("creator_notes")),
            character_version=_s(data.get("character_version")),
            lore=tuple(_lore_from(x) for x in data.get("lore") or () if isinstance(x, Mapping)),
            lore_scan_depth=int(data.get("lore_scan_depth") or 2),
            extras=dict(data.get("extras") or {}),
        )


def _s(value: Any) -> str:
    return value if isinstance(value, str) else ("" if value is None else str(value))


def _strs(value: Any) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)):
        return ()
    return tuple(_s(v) for v in value if _s(v))


def _lore_dict(e: LoreEntry) -> dict[str, Any]:
    return {
        "keys": list(e.keys),
        "content": e.content,
        "secondary_keys": list(e.secondary_keys),
        "selective": e.selective,
        "constant": e.constant,
        "enabled": e.enabled,
        "case_sensitive": e.case_sensitive,
        "use_regex": e.use_regex,
        "insertion_order": e.insertion_order,
        "priority": e.priority,
        "name": e.name,
        "comment": e.comment,
        "position": e.position,
    }


def _lore_from(x: Mapping[str, Any]) -> LoreEntry:
    return LoreEntry(
        keys=_strs(x.get("keys")),
        content=_s(x.get("content")),
        secondary_keys=_strs(x.get("secondary_keys")),
        selective=bool(x.get("selective")),
        constant=bool(x.get("constant")),
        enabled=x.get("enabled", True) is not False,
        case_sensitive=bool(x.get("case_sensitive")),
        use_regex=bool(x.get("use_regex")),
        insertion_order=int(x.get("insertion_order") or 0),
        priority=int(x.get("priority") or 0),
        name=_s(x.get("name")),
        comment=_s(x.get("comment")),
        position=_s(x.get("position")),
    )


# --- text hygiene ---

_INVISIBLE = re.compile("[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f\U000e0000-\U000e007f\u202a-\u202e\u2066-\u2069]")
_PLACEHOLDERS = (
    (re.compile(r"\{\{\s*char\s*\}\}|<bot>", re.IGNORECASE), "{{char}}"),
    (re.compile(r"\{\{\s*user\s*\}\}|<user>", re.IGNORECASE), "{{user}}"),
    (re.compile(r"\{\{\s*original\s*\}\}", re.IGNORECASE), "{{original}}"),
)


def clean_text(text: Any) -> str:
    """Card text as stored: newlines normalised, control and invisible tag characters (a
    prompt-injection channel) removed, placeholders in one spelling, ends trimmed."""
    if not isinstance(text, str):
        text = "" if text is None or isinstance(text, (dict, list)) else str(text)
    text = _INVISIBLE.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    for pattern, canonical in _PLACEHOLDERS:
        text = pattern.sub(canonical, text)
    return text.strip()


def clean_list(values: Any, *, split: bool = False) -> tuple[str, ...]:
    """A list of short texts (tags, catchphrases): cleaned, empties and repeats dropped. A
    plain string is one item, or split on commas and newlines when ``split``."""
    if isinstance(values, str):
        values = re.split(r"[,\n，、]", values) if split else [values]
    if not isinstance(values, (list, tuple)):
        return ()
    out = (clean_text(v) for v in values if isinstance(v, (str, int, float)))
    return tuple(dict.fromkeys(v for v in out if v))


_NAME_FORBIDDEN = re.compile(r"[,:，：;；\n\t]+")
NAME_CHARS = 64


def normalize_name(raw: Any) -> str:
    """A usable display name: one line, without the separators that commands use
    (``/scene A, B: …``), whitespace collapsed."""
    name = _NAME_FORBIDDEN.sub(" ", clean_text(raw))
    return re.sub(r"\s+", " ", name).strip(" .-_*")


def name_key(name: str) -> str:
    """What makes two names the same: Unicode-normalised, case-folded, spaces collapsed."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", name).casefold()).strip()


# --- example dialogue in the cards' text form ---

_START = re.compile(r"<start>", re.IGNORECASE)


def parse_examples(text: str, name: str = "") -> tuple[Dialogue, ...]:
    """``mes_example``: dialogues separated by ``<START>``, each line opened by ``{{user}}:``
    or ``{{char}}:`` (also ``<USER>``/``<BOT>``, the character's name, a full-width colon).
    Lines without a speaker continue the previous line; text before any speaker is the
    character's."""
    names = ["\\{\\{user\\}\\}", "<user>", "\\{\\{char\\}\\}", "<bot>"]
    if name:
        names.append(re.escape(name))
    speaker = re.compile(r"^\s*(" + "|".join(names) + r")\s*[:：]\s?", re.IGNORECASE)
    dialogues = []
    for block in _START.split(clean_text(text)):
        lines: list[list[str]] = []
        for raw in block.split("\n"):
            match = speaker.match(raw)
            if match:
                who = "user" if match.group(1).lower() in ("{{user}}", "<user>") else "char"
                lines.append([who, raw[match.end() :]])
            elif lines:
                lines[-1][1] += "\n" + raw
            elif raw.strip():
                lines.append(["char", raw])
        dialogue = tuple(
            ExampleLine("user" if who == "user" else "char", body.strip()) for who, body in lines if body.strip()
        )
        if dialogue:
            dialogues.append(dialogue)
    return tuple(dialogues)


def format_examples(dialogues: Iterable[Dialogue]) -> str:
    """The inverse of ``parse_examples``."""
    blocks = []
    for dialogue in dialogues:
        lines = [f"{{{{{line.speaker}}}}}: {line.text}" for line in dialogue]
        blocks.append("<START>\n" + "\n".join(lines))
    return "\n".join(blocks)


# --- sizes ---


@dataclass(frozen=True, slots=True)
class CardLimits:
    """Caps in estimated tokens (see ``bot.core.tokens``), operator-tunable."""

    identity_tokens: int = 150
    field_tokens: int = 3_000  # each text field
    examples_tokens: int = 3_000  # all example dialogues together
    prompt_tokens: int = 8_000  # everything a card puts into every prompt
    greetings: int = 20
    lore_entries: int = 300
    lore_entry_tokens: int = 1_000
    lore_tokens: int = 30_000  # stored lore in total (only triggered entries reach a prompt)
    constant_lore_tokens: int = 1_500  # always-on lore, part of every prompt
    tags: int = 30
    tag_chars: int = 48
    notes_tokens: int = 2_000  # creator notes: shown to people, not to the model
    extras_bytes: int = 32_768  # other tools' extensions kept for export


DEFAULT_LIMITS = CardLimits()

# Field names as users see them (and as /character edit will take them).
_PROMPT_FIELDS: tuple[tuple[str, str], ...] = (
    ("personality", "personality"),
    ("background", "background"),
    ("scenario", "scenario"),
    ("system_prompt", "system prompt"),
    ("post_history_instructions", "post-history instructions"),
    ("first_message", "first message"),
)


def _speech_text(speech: SpeechStyle) -> str:
    return "\n".join([speech.vocabulary, *speech.catchphrases, speech.punctuation, speech.emoji])


def examples_tokens(character: Character) -> int:
    return sum(estimate_tokens(line.text) + 4 for d in character.examples for line in d)


def constant_lore_tokens(character: Character) -> int:
    return sum(estimate_tokens(e.body) for e in character.lore if e.always_on)


def prompt_tokens(character: Character) -> int:
    """What the card puts into every prompt, in estimated tokens (the fixed framing the
    renderer adds around it is not counted: it is ours, not the card's)."""
    texts = [
        character.name,
        character.nickname,
        character.identity,
        character.personality,
        _speech_text(character.speech),
        character.background,
        character.scenario,
        "\n".join(character.boundaries),
        character.language,
        character.system_prompt,
        character.post_history_instructions,
    ]
    return sum(estimate_tokens(t) for t in texts) + examples_tokens(character) + constant_lore_tokens(character)


def problems(character: Character, limits: CardLimits = DEFAULT_LIMITS) -> list[str]:
    """Every way ``character`` is unusable or over a limit, one short sentence each."""
    out = []
    if not character.name:
        out.append("it has no name")
    elif len(character.name) > NAME_CHARS:
        out.append(f"the name is {len(character.name)} characters long; at most {NAME_CHARS}")
    elif normalize_name(character.name) != character.name:
        out.append("the name must be one line without commas, colons or semicolons")
    if "\n" in character.identity:
        out.append("the identity must be one line")
    if (n := estimate_tokens(character.identity)) > limits.identity_tokens:
        out.append(f"the identity is about {n:,} tokens; at most {limits.identity_tokens:,} (one line)")
    for attr, label in _PROMPT_FIELDS:
        if (n := estimate_tokens(getattr(character, attr))) > limits.field_tokens:
            out.append(f"the {label} is about {n:,} tokens; at most {limits.field_tokens:,}")
    for label, n in (
        ("speech style", estimate_tokens(_speech_text(character.speech))),
        ("boundaries", estimate_tokens("\n".join(character.boundaries))),
    ):
        if n > limits.field_tokens:
            out.append(f"the {label} is about {n:,} tokens; at most {limits.field_tokens:,}")
    if (n := examples_tokens(character)) > limits.examples_tokens:
        out.append(f"the example dialogue is about {n:,} tokens; at most {limits.examples_tokens:,}")
    if len(character.alternate_greetings) > limits.greetings:
        out.append(f"it has {len(character.alternate_greetings)} alternate greetings; at most {limits.greetings}")
    if any(estimate_tokens(g) > limits.field_tokens for g in character.alternate_greetings):
        out.append(f"an alternate greeting is over {limits.field_tokens:,} tokens")
    if len(character.lore) > limits.lore_entries:
        out.append(f"it has {len(character.lore)} lore entries; at most {limits.lore_entries}")
    if any(estimate_tokens(e.content) > limits.lore_entry_tokens for e in character.lore):
        out.append(f"a lore entry is over {limits.lore_entry_tokens:,} tokens")
    if (n := sum(estimate_tokens(e.content) for e in character.lore)) > limits.lore_tokens:
        out.append(f"the lore is about {n:,} tokens; at most {limits.lore_tokens:,}")
    if (n := constant_lore_tokens(character)) > limits.constant_lore_tokens:
        out.append(f"the always-on lore is about {n:,} tokens; at most {limits.constant_lore_tokens:,}")
    if len(character.tags) > limits.tags or any(len(t) > limits.tag_chars for t in character.tags):
        out.append(f"at most {limits.tags} tags of {limits.tag_chars} characters")
    if (n := estimate_tokens(character.creator_notes)) > limits.notes_tokens:
        out.append(f"the creator notes are about {n:,} tokens; at most {limits.notes_tokens:,}")
    if (n := _json_size(character.extras)) > limits.extras_bytes:
        out.append(f"the kept extensions take {n:,} bytes; at most {limits.extras_bytes:,}")
    if (n := prompt_tokens(character)) > limits.prompt_tokens:
        out.append(f"the card would put about {n:,} tokens into every prompt; at most {limits.prompt_tokens:,}")
    return out


def check(character: Character, limits: CardLimits = DEFAULT_LIMITS) -> Character:
    """``character`` when it is usable and within ``limits``; ``CharacterInvalid`` otherwise."""
    found = problems(character, limits)
    if found:
        raise CharacterInvalid(found)
    return character


def _json_size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


def truncate_tokens(text: str, max_tokens: int) -> str:
    """The longest prefix of ``text`` within ``max_tokens`` (ending with "…" when cut)."""
    if estimate_tokens(text) <= max_tokens:
        return text
    lo, hi = 0, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if estimate_tokens(text[:mid]) + 1 <= max_tokens:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo].rstrip() + "…"


def fit(character: Character, limits: CardLimits = DEFAULT_LIMITS) -> tuple[Character, list[str]]:
    """Trim what an import can lose without changing who the character is — lore beyond the
    budget, surplus greetings and tags, long creator notes, bulky extensions — and say what
    went. The fields that make the voice are left to ``check``: cutting them silently would
    change the character."""
    notes = []
    greetings = [g for g in character.alternate_greetings if estimate_tokens(g) <= limits.field_tokens]
    if len(greetings) > limits.greetings:
        greetings = greetings[: limits.greetings]
    if len(greetings) < len(character.alternate_greetings):
        notes.append(f"kept {len(greetings)} of {len(character.alternate_greetings)} alternate greetings")
    lore, total, constant = [], 0, 0
    skipped = 0
    # Higher priority first, then the card's own order; the kept ones stay in card order.
    ranked = sorted(range(len(character.lore)), key=lambda i: (-character.lore[i].priority, i))
    keep: set[int] = set()
    for i in ranked:
        entry = character.lore[i]
        cost = estimate_tokens(entry.content)
        always = entry.always_on
        if (
            not entry.body
            or (not entry.keys and not always)
            or cost > limits.lore_entry_tokens
            or total + cost > limits.lore_tokens
            or len(keep) >= limits.lore_entries
            or (always and constant + estimate_tokens(entry.body) > limits.constant_lore_tokens)
        ):
            skipped += 1
            continue
        keep.add(i)
        total += cost
        constant += estimate_tokens(entry.body) if always else 0
    lore = [e for i, e in enumerate(character.lore) if i in keep]
    if skipped:
        notes.append(
            f"kept {len(lore)} of {len(character.lore)} lore entries (about {total:,} tokens; "
            "empty, keyless or over-budget ones were left out)"
        )
    tags = tuple(t for t in character.tags if len(t) <= limits.tag_chars)[: limits.tags]
    if len(tags) < len(character.tags):
        notes.append(f"kept {len(tags)} of {len(character.tags)} tags")
    creator_notes = truncate_tokens(character.creator_notes, limits.notes_tokens)
    if creator_notes != character.creator_notes:
        notes.append("shortened the creator notes")
    extras = character.extras
    if _json_size(extras) > limits.extras_bytes:
        extras = {}
        notes.append("left out other tools' extensions (too large to keep)")
    fitted = replace(
        character,
        alternate_greetings=tuple(greetings),
        lore=tuple(lore),
        tags=tags,
        creator_notes=creator_notes,
        extras=extras,
    )
    return fitted, notes


# --- editing one field (/character edit NAME FIELD: text) ---

EDITABLE: dict[str, str] = {
    "name": "name",
    "identity": "identity",
    "personality": "personality",
    "background": "background",
    "scenario": "scenario",
    "vocabulary": "vocabulary",
    "catchphrases": "catchphrases",
    "punctuation": "punctuation",
    "emoji": "emoji",
    "boundaries": "boundaries",
    "examples": "examples",
    "example": "examples",
    "greeting": "first_message",
    "first_message": "first_message",
    "first": "first_message",
    "greetings": "alternate_greetings",
    "language": "language",
    "nickname": "nickname",
    "system_prompt": "system_prompt",
    "system": "system_prompt",
    "post_history": "post_history_instructions",
    "post_history_instructions": "post_history_instructions",
    "tags": "tags",
    "名字": "name",
    "身份": "identity",
    "性格": "personality",
    "背景": "background",
    "场景": "scenario",
    "用词": "vocabulary",
    "口头禅": "catchphrases",
    "标点": "punctuation",
    "表情": "emoji",
    "边界": "boundaries",
    "示例": "examples",
    "开场白": "first_message",
    "语言": "language",
    "标签": "tags",
}


def edit(character: Character, field_name: str, value: str, limits: CardLimits = DEFAULT_LIMITS) -> Character:
    """``character`` with one field replaced from the user's text, checked. List fields take
    one item per line; ``examples`` takes the cards' ``<START>`` / ``{{user}}:`` form."""
    target = EDITABLE.get(re.sub(r"[\s-]+", "_", field_name.strip().lower()))
    if target is None:
        raise CharacterError(
            f"There is no field “{field_name}”. Fields: "
            + ", ".join(sorted({k for k in EDITABLE if k.isascii()}))
            + "."
        )
    text = clean_text(value)
    lines = tuple(dict.fromkeys(ln.strip(" -•\t") for ln in text.split("\n") if ln.strip(" -•\t")))
    if target == "name":
        updated = replace(character, name=normalize_name(text))
    elif target in ("vocabulary", "punctuation", "emoji"):
        style: dict[str, Any] = {target: text}  # a field named at run time
        updated = replace(character, speech=replace(character.speech, **style))
    elif target == "catchphrases":
        updated = replace(character, speech=replace(character.speech, catchphrases=lines))
    elif target in ("boundaries", "alternate_greetings", "tags"):
        listed: dict[str, Any] = {target: lines}
        updated = replace(character, **listed)
    elif target == "examples":
        updated = replace(character, examples=parse_examples(text, character.name))
    else:
        field_text: dict[str, Any] = {target: text}
        updated = replace(character, **field_text)
    return check(updated, limits)
