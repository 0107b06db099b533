"""One piece of copy, whatever its style: the fields a style uses are filled, the rest empty.

``Variant.from_raw`` accepts what models actually send: field-name synonyms (content/text for
body, tags/topics for hashtags…), hashtags as one string, numbers as strings. It only
renames and coerces shapes; ``schema.validate_variant`` decides whether the result is usable.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from bot.copywriting.measure import normalize_hashtag

_SYNONYMS = {
    "title": ("title", "headline", "标题", "heading", "name", "angle", "角度"),
    "body": ("body", "content", "text", "正文", "内容", "copy", "post", "caption", "文案"),
    "hashtags": ("hashtags", "tags", "topics", "hashtag", "话题", "标签", "话题标签"),
    "items": ("items", "points", "selling_points", "headlines", "bullets", "list", "卖点", "标题列表"),
    "segments": ("segments", "script", "scenes", "shots", "timeline", "脚本", "分镜"),
}
_SEGMENT_SYNONYMS = {
    "time": ("time", "timing", "timecode", "cue", "时间", "时间节点"),
    "visual": ("visual", "scene", "shot", "画面", "镜头", "visuals"),
    "voice": ("voice", "line", "voiceover", "voice_over", "narration", "口播", "台词", "lines", "text"),
}


@dataclass(slots=True)
class Segment:
    time: str
    visual: str
    voice: str


@dataclass(slots=True)
class Variant:
    title: str = ""
    body: str = ""
    hashtags: list[str] = field(default_factory=list)
    items: list[str] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; what the core stores (e.g. in a part's ``data``) for refinement."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Variant:
        """Inverse of ``to_dict`` (tolerant: this is ``from_raw``)."""
        return cls.from_raw(data)

    @classmethod
    def from_raw(cls, raw: dict[str, Any]) -> Variant:
        """Normalise one model-written object."""
        lowered = {str(k).strip().lower(): v for k, v in raw.items()}
        values: dict[str, Any] = {}
        for name, keys in _SYNONYMS.items():
            for key in keys:
                if key in lowered and lowered[key] not in (None, ""):
                    values[name] = lowered[key]
                    break
        return cls(
            title=_text(values.get("title")),
            body=_text(values.get("body")),
            hashtags=_hashtags(values.get("hashtags")),
            items=[_text(i) for i in _as_list(values.get("items")) if _text(i)],
            segments=[s for s in (_segment(x) for x in _as_list(values.get("segments"))) if s],
        )


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return "\n".join(_text(v) for v in value)
    if isinstance(value, dict):  # {"point": "…", "detail": "…"} -> "point：detail"
        return "：".join(_text(v) for v in value.values() if _text(v))
    return str(value).strip()


def _as_list(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, str):
        return [line for line in (raw.strip().lstrip("-•*·").strip() for raw in value.splitlines()) if line]
    return [value]


def _hashtags(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [t for t in re.split(r"[#＃\s,，、;；]+", value) if t]
    tags = [normalize_hashtag(_text(t)) for t in _as_list(value)]
    return list(dict.fromkeys(t for t in tags if t))


def _segment(value: Any) -> Segment | None:
    if isinstance(value, dict):
        lowered = {str(k).strip().lower(): v for k, v in value.items()}
        got = {}
        for name, keys in _SEGMENT_SYNONYMS.items():
            got[name] = next((_text(lowered[k]) for k in keys if k in lowered), "")
        if got["voice"] or got["visual"]:
            return Segment(**got)
        return None
    text = _text(value)
    return Segment(time="", visual="", voice=text) if text else None
