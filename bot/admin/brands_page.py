"""Brand profiles on the admin page (issue 18): every chat's profile listed, and edited field
by field in a plain form (no JavaScript; CSRF and login as every other form, ``AdminPage.page``).

A form is shown from ``FormValues`` (strings, as typed), so a refused edit comes back with the
reason and nothing typed is lost. Saving names the revision the form was read at: an edit made
in the chat meanwhile is never overwritten silently.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlencode

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from bot.admin.auth import Session
from bot.brands.profile import problems
from bot.compliance.brand import BrandError, BrandProfile
from bot.store.brands import BrandStore, Place, SavedBrand
from bot.store.db import Database

log = logging.getLogger(__name__)
BY = "admin page"
_LIST = re.compile(r"\s*(?:\n|、|,|，|;|；)\s*")
_SPEC = re.compile(r"\s*([^:：=]+?)\s*[:：=]\s*(\S.*?)\s*$")

Handler = Callable[[Request, Session], Awaitable[Response]]


class BrandSite(Protocol):
    """What these pages use of the admin site (``bot.admin.site.AdminPage``)."""

    db: Database

    def page(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]: ...

    def render(self, request: Request, name: str, status_code: int = 200, **context: object) -> Response: ...


@dataclass(slots=True)
class ProductValues:
    name: str = ""
    aliases: str = ""
    price: str = ""
    specs: str = ""  # one "容量: 30ml" per line
    points: str = ""  # one selling point per line
    remove: bool = False


@dataclass(slots=True)
class FormValues:
    """A profile as the form shows it (and as it was typed)."""

    name: str = ""
    audience: str = ""
    tone: str = ""
    use: str = ""  # one word per line
    never: str = ""
    products: list[ProductValues] = field(default_factory=list)

    @classmethod
    def of(cls, profile: BrandProfile) -> FormValues:
        return cls(
            profile.name,
            profile.audience,
            profile.tone,
            "\n".join(profile.words_to_use),
            "\n".join(profile.words_never),
            [
                ProductValues(
                    p.name,
                    "、".join(p.aliases),
                    str(p.price) if p.price else "",
                    "\n".join(f"{s.name}: {format(s.value.normalize(), 'f')}{s.unit}" for s in p.specs),
                    "\n".join(p.selling_points),
                )
                for p in profile.products
            ],
        )

    @classmethod
    def posted(cls, form: FormData) -> FormValues:
        def text(name: str) -> str:
            return str(form.get(name, "")).strip()

        products = []
        for i in range(int(text("products") or 0) + 1):  # the rows shown, and the empty one for a new product
            row = ProductValues(
                text(f"p{i}-name"),
                text(f"p{i}-aliases"),
                text(f"p{i}-price"),
                text(f"p{i}-specs"),
                text(f"p{i}-points"),
                bool(form.get(f"p{i}-remove")),
            )
            if row.name or row.aliases or row.price or row.specs or row.points:
                products.append(row)
        return cls(text("name"), text("audience"), text("tone"), text("use"), text("never"), products)

    def profile(self) -> BrandProfile:
        """The checked profile these values describe; ``BrandError`` naming the field."""
        products = []
        for row in self.products:
            if row.remove:
                continue
            specs: dict[str, str] = {}
            for line in filter(str.strip, row.specs.splitlines()):
                if not (match := _SPEC.match(line)):
                    raise BrandError(f"{row.name or 'a product'}: write each specification as “容量: 30ml”")
                specs[match[1]] = match[2]
            products.append(
                {
                    "name": row.name,
                    "aliases": _items(row.aliases),
                    "price": row.price or None,
                    "specs": specs,
                    "selling_points": [p.strip() for p in row.points.splitlines() if p.strip()],
                }
            )
        profile = BrandProfile.from_dict(
            {
                "name": self.name,
                "audience": self.audience,
                "tone": self.tone,
                "words_to_use": _items(self.use),
                "words_never": _items(self.never),
                "products": products,
            }
        )
        if found := problems(profile):
            raise BrandError("; ".join(found))
        return profile


def _items(text: str) -> list[str]:
    return [item for item in _LIST.split(text.strip()) if item]


class BrandPages:
    def __init__(self, site: BrandSite, prefix: str) -> None:
        self.page = site
        self.prefix = prefix
        self.brands = BrandStore(site.db)

    def routes(self) -> list[Route]:
        page = self.page.page
        return [
            Route("/brands", page(self.index), name="brands"),
            Route("/brands", page(self.create), methods=["POST"]),
            Route("/brands/{bid:int}", page(self.edit_form), name="brand"),
            Route("/brands/{bid:int}", page(self.save), methods=["POST"]),
            Route("/brands/{bid:int}/delete", page(self.delete), methods=["POST"]),
        ]

    async def index(
        self,
        request: Request,
        session: Session,
        *,
        error: str = "",
        status: int = 200,
        values: dict[str, str] | None = None,
    ) -> Response:
        brands = await self.brands.everything()
        return self.page.render(
            request,
            "brands.html",
            status,
            csrf=session.csrf,
            brands=brands,
            notice=request.query_params.get("notice", ""),
            error=error,
            values=values or {},
            nav="brands",
        )

    async def create(self, request: Request, session: Session) -> Response:
        form: FormData = request.state.form
        typed = {"place": str(form.get("place", "")).strip(), "name": str(form.get("name", "")).strip()}
        place = Place.parse(typed["place"])
        if place is None:
            return await self.index(
                request,
                session,
                error="Write the chat as platform:workspace:chat (as the conversations page shows it).",
                status=400,
                values=typed,
            )
        try:
            saved = await self.brands.save(place, BrandProfile.from_dict({"name": typed["name"]}), by=BY, revision=0)
        except BrandError as exc:  # no name, or the chat has a profile already
            return await self.index(request, session, error=str(exc), status=400, values=typed)
        log.info("admin: brand profile created for %s", place)
        return RedirectResponse(f"{self.prefix}/brands/{saved.id}", status_code=303)

    async def _saved(self, request: Request) -> SavedBrand | None:
        return await self.brands.by_id(request.path_params["bid"])

    def _form(
        self,
        request: Request,
        session: Session,
        saved: SavedBrand,
        values: FormValues,
        revision: int,
        *,
        error: str = "",
        status: int = 200,
    ) -> Response:
        return self.page.render(
            request,
            "brand.html",
            status,
            csrf=session.csrf,
            saved=saved,
            v=values,
            revision=revision,
            error=error,
            notice=request.query_params.get("notice", ""),
            nav="brands",
        )

    async def edit_form(self, request: Request, session: Session) -> Response:
        saved = await self._saved(request)
        if saved is None:
            return self._missing(request, session)
        return self._form(request, session, saved, FormValues.of(saved.profile), saved.revision)

    async def save(self, request: Request, session: Session) -> Response:
        saved = await self._saved(request)
        if saved is None:
            return self._missing(request, session)
        form: FormData = request.state.form
        values = FormValues.posted(form)
        revision = int(str(form.get("revision", "0")) or 0)
        try:
            stored = await self.brands.save(saved.place, values.profile(), by=BY, revision=revision)
        except BrandError as exc:  # a refused field, or an edit made elsewhere meanwhile
            return self._form(request, session, saved, values, revision, error=str(exc), status=400)
        log.info("admin: brand profile of %s saved (revision %d)", stored.place, stored.revision)
        return RedirectResponse(f"{self.prefix}/brands/{stored.id}?{urlencode({'notice': 'Saved.'})}", status_code=303)

    async def delete(self, request: Request, session: Session) -> Response:
        saved = await self._saved(request)
        if saved is not None:
            await self.brands.delete(saved.id)
            log.info("admin: brand profile of %s deleted", saved.place)
        notice = f"The brand profile of {saved.place} was deleted." if saved else "It was deleted already."
        return RedirectResponse(f"{self.prefix}/brands?{urlencode({'notice': notice})}", status_code=303)

    def _missing(self, request: Request, session: Session) -> Response:
        return self.page.render(
            request,
            "message.html",
            404,
            csrf=session.csrf,
            title="Not found",
            text="There is no such brand profile.",
            nav="brands",
        )
