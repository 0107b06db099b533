"""The JSON shape of N variants for a style: schema, ``response_format`` and the same shape
spelled out in words (models that ignore ``response_format`` still read the prompt).

Length limits are not put into the schema: JSON Schema counts code points, platforms count
what users see, and a too-long variant is worth fixing rather than rejecting. They are
checked in code (constraints.py).
"""

from __future__ import annotations

from typing import Any

from bot.copywriting.styles import BODY, HASHTAGS, ITEMS, SEGMENTS, TITLE, Style

SCHEMA_NAME = "copy_variants"

_FIELD_HELP = {
    TITLE: "the title / headline line",
    BODY: "the main text, plain text with line breaks (emoji allowed)",
    HASHTAGS: "hashtags without the # sign",
    ITEMS: "one entry per list item",
    SEGMENTS: 'script segments in order, each with time (e.g. "0-3s"), visual and voice',
}


def variant_schema(style: Style) -> dict[str, Any]:
    """JSON Schema of one variant of ``style``."""
    props: dict[str, Any] = {}
    c = style.constraints
    for name in style.fields:
        if name in (TITLE, BODY):
            props[name] = {"type": "string", "description": _FIELD_HELP[name]}
        elif name == HASHTAGS:
            props[name] = {"type": "array", "items": {"type": "string"}, "description": _FIELD_HELP[name]}
        elif name == ITEMS:
            schema: dict[str, Any] = {"type": "array", "items": {"type": "string"}, "description": _FIELD_HELP[name]}
            if c.items_min:
                schema["minItems"] = c.items_min
            if c.items_max:
                schema["maxItems"] = c.items_max
            props[name] = schema
        elif name == SEGMENTS:
            props[name] = {
                "type": "array",
                "minItems": 1,
                "description": _FIELD_HELP[name],
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["time", "visual", "voice"],
                    "properties": {
                        "time": {"type": "string"},
                        "visual": {"type": "string"},
                        "voice": {"type": "string"},
                    },
                },
            }
    return {"type": "object", "additionalProperties": False, "required": list(style.fields), "properties": props}


def variants_schema(style: Style, n: int) -> dict[str, Any]:
    """JSON Schema of the whole answer: ``{"variants": [n variants]}``."""
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["variants"],
        "properties": {"variants": {"type": "array", "minItems": n, "maxItems": n, "items": variant_schema(style)}},
    }


def response_format(style: Style, n: int) -> dict[str, Any]:
    """The ``response_format`` for ChatRequest (OpenAI json_schema shape, no ``strict`` key)."""
    return {"type": "json_schema", "json_schema": {"name": SCHEMA_NAME, "schema": variants_schema(style, n)}}


def _example_value(name: str) -> str:
    return {
        TITLE: '"…"',
        BODY: '"…"',
        HASHTAGS: '["…", "…"]',
        ITEMS: '["…", "…"]',
        SEGMENTS: '[{"time": "0-3s", "visual": "…", "voice": "…"}]',
    }[name]


def format_instruction(style: Style, n: int) -> str:
    """The answer format in words, appended to the request (the volatile end of the prompt)."""
    example = "{" + ", ".join(f'"{f}": {_example_value(f)}' for f in style.fields) + "}"
    fields = "; ".join(f"{f}: {_FIELD_HELP[f]}" for f in style.fields)
    return (
        f"Write {n} distinct variant{'s' if n != 1 else ''} in the style {style.name_en} "
        f"({style.name_zh}), each respecting the platform limits. Reply with only one JSON object, "
        f'no prose and no code fences: {{"variants": [{example}, …]}} with exactly {n} '
        f"variant{'s' if n != 1 else ''}. Fields — {fields}."
    )
