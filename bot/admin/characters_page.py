"""The admin page's characters: every stored character, edited field by field (with the same
checks and size caps as ``/character edit``) or deleted, and its card downloaded as V2 JSON.
Login and CSRF are the admin page's own (``AdminPage.page``)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Protocol
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from bot.admin.auth import Session
from bot.characters.cards import export_filename, export_json
from bot.characters.character import DEFAULT_LIMITS, CardLimits, Character, CharacterError, check, edit, format_examples
from bot.store.characters import CharacterStore, SavedCharacter
from bot.store.db import Database

Handler = Callable[[Request, Session], Awaitable[Response]]


class CharacterSite(Protocol):
    """What these pages use of the admin page (``bot.admin.site.AdminPage``)."""

    db: Database

    def render(self, request: Request, name: str, status_code: int = 200, **context: object) -> Response: ...

    def page(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]: ...


log = logging.getLogger(__name__)

# The form: (field name, label, rows; 1 = one line). Lists are one item per line.
FIELDS: tuple[tuple[str, str, int], ...] = (
    ("name", "Name", 1),
    ("identity", "Who (one line)", 1),
    ("personality", "Personality", 3),
    ("vocabulary", "Vocabulary", 2),
    ("catchphrases", "Catchphrases (one per line)", 3),
    ("punctuation", "Punctuation habits", 1),
    ("emoji", "Emoji habits", 1),
    ("background", "Background", 5),
    ("scenario", "Scenario", 3),
    ("boundaries", "Boundaries: never says or does (one per line)", 4),
    ("examples", "Example dialogue (<START>, then {{user}}: … / {{char}}: … lines)", 8),
    ("first_message", "First message", 3),
    ("greetings", "Other greetings (one per line)", 3),
    ("language", "Language", 1),
    ("system_prompt", "Instructions from the card's author", 3),
    ("post_history", "Reminder after the history (post-history instructions)", 2),
    ("tags", "Tags (one per line)", 2),
)
SCOPES = {"workspace": "the whole workspace", "group": "a group", "chat": "a private chat"}
UNCHECKED = CardLimits(**{name: 10**9 for name in CardLimits.__dataclass_fields__})  # each step; the whole is checked


def form_values(c: Character) -> dict[str, str]:
    return {
        "name": c.name,
        "identity": c.identity,
        "personality": c.personality,
        "vocabulary": c.speech.vocabulary,
        "catchphrases": "\n".join(c.speech.catchphrases),
        "punctuation": c.speech.punctuation,
        "emoji": c.speech.emoji,
        "background": c.background,
        "scenario": c.scenario,
        "boundaries": "\n".join(c.boundaries),
        "examples": format_examples(c.examples),
        "first_message": c.first_message,
        "greetings": "\n".join(c.alternate_greetings),
        "language": c.language,
        "system_prompt": c.system_prompt,
        "post_history": c.post_history_instructions,
        "tags": "\n".join(c.tags),
    }


def edited(character: Character, submitted: dict[str, str], limits: CardLimits) -> Character:
    """``character`` with every field the form changed, checked as a whole."""
    current = form_values(character)
    updated = character
    for name, _, _ in FIELDS:
        value = submitted.get(name, current[name]).replace("\r\n", "\n").strip()
        if value != current[name].strip() and (value or name != "name"):  # a name can't be emptied
            updated = edit(updated, name, value, UNCHECKED)
    return check(updated, limits)


class CharacterPages:
    def __init__(self, page: CharacterSite, prefix: str, limits: CardLimits = DEFAULT_LIMITS) -> None:
        self.page = page
        self.prefix = prefix
        self.limits = limits
        self.characters = CharacterStore(page.db)

    def routes(self) -> list[Route]:
        page = self.page.page
        return [
            Route("/characters", page(self.index), name="characters"),
            Route("/characters/{id:int}", page(self.form), name="character"),
            Route("/characters/{id:int}", page(self.save), methods=["POST"]),
            Route("/characters/{id:int}/delete", page(self.delete), methods=["POST"]),
            Route("/characters/{id:int}/card.json", page(self.download)),
        ]

    async def index(self, request: Request, session: Session) -> Response:
        platform = request.query_params.get("platform", "")
        rows = await self.characters.everything(platform=platform or None)
        return self.page.render(
            request,
            "characters.html",
            csrf=session.csrf,
            rows=rows,
            platform=platform,
            scopes=SCOPES,
            notice=request.query_params.get("notice", ""),
            nav="characters",
        )

    async def form(
        self,
        request: Request,
        session: Session,
        *,
        error: str = "",
        status: int = 200,
        values: dict[str, str] | None = None,
        saved: SavedCharacter | None = None,
    ) -> Response:
        saved = saved or await self.characters.get(request.path_params["id"])
        if saved is None:
            return self._missing(request, session)
        return self.page.render(
            request,
            "character.html",
            status,
            csrf=session.csrf,
            c=saved,
            fields=FIELDS,
            values=values or form_values(saved.character),
            error=error,
            scopes=SCOPES,
            notice=request.query_params.get("notice", ""),
            nav="characters",
        )

    async def save(self, request: Request, session: Session) -> Response:
        saved = await self.characters.get(request.path_params["id"])
        if saved is None:
            return self._missing(request, session)
        form = request.state.form
        submitted = {name: str(form[name]) for name, _, _ in FIELDS if name in form}  # absent: unchanged
        try:
            revision = int(str(form.get("revision", "")))
            updated = edited(saved.character, submitted, self.limits)
            result = await self.characters.update(saved.id, updated, revision=revision)
        except (ValueError, CharacterError) as exc:
            text = str(exc) if isinstance(exc, CharacterError) else "The form was incomplete; reload and try again."
            values = {**form_values(saved.character), **submitted}
            return await self.form(request, session, error=text, status=400, values=values, saved=saved)
        log.info("admin: character %s edited (revision %s)", result.id, result.revision)
        return RedirectResponse(f"{self._url(result.id)}?{urlencode({'notice': 'Saved.'})}", status_code=303)

    async def delete(self, request: Request, session: Session) -> Response:
        saved = await self.characters.get(request.path_params["id"])
        if saved is not None:
            await self.characters.delete(saved.id)
            log.info("admin: character %s deleted", saved.id)
        notice = f"Deleted {saved.name}." if saved is not None else "It was deleted already."
        return RedirectResponse(f"{self._url()}?{urlencode({'notice': notice})}", status_code=303)

    async def download(self, request: Request, session: Session) -> Response:
        saved = await self.characters.get(request.path_params["id"])
        if saved is None:
            return self._missing(request, session)
        name = export_filename(saved.character, "json")
        return Response(
            export_json(saved.character),
            media_type="application/json",
            headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}", "Cache-Control": "no-store"},
        )

    def _url(self, character_id: int | None = None) -> str:
        return f"{self.prefix}/characters" + (f"/{character_id}" if character_id is not None else "")

    def _missing(self, request: Request, session: Session) -> Response:
        return self.page.render(
            request,
            "message.html",
            404,
            csrf=session.csrf,
            title="Not found",
            text="There is no such character (it may have been deleted).",
            nav="characters",
        )
