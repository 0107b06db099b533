"""Scenes: ``/scene A, B: situation`` — a dialogue between several characters, each line in
its own voice, asked for as JSON and rendered as a Markdown script (speaker names bold,
stage directions in italics, timing cues when the chat's copy style is a short-video script).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.characters.character import Character, CharacterError, name_key, normalize_name
from bot.characters.voice_prompt import character_sheet, defuse, substitute, user_label_for
from bot.copywriting.structured import extract_json, strip_reasoning

MAX_CAST = 6
MAX_LINES = 60
LINE_CHARS = 600
NARRATOR = "narrator"
_NARRATOR_WORDS = {"narrator", "narration", "stage", "direction", "旁白", "舞台指示", "画面", "场景", "", "-"}
_SCRIPT_WORDS = re.compile(r"短视频|口播|分镜|抖音|快手|视频号|video script|tiktok|reels|shorts", re.IGNORECASE)
DEFAULT_SCRIPT_SECONDS = 60
SCHEMA_NAME = "scene"


@dataclass(frozen=True, slots=True)
class SceneRequest:
    names: tuple[str, ...]
    situation: str


SCENE_USAGE = "Usage: /scene NAME, NAME: the situation — e.g. /scene Mochi, Captain Bao: the new flavour launches"


def parse_scene_args(args: str) -> SceneRequest:
    """``A, B: situation`` (commas or 、 between names; a colon, full-width too, before the
    situation). Raises ``CharacterError`` with the usage for anything else."""
    match = re.match(r"(?P<names>[^:：]+)[:：](?P<situation>.*)", args.strip(), re.DOTALL)
    if match is None or not match["situation"].strip():
        raise CharacterError(SCENE_USAGE)
    situation = match["situation"]
    names = tuple(dict.fromkeys(n for n in (normalize_name(x) for x in re.split(r"[,，、&]", match["names"])) if n))
    if len(names) < 2:
        raise CharacterError("A scene needs at least two characters. " + SCENE_USAGE)
    if len(names) > MAX_CAST:
        raise CharacterError(f"A scene takes at most {MAX_CAST} characters.")
    return SceneRequest(names, situation.strip())


def script_seconds(stored_style: str | None) -> int | None:
    """The length cap when the chat's copy style is a short-video script (built-in styles
    with timed segments, or a custom style that says so), else None: no timing cues."""
    from bot.copywriting.styles import SEGMENTS, resolve_style

    style = resolve_style(stored_style)
    if style is None:
        return None
    if SEGMENTS in style.fields:
        return style.constraints.script_seconds_max or DEFAULT_SCRIPT_SECONDS
    if style.custom_text and _SCRIPT_WORDS.search(style.custom_text):
        return style.constraints.script_seconds_max or DEFAULT_SCRIPT_SECONDS
    return None


# --- asking ---


def _voice_samples(c: Character, user_label: str, limit: int = 4) -> list[str]:
    lines = [substitute(line.text, c.name, user_label) for d in c.examples for line in d if line.speaker == "char"]
    if c.first_message and len(lines) < limit:
        lines.append(substitute(c.first_message, c.name, user_label))
    return [ln for ln in lines if ln][:limit]


def cast_block(cast: Sequence[Character]) -> str:
    """Every cast member's sheet and a few of its own lines, in name order (the same cast
    gives the same bytes, so repeated scenes share a cached prefix)."""
    blocks = ["## Cast\nThe characters in scenes you write. Each speaks only in its own voice."]
    for c in sorted(cast, key=lambda c: c.key):
        user = user_label_for(c)
        block = character_sheet(c, user)
        samples = _voice_samples(c, user)
        if samples:
            block += f"\nHow {defuse(c.name)} sounds:\n" + "\n".join(f"- “{s}”" for s in samples)
        blocks.append(block)
    return "\n\n".join(blocks)


def scene_schema(cast: Sequence[Character], timing_seconds: int | None = None) -> dict[str, Any]:
    line_required = ["speaker", "text", *(["timing"] if timing_seconds else [])]
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["lines"],
        "properties": {
            "title": {"type": "string"},
            "lines": {
                "type": "array",
                "minItems": 2,
                "maxItems": MAX_LINES,
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": line_required,
                    "properties": {
                        "speaker": {"type": "string", "enum": [c.name for c in cast] + [NARRATOR]},
                        "text": {"type": "string"},
                        "direction": {"type": "string"},
                        "timing": {"type": "string"},
                    },
                },
            },
        },
    }


def response_format(cast: Sequence[Character], timing_seconds: int | None = None) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": SCHEMA_NAME, "schema": scene_schema(cast, timing_seconds)}}


def scene_instruction(cast: Sequence[Character], situation: str, timing_seconds: int | None = None) -> str:
    names = ", ".join(c.name for c in cast)
    parts = [
        f"Write a scene: a dialogue between {names}.",
        f'Situation:\n"""\n{situation.strip()}\n"""',
        "Every line is spoken by one of them in their own voice (vocabulary, catchphrases, punctuation, emoji, "
        "boundaries from their sheets): a reader should know who speaks without the name. Let them react to each "
        "other; everyone speaks at least once. 6–20 lines.",
        'Put actions, expressions and pauses in "direction" (short), never inside "text". A line that is '
        f'only a stage direction has speaker "{NARRATOR}" and empty text.',
    ]
    if timing_seconds:
        parts.append(
            f'This is a short-video script: give every line a "timing" cue such as "0-3s", in '
            f"order, the whole scene at most {timing_seconds} seconds (about 4–5 Chinese characters or "
            "2–3 English words per second), with a hook in the first 3 seconds."
        )
    example = '{"speaker": "…", "text": "…", "direction": "…"' + (', "timing": "0-3s"' if timing_seconds else "") + "}"
    parts.append(
        "Reply with only one JSON object, no prose and no code fences: "
        f'{{"title": "…", "lines": [{example}, …]}}. "speaker" is exactly one of: {names}, {NARRATOR}.'
    )
    return "\n\n".join(parts)


def scene_messages(
    cast: Sequence[Character], situation: str, *, base_system: str = "", timing_seconds: int | None = None
) -> list[dict[str, str]]:
    """The whole request: our system text and the cast (stable), then the ask (volatile)."""
    system = "\n\n".join(p for p in (base_system.strip(), cast_block(cast)) if p)
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": scene_instruction(cast, situation, timing_seconds)},
    ]


def retry_instruction(problems: Sequence[str]) -> str:
    return (
        "Your scene could not be used: " + "; ".join(problems) + ". Write it again and reply with only the JSON object."
    )


# --- reading the answer ---


@dataclass(frozen=True, slots=True)
class SceneLine:
    speaker: str  # a cast member's name, or "" for a stage direction or narration
    text: str
    direction: str = ""
    timing: str = ""


@dataclass(frozen=True, slots=True)
class Scene:
    title: str
    lines: tuple[SceneLine, ...]


@dataclass(slots=True)
class SceneParse:
    scene: Scene | None
    problems: list[str] = field(default_factory=list)  # worded for the retry prompt

    @property
    def ok(self) -> bool:
        return self.scene is not None and not self.problems


_KEYS = {
    "speaker": ("speaker", "name", "character", "role", "who", "角色", "说话人", "人物"),
    "text": ("text", "line", "dialogue", "content", "says", "台词", "对白", "内容"),
    "direction": ("direction", "stage_direction", "action", "directions", "动作", "舞台指示", "表情"),
    "timing": ("timing", "time", "cue", "timecode", "时间", "时间节点"),
}


def _field(obj: dict[str, Any], name: str) -> str:
    lowered = {str(k).strip().lower(): v for k, v in obj.items()}
    for key in _KEYS[name]:
        value = lowered.get(key)
        if isinstance(value, (str, int, float)) and str(value).strip():
            return str(value).strip()
    return ""


def _lines_of(value: Any) -> list[Any] | None:
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        for key in ("lines", "script", "dialogue", "scene", "台词", "剧本"):
            found = value.get(key)
            if isinstance(found, list):
                return found
            if isinstance(found, dict):
                return _lines_of(found)
    return None


def _seconds(timing: str) -> float | None:
    numbers = re.findall(r"\d+(?:\.\d+)?", timing.replace("：", ":"))
    if not numbers:
        return None
    if ":" in timing:  # 00:03-00:07
        clock = re.findall(r"(\d+):(\d+(?:\.\d+)?)", timing.replace("：", ":"))
        if clock:
            m, s = clock[-1]
            return int(m) * 60 + float(s)
    return float(numbers[-1])


def parse_scene(text: str, cast: Sequence[Character], *, timing_seconds: int | None = None) -> SceneParse:
    """A validated scene from the model's answer. Never raises: what is usable comes back
    with the problems worded for a retry."""
    value = extract_json(strip_reasoning(text))
    if value is None:
        return SceneParse(None, ["the answer contained no JSON object"])
    raw_lines = _lines_of(value)
    if not raw_lines:
        return SceneParse(None, ['no lines found: expected {"lines": [...]}'])
    names = {}
    for c in cast:
        names[c.key] = c.name
        if c.nickname:
            names.setdefault(name_key(c.nickname), c.name)
    problems: list[str] = []
    lines: list[SceneLine] = []
    unknown, untimed = [], []
    for number, obj in enumerate(raw_lines[:MAX_LINES], 1):
        if not isinstance(obj, dict):
            problems.append(f"line {number} is not an object")
            continue
        said = _field(obj, "text")[:LINE_CHARS]
        direction = _field(obj, "direction")[:LINE_CHARS]
        timing = _field(obj, "timing")[:24]
        who = name_key(_field(obj, "speaker").strip("*：: "))
        if who in _NARRATOR_WORDS:
            speaker = ""
            direction, said = " ".join(p for p in (direction, said) if p), ""
        else:
            speaker = names.get(who) or next((n for k, n in names.items() if who.startswith(k)), "")
            if not speaker:
                unknown.append(f"“{_field(obj, 'speaker')}” (line {number})")
                continue
        if not said and not direction:
            continue
        if timing_seconds and not timing:
            untimed.append(str(number))
        lines.append(SceneLine(speaker, said, direction, timing))
    if unknown:
        problems.append("speakers not in the cast (" + ", ".join(c.name for c in cast) + "): " + ", ".join(unknown))
    spoken = [ln for ln in lines if ln.speaker and ln.text]
    if len(spoken) < 2:
        problems.append("the scene needs at least two spoken lines")
    silent = [c.name for c in cast if c.name not in {ln.speaker for ln in spoken}]
    if silent and spoken:
        problems.append("these characters never speak: " + ", ".join(silent))
    if untimed:
        problems.append("lines without a timing cue: " + ", ".join(untimed))
    if timing_seconds and lines:
        last = max((s for s in (_seconds(ln.timing) for ln in lines if ln.timing) if s is not None), default=0)
        if last > timing_seconds * 1.1:
            problems.append(f"the scene runs to {last:g} s; at most {timing_seconds} s")
    title = value["title"].strip()[:120] if isinstance(value, dict) and isinstance(value.get("title"), str) else ""
    return SceneParse(Scene(title, tuple(lines)) if spoken else None, problems)


# --- rendering ---

_BRACKETS = "()（）[]【】*_ "


def _direction(text: str, zh: bool) -> str:
    inner = text.replace("*", "").replace("_", " ").strip(_BRACKETS)
    return f"*（{inner}）*" if zh else f"*({inner})*"


def _is_zh(scene: Scene) -> bool:
    sample = "".join(ln.text + ln.direction for ln in scene.lines)[:600]
    cjk = sum(1 for ch in sample if "\u3040" <= ch <= "\u9fff")
    return bool(sample) and cjk * 4 >= len(sample.replace(" ", ""))


def render_scene(scene: Scene, *, timing: bool = False) -> str:
    """The scene as a Markdown script: a bold title line, then one line per speech
    (``**Name**: *(direction)* text``) or stage direction (in italics), each opened by its
    timing cue when ``timing``."""
    zh = _is_zh(scene)
    colon = "：" if zh else ": "
    out = [f"**🎬 {scene.title}**"] if scene.title else []
    for line in scene.lines:
        cue = f"`{line.timing}` " if timing and line.timing else ""
        direction = _direction(line.direction, zh) if line.direction else ""
        if not line.speaker:
            out.append(f"{cue}{direction}".rstrip())
        else:
            out.append(f"{cue}**{line.speaker}**{colon}" + " ".join(p for p in (direction, line.text) if p))
    # Blank lines between lines: every renderer (Telegram entities, Slack, the console) keeps them.
    return "\n\n".join(out)
