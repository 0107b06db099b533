"""Character Cards in and out: V1 (flat), V2 (``chara_card_v2``) and V3 (``chara_card_v3``)
as JSON or inside a PNG; export as V2 JSON or a V2 PNG.

A PNG card carries base64 JSON in a text chunk named ``chara`` (V2) and/or ``ccv3`` (V3).
Real exports carry both and some put V3 JSON in ``chara``, so the ``spec`` inside decides,
and V3 wins when both are there. Chunks are read with Pillow's PNG chunk reader without
decoding a single pixel (an image bomb costs nothing to read a card from); the picture is
decoded only to keep a small avatar, and only after its size is checked.

An imported card is data. Nothing in it maps to a setting of the bot: it becomes a
``Character`` (whose ``system_prompt`` the prompt frames as the character's instructions
inside our own prefix), and other tools' extensions are kept, opaque, only for export.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import re
import struct
import warnings
import zlib
from dataclasses import dataclass
from typing import Any, Literal

from bot.characters.character import (
    DEFAULT_LIMITS,
    CardLimits,
    Character,
    CharacterError,
    LoreEntry,
    SpeechStyle,
    check,
    clean_list,
    clean_text,
    fit,
    format_examples,
    normalize_name,
    parse_examples,
)
from bot.core.tokens import estimate_tokens

Spec = Literal["chara_card_v3", "chara_card_v2", "v1"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CARD_CHUNKS = ("ccv3", "chara")  # read in this order; the spec inside decides
EXTENSION_KEY = "chatbot"  # our fields other tools have no place for, inside data.extensions
MAX_PNG_BYTES = 20 * 1024 * 1024  # what Telegram lets a bot download
MAX_JSON_BYTES = 8 * 1024 * 1024  # a real lorebook-heavy card is ~1 MB
AVATAR_MAX_PIXELS = 16_000_000  # decoded only below this (64 MB as RGBA)
AVATAR_SIDE = 1024  # the kept avatar is scaled down to this
AVATAR_MAX_BYTES = 2 * 1024 * 1024
IDENTITY_LINE_TOKENS = 100  # a description's first line this short reads as the identity


class CardError(CharacterError):
    """The file is not a card we can read; ``str(exc)`` says why, for the user."""


@dataclass(frozen=True, slots=True)
class ImportedCard:
    character: Character
    spec: Spec
    avatar: bytes | None  # a clean PNG (no card chunks), when the card came as a usable image
    notes: tuple[str, ...]  # what the import left out or changed, for the user


# --- reading ---


def read_card(data: bytes, filename: str = "", *, limits: CardLimits = DEFAULT_LIMITS) -> ImportedCard:
    """A card file (PNG or JSON) as a checked ``Character``. Raises ``CardError`` for a file
    that is not a readable card, ``CharacterInvalid`` for one over the limits."""
    label = f"“{filename}”" if filename else "The file"
    if not data:
        raise CardError(f"{label} is empty.")
    notes: list[str] = []
    avatar = None
    if data.startswith(PNG_SIGNATURE):
        if len(data) > MAX_PNG_BYTES:
            raise CardError(
                f"{label} is {len(data) / 1_048_576:.1f} MB; PNG cards up to {MAX_PNG_BYTES // 1_048_576} MB are read."
            )
        obj = _best_card(_png_texts(data, label), label)
        avatar = _clean_avatar(data, notes)
    elif data.startswith(b"PK\x03\x04"):
        raise CardError(f"{label} looks like a CHARX (zip) card, which isn't supported; export it as PNG or JSON.")
    else:
        if len(data) > MAX_JSON_BYTES:
            raise CardError(
                f"{label} is {len(data) / 1_048_576:.1f} MB; JSON cards up to "
                f"{MAX_JSON_BYTES // 1_048_576} MB are read."
            )
        obj = _json_object(data, label)
    character, spec = card_to_character(obj, notes)
    character, trimmed = fit(character, limits)
    check(character, limits)
    return ImportedCard(character, spec, avatar, tuple(notes + trimmed))


def looks_like_card(data: bytes, filename: str = "", mime: str = "") -> bool:
    """Whether a received file should be offered for import (a PNG with a card chunk, or a
    JSON object shaped like a card) rather than read as an image or a document."""
    try:
        if data.startswith(PNG_SIGNATURE):
            return len(data) <= MAX_PNG_BYTES and any(k in _png_texts(data, "") for k in CARD_CHUNKS)
        if not (filename.lower().endswith(".json") or "json" in mime) or len(data) > MAX_JSON_BYTES:
            return False
        obj = _json_object(data, "")
    except CardError:
        return False
    return _spec_of(obj) is not None


def _png_texts(data: bytes, label: str) -> dict[str, str]:
    """The text chunks (tEXt, zTXt, iTXt) anywhere in the file, pixels never decoded. Pillow
    reads the chunks and applies its limits (decompressed text, total text memory)."""
    from PIL import PngImagePlugin  # on first use only: most processes never see a card

    fp = io.BytesIO(data)
    fp.seek(len(PNG_SIGNATURE))
    stream = PngImagePlugin.PngStream(fp)
    try:
        while True:
            try:
                cid, pos, length = stream.read()
            except (struct.error, SyntaxError):
                break  # truncated or garbage after the last good chunk: use what was read
            if cid == b"IEND" or pos + length > len(data):
                break
            if cid in (b"tEXt", b"zTXt", b"iTXt"):
                try:
                    chunk = stream.call(cid, pos, length)
                    stream.crc(cid, chunk)
                except (ValueError, SyntaxError, OSError, zlib.error, UnicodeError):
                    pass  # a damaged or oversized text chunk: the others may still hold the card
            fp.seek(pos + length + 4)  # past the data and its CRC, decoded or not
        return {str(k): str(v) for k, v in stream.im_text.items()}
    finally:
        stream.close()


def _decode_payload(value: str) -> Any:
    """A chunk's card: base64 of UTF-8 JSON (the spec), or JSON written as is (some tools)."""
    text = value.strip()
    if not text.startswith("{"):
        compact = re.sub(r"\s+", "", text)
        try:
            raw = base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)
        except (binascii.Error, ValueError):
            try:
                raw = base64.urlsafe_b64decode(compact + "=" * (-len(compact) % 4))
            except (binascii.Error, ValueError):
                raise CardError("the card data in the image is not valid base64") from None
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise CardError("the card data in the image is not UTF-8 text") from None
    elif all(ord(ch) < 256 for ch in text):  # tEXt is Latin-1 by definition; cards put UTF-8 in it
        try:
            text = text.encode("latin-1").decode("utf-8")
        except UnicodeDecodeError:
            pass
    return _parse_json(text, "the card data in the image")


def _best_card(texts: dict[str, str], label: str) -> dict[str, Any]:
    found: list[tuple[int, dict[str, Any]]] = []
    first_error: CardError | None = None
    for key in CARD_CHUNKS:
        value = next((v for k, v in texts.items() if k.lower() == key), None)
        if value is None:
            continue
        try:
            obj = _decode_payload(value)
            spec = _spec_of(obj)
            if spec is None:
                raise CardError(f"the “{key}” chunk holds no character card")
        except CardError as exc:
            first_error = first_error or exc
            continue
        found.append(({"chara_card_v3": 0, "chara_card_v2": 1}.get(spec, 2), obj))
    if found:
        return min(found, key=lambda item: item[0])[1]  # V3 over V2 over V1; ccv3 chunk first on ties
    if first_error is not None:
        raise CardError(f"{label} carries a character card that can't be read: {first_error}.")
    raise CardError(f"{label} is a PNG without a character card in it (no “chara” or “ccv3” text chunk).")


def _parse_json(text: str, what: str) -> dict[str, Any]:
    try:
        obj = json.loads(text)
    except RecursionError:
        raise CardError(f"{what} is nested too deeply to be a card") from None
    except ValueError as exc:
        line = getattr(exc, "lineno", None)
        raise CardError(f"{what} is not valid JSON" + (f" (line {line})" if line else "")) from None
    if not isinstance(obj, dict):
        raise CardError(f"{what} is JSON, but not an object")
    return obj


def _json_object(data: bytes, label: str) -> dict[str, Any]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CardError(f"{label} is neither a PNG nor UTF-8 JSON.") from None
    if not text.lstrip().startswith("{"):
        raise CardError(f"{label} is not a character card (expected a JSON object or a PNG image).")
    try:
        return _parse_json(text, label)
    except CardError as exc:
        raise CardError(f"{exc}.") from None


def _spec_of(obj: Any) -> Spec | None:
    if not isinstance(obj, dict):
        return None
    spec = str(obj.get("spec") or "").lower()
    data = obj.get("data")
    if isinstance(data, dict) and (spec.startswith("chara_card_v") or "name" in data):
        # No spec (but a card-shaped "data") reads as V2; V3 and anything newer as V3.
        return "chara_card_v2" if spec in ("", "chara_card_v2") else "chara_card_v3"
    if "name" in obj or "char_name" in obj:
        return "v1"
    return None


# --- mapping a card to a Character ---


def _mapping(value: Any) -> dict[str, Any]:
    """A card's JSON object, or {} where the card has something else (or nothing)."""
    return value if isinstance(value, dict) else {}


def card_to_character(obj: dict[str, Any], notes: list[str] | None = None) -> tuple[Character, Spec]:
    """Map a card object (any spec) to our fields. Unchecked: ``fit`` and ``check`` follow."""
    notes = notes if notes is not None else []
    spec = _spec_of(obj)
    if spec is None:
        raise CardError("This is not a character card: no “spec” with “data”, and no “name”.")
    if spec == "v1":
        data = {
            "name": obj.get("name") or obj.get("char_name"),
            "description": obj.get("description") or obj.get("char_persona"),
            "personality": obj.get("personality"),
            "scenario": obj.get("scenario") or obj.get("world_scenario"),
            "first_mes": obj.get("first_mes") or obj.get("char_greeting"),
            "mes_example": obj.get("mes_example") or obj.get("example_dialogue"),
        }
    else:
        data = obj["data"]
        if str(obj.get("spec") or "").lower() not in ("", "chara_card_v2", "chara_card_v3"):
            notes.append(f"read a “{obj.get('spec')}” card as V3")
    name = normalize_name(data.get("name"))
    if not name:
        raise CardError("The card has no name.")
    if name != clean_text(data.get("name")):
        notes.append(f"the name became “{name}” (commas, colons and line breaks are not allowed in names)")
    extensions = _mapping(data.get("extensions"))
    ours = _mapping(extensions.get(EXTENSION_KEY))
    extras = {k: v for k, v in extensions.items() if k != EXTENSION_KEY}
    speech = _speech_from(ours.get("speech"))
    boundaries = clean_list(ours.get("boundaries"))
    identity, background = _split_description(
        clean_text(data.get("description")),
        clean_text(ours.get("identity")) if ours else None,
        _description_sections(speech, boundaries),
    )
    lore, depth = _lore_from_book(data.get("character_book"))
    if data.get("group_only_greetings"):
        notes.append("group-only greetings were not imported")
    character = Character(
        name=name,
        identity=identity,
        personality=clean_text(data.get("personality")),
        speech=speech,
        background=background,
        scenario=clean_text(data.get("scenario")),
        boundaries=boundaries,
        examples=parse_examples(clean_text(data.get("mes_example")), name),
        first_message=clean_text(data.get("first_mes")),
        alternate_greetings=clean_list(data.get("alternate_greetings")),
        language=clean_text(ours.get("language"))[:32],
        nickname=clean_text(data.get("nickname") or ours.get("nickname"))[:64],
        system_prompt=clean_text(data.get("system_prompt")),
        post_history_instructions=clean_text(data.get("post_history_instructions")),
        tags=clean_list(data.get("tags"), split=True),
        creator=clean_text(data.get("creator"))[:128],
        creator_notes=clean_text(data.get("creator_notes")),
        character_version=clean_text(data.get("character_version"))[:64],
        lore=lore,
        lore_scan_depth=_int(ours.get("lore_scan_depth"), depth),
        extras=extras,
    )
    return character, spec


def _speech_from(raw: Any) -> SpeechStyle:
    if not isinstance(raw, dict):
        return SpeechStyle()
    return SpeechStyle(
        clean_text(raw.get("vocabulary")),
        clean_list(raw.get("catchphrases")),
        clean_text(raw.get("punctuation")),
        clean_text(raw.get("emoji")),
    )


def _description_sections(speech: SpeechStyle, boundaries: tuple[str, ...]) -> str:
    """Speech style and boundaries written into the exported description, so tools that
    don't know our extension still give the character its voice and its limits."""
    blocks = []
    if not speech.empty:
        lines = ["Speech style:"]
        for label, value in (
            ("Vocabulary", speech.vocabulary),
            ("Punctuation", speech.punctuation),
            ("Emoji", speech.emoji),
        ):
            if value:
                lines.append(f"- {label}: {value}")
        if speech.catchphrases:
            lines.append("- Catchphrases: " + " / ".join(f"“{c}”" for c in speech.catchphrases))
        blocks.append("\n".join(lines))
    if boundaries:
        blocks.append("\n".join(["Boundaries (never says or does):", *(f"- {b}" for b in boundaries)]))
    return "\n\n".join(blocks)


def _split_description(description: str, identity: str | None, sections: str) -> tuple[str, str]:
    """(identity, background) from a card's description. Our own export wrote
    ``identity \\n\\n background \\n\\n sections`` and named the identity in its extension; a
    foreign card's short first line reads as the identity."""
    text = description
    if identity is not None:
        if identity and (text == identity or text.startswith(identity + "\n\n")):
            text = text[len(identity) :].lstrip("\n")
        if sections and (text == sections or text.endswith("\n\n" + sections)):
            text = text[: len(text) - len(sections)].rstrip("\n")
        return identity, text.strip()
    first, sep, rest = text.partition("\n")
    if sep and rest.strip() and estimate_tokens(first) <= IDENTITY_LINE_TOKENS:
        return first.strip(), rest.strip()
    return "", text


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return default


def _lore_from_book(book: Any) -> tuple[tuple[LoreEntry, ...], int]:
    if not isinstance(book, dict):
        return (), 2
    raw = book.get("entries")
    entries = list(raw.values()) if isinstance(raw, dict) else raw if isinstance(raw, list) else []
    lore = []
    for x in entries:
        if not isinstance(x, dict):
            continue
        ext = _mapping(x.get("extensions"))
        lore.append(
            LoreEntry(
                keys=clean_list(x.get("keys") if "keys" in x else x.get("key"), split=True),
                content=clean_text(x.get("content")),
                secondary_keys=clean_list(
                    x.get("secondary_keys") if "secondary_keys" in x else x.get("keysecondary"), split=True
                ),
                selective=bool(x.get("selective")),
                constant=bool(x.get("constant")),
                enabled=x.get("enabled", True) is not False and not x.get("disable"),
                case_sensitive=bool(x.get("case_sensitive")),
                use_regex=bool(x.get("use_regex") or ext.get("use_regex")),
                insertion_order=_int(x.get("insertion_order", x.get("order")), 100),
                priority=_int(x.get("priority"), 0),
                name=clean_text(x.get("name"))[:128],
                comment=clean_text(x.get("comment"))[:256],
                position=clean_text(x.get("position"))[:16],
            )
        )
    depth = min(max(_int(book.get("scan_depth"), 2), 1), 20)
    return tuple(lore), depth


# --- writing ---


def to_card_v2(character: Character) -> dict[str, Any]:
    """The character as a V2 card object (with the V1 fields at the top too, for old readers).
    ``card_to_character`` of the result gives the same character back."""
    c = character
    sections = _description_sections(c.speech, c.boundaries)
    description = "\n\n".join(p for p in (c.identity, c.background, sections) if p)
    extensions = dict(c.extras)
    extensions[EXTENSION_KEY] = {
        "identity": c.identity,
        "language": c.language,
        "nickname": c.nickname,
        "boundaries": list(c.boundaries),
        "speech": {
            "vocabulary": c.speech.vocabulary,
            "catchphrases": list(c.speech.catchphrases),
            "punctuation": c.speech.punctuation,
            "emoji": c.speech.emoji,
        },
        "lore_scan_depth": c.lore_scan_depth,
    }
    data: dict[str, Any] = {
        "name": c.name,
        "description": description,
        "personality": c.personality,
        "scenario": c.scenario,
        "first_mes": c.first_message,
        "mes_example": format_examples(c.examples),
        "creator_notes": c.creator_notes,
        "system_prompt": c.system_prompt,
        "post_history_instructions": c.post_history_instructions,
        "alternate_greetings": list(c.alternate_greetings),
        "tags": list(c.tags),
        "creator": c.creator,
        "character_version": c.character_version,
        "extensions": extensions,
    }
    if c.lore:
        data["character_book"] = {
            "scan_depth": c.lore_scan_depth,
            "extensions": {},
            "entries": [
                {
                    "id": i,
                    "keys": list(e.keys),
                    "secondary_keys": list(e.secondary_keys),
                    "content": e.content,
                    "enabled": e.enabled,
                    "insertion_order": e.insertion_order,
                    "case_sensitive": e.case_sensitive,
                    "selective": e.selective,
                    "constant": e.constant,
                    "priority": e.priority,
                    "name": e.name,
                    "comment": e.comment,
                    **({"position": e.position} if e.position else {}),
                    "extensions": {"use_regex": True} if e.use_regex else {},
                }
                for i, e in enumerate(c.lore, 1)
            ],
        }
    v1 = {k: data[k] for k in ("name", "description", "personality", "scenario", "first_mes", "mes_example")}
    return {"spec": "chara_card_v2", "spec_version": "2.0", **v1, "data": data}


def export_json(character: Character) -> bytes:
    return json.dumps(to_card_v2(character), ensure_ascii=False, indent=2).encode("utf-8")


def export_png(character: Character, avatar: bytes | None = None) -> bytes:
    """A V2 PNG card: the avatar (or a plain placeholder) with the card in a ``chara`` chunk."""
    from PIL import Image, PngImagePlugin

    payload = base64.b64encode(json.dumps(to_card_v2(character), ensure_ascii=False).encode("utf-8"))
    info = PngImagePlugin.PngInfo()
    info.add_text("chara", payload.decode("ascii"))
    image = _open_avatar(avatar) if avatar else None
    if image is None:
        shade = zlib.crc32(character.key.encode()) & 0xFFFFFF
        image = Image.new("RGB", (400, 600), (shade >> 16, (shade >> 8) & 0xFF, shade & 0xFF))
    out = io.BytesIO()
    image.save(out, format="PNG", pnginfo=info)
    return out.getvalue()


def export_filename(character: Character, extension: str) -> str:
    stem = re.sub(r"[^\w\-]+", "_", character.name, flags=re.UNICODE).strip("_") or "character"
    return f"{stem[:60]}.{extension}"


# --- the picture ---


def _open_avatar(data: bytes) -> Any:
    """The decoded picture scaled to ``AVATAR_SIDE``, or None when it is unreadable or too
    large to decode (its size is read from the header first)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
        if image.size[0] * image.size[1] > AVATAR_MAX_PIXELS:
            return None
        image.thumbnail((AVATAR_SIDE, AVATAR_SIDE))
        image.load()
        return image if image.mode in ("RGB", "RGBA", "L", "LA", "P") else image.convert("RGBA")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return None


def _clean_avatar(data: bytes, notes: list[str]) -> bytes | None:
    """The card's picture without its text chunks, small enough to keep, or None."""
    image = _open_avatar(data)
    if image is None:
        notes.append("the picture was not kept (too large or unreadable); the card itself was read")
        return None
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=False)
    if out.tell() > AVATAR_MAX_BYTES:
        notes.append("the picture was not kept (too large)")
        return None
    return out.getvalue()
