"""The admin page itself, imported on its first request (``bot.admin.app``).

Every page but the login needs a session (otherwise: a redirect to the login); every form
posts a CSRF token. No JavaScript: forms, links and server-drawn SVG charts.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

from starlette.applications import Starlette
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from bot.admin import charts
from bot.admin.auth import LOGIN_COOKIE, SESSION_COOKIE, AdminAuth, Session
from bot.admin.brands_page import BrandPages
from bot.admin.characters_page import CharacterPages
from bot.admin.mcp_page import McpPage
from bot.admin.status import DbHealth, HealthProvider
from bot.config import Settings
from bot.copywriting.styles import STYLES, resolve_style
from bot.store.db import Database
from bot.store.usage import UsageStore
from bot.usage.access import Access
from bot.usage.allowance import Allowance, parse_allowance
from bot.usage.periods import Period, local_now, period_start
from bot.usage.pricing import Prices
from bot.usage.quotas import DEFAULT_SUBJECT, Quotas, Scope

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
PREFIX = "/admin"
SECURITY_HEADERS = {
    # Nothing on these pages needs a script; pygal's SVG carries inline styles.
    "Content-Security-Policy": "default-src 'self'; script-src 'none'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

Handler = Callable[[Request, Session], Awaitable[Response]]


class AdminPage:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        health: HealthProvider | None = None,
        access: Access | None = None,
        mcp: Any = None,
    ) -> None:
        self.settings = settings
        self.mcp = mcp  # the running bot.mcp.hub.McpHub, if any (the Tools section)
        self.db = db
        self.store = UsageStore(db)
        self.auth = AdminAuth(settings, db)
        self.access = access if access is not None else Access(settings, db)
        self.quotas = Quotas(settings, db, self.access.admins)
        self.prices = Prices.from_settings(settings)
        self.health = health or DbHealth(db)
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        env = self.templates.env
        env.filters["money"] = self.prices.money
        env.filters["num"] = lambda v: f"{v:,}" if isinstance(v, int) else ("" if v is None else str(v))
        env.filters["when"] = self._when
        env.globals["prefix"] = PREFIX
        env.globals["currency"] = self.prices.currency

    def _when(self, value: datetime | None) -> str:
        if value is None:
            return ""
        if value.tzinfo is None:  # SQLite hands back naive UTC
            value = value.replace(tzinfo=UTC)
        return value.astimezone(ZoneInfo(self.settings.timezone)).strftime("%Y-%m-%d %H:%M")

    # --- plumbing ---
    def _secure(self, request: Request) -> bool:
        if self.settings.admin_trust_proxy:
            proto = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
            if proto:
                return proto == "https"
        return request.url.scheme == "https"

    def _client(self, request: Request) -> str:
        if self.settings.admin_trust_proxy:
            forwarded = request.headers.get("x-forwarded-for", "").split(",")[0].strip()
            if forwarded:
                return forwarded
        return request.client.host if request.client else "unknown"

    def _cookie(self, response: Response, request: Request, name: str, value: str, max_age: int | None) -> None:
        response.set_cookie(
            name, value, max_age=max_age, path=PREFIX, httponly=True, samesite="strict", secure=self._secure(request)
        )

    def render(self, request: Request, name: str, status_code: int = 200, **context: object) -> Response:
        response = self.templates.TemplateResponse(request, name, context, status_code=status_code)
        response.headers.update(SECURITY_HEADERS)
        return response

    def page(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """A page behind the login; POSTs must carry the session's CSRF token."""

        async def endpoint(request: Request) -> Response:
            session = await self.auth.session(request.cookies.get(SESSION_COOKIE))
            if session is None:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                if request.method != "GET":
                    target = PREFIX + "/"
                return RedirectResponse(f"{PREFIX}/login?next={quote(target)}", status_code=303)
            if request.method == "POST":
                form = await request.form()
                if not secrets.compare_digest(str(form.get("csrf", "")), session.csrf):
                    return PlainTextResponse(
                        "The form expired; go back, reload and try again.", 403, headers=SECURITY_HEADERS
                    )
                request.state.form = form
            return await handler(request, session)

        return endpoint

    def routes(self) -> list:
        return [
            Route("/", self.page(self.overview), name="overview"),
            Route("/login", self.login_form, methods=["GET"], name="login"),
            Route("/login", self.login, methods=["POST"]),
            Route("/logout", self.page(self.logout), methods=["POST"], name="logout"),
            Route("/conversations", self.page(self.conversations), name="conversations"),
            Route("/conversations/{cid:int}", self.page(self.conversation), name="conversation"),
            Route("/users", self.page(self.users), name="users"),
            Route("/quotas", self.page(self.set_quota), methods=["POST"]),
            Route("/block", self.page(self.block), methods=["POST"]),
            Route("/health", self.page(self.health_page), name="health"),
            Route("/styles", self.page(self.styles), name="styles"),
            *CharacterPages(self, PREFIX).routes(),
            *BrandPages(self, PREFIX).routes(),
            *McpPage(self, self.mcp, PREFIX).routes(),
            Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
        ]

    # --- login ---
    async def login_form(
        self, request: Request, *, error: str = "", status: int = 200, next_page: str | None = None
    ) -> Response:
        nonce = secrets.token_urlsafe(24)
        configured = await self.auth.password_hash() is not None
        response = self.render(
            request,
            "login.html",
            status,
            error=error,
            configured=configured,
            csrf=await self.auth.login_form_token(nonce),
            next=next_page if next_page is not None else request.query_params.get("next", ""),
        )
        self._cookie(response, request, LOGIN_COOKIE, nonce, 3600)
        return response

    async def login(self, request: Request) -> Response:
        form = await request.form()
        target = str(form.get("next", ""))
        if not target.startswith(PREFIX + "/") or target.startswith("//"):  # no open redirect
            target = PREFIX + "/"
        if not await self.auth.check_login_form_token(request.cookies.get(LOGIN_COOKIE, ""), str(form.get("csrf", ""))):
            return await self.login_form(
                request, error="The login form expired; please try again.", status=403, next_page=target
            )
        throttled = await self.auth.throttle(self._client(request))
        if throttled is not None:
            log.warning("admin: login attempts throttled for %s", self._client(request))
            return await self.login_form(
                request,
                error=f"Too many attempts. Try again in {throttled.retry_after} seconds.",
                status=429,
                next_page=target,
            )
        if not await self.auth.check_password(str(form.get("password", ""))):
            log.warning("admin: failed login from %s", self._client(request))
            return await self.login_form(request, error="Wrong password.", status=401, next_page=target)
        token, _ = await self.auth.start_session()
        log.info("admin: login from %s", self._client(request))
        response = RedirectResponse(target, status_code=303)
        self._cookie(response, request, SESSION_COOKIE, token, int(self.settings.admin_session_hours * 3600))
        response.delete_cookie(LOGIN_COOKIE, path=PREFIX)
        return response

    async def logout(self, request: Request, session: Session) -> Response:
        await self.auth.end_session(request.cookies.get(SESSION_COOKIE))
        response = RedirectResponse(f"{PREFIX}/login", status_code=303)
        response.delete_cookie(
            SESSION_COOKIE, path=PREFIX, httponly=True, samesite="strict", secure=self._secure(request)
        )
        return response

    # --- overview ---
    def _days(self, request: Request) -> tuple[list[str], int]:
        try:
            count = max(1, min(366, int(request.query_params.get("days", "14"))))
        except ValueError:
            count = 14
        today = local_now(self.settings.timezone).date()
        return [(today - timedelta(days=i)).isoformat() for i in range(count - 1, -1, -1)], count

    async def overview(self, request: Request, session: Session) -> Response:
        days, count = self._days(request)
        since, until = days[0], days[-1]
        rows = {r["day"]: r for r in await self.store.per_day(since, until)}
        latency = {r["day"]: r for r in await self.store.latency_per_day(since, until)}
        errors = await self.store.errors_by_kind(since, until)

        def col(key: str) -> list[float | None]:  # None: no bar and no label on a day without use
            return [rows[d][key] if d in rows else None for d in days]

        fresh = [rows[d]["prompt_tokens"] - rows[d]["cached_tokens"] if d in rows else None for d in days]
        ratio = [
            round(rows[d]["cached_tokens"] * 100 / rows[d]["prompt_tokens"], 1)
            if d in rows and rows[d]["prompt_tokens"]
            else None
            for d in days
        ]
        totals = {
            k: sum(r[k] for r in rows.values())
            for k in ("turns", "calls", "prompt_tokens", "cached_tokens", "completion_tokens", "cost", "errors")
        }
        prompt = totals["prompt_tokens"]
        totals["cache_ratio"] = (totals["cached_tokens"] * 100 / prompt) if prompt else 0
        svg = {
            "turns": charts.bars(days, {"turns": col("turns")}, title="Answers (turns) per day"),
            "tokens": charts.bars(
                days,
                {
                    "prompt (fresh)": fresh,
                    "prompt (cached)": col("cached_tokens"),
                    "completion": col("completion_tokens"),
                },
                title="Tokens per day",
                stacked=True,
            ),
            "cost": charts.bars(
                days,
                {"cost": [round(v, 4) if v is not None else None for v in col("cost")]},
                title=f"Cost per day ({self.prices.currency})",
                fmt="{:,.4f}",
            ),
            "latency": charts.lines(
                days,
                {
                    "time to first token (ms)": [latency[d]["ttft_ms"] if d in latency else None for d in days],
                    "added by the bot (ms)": [latency[d]["added_ms"] if d in latency else None for d in days],
                },
                title="Latency per day (mean, ms)",
            ),
            "cache": charts.lines(
                days, {"prompt-cache hit ratio (%)": ratio}, title="Prompt-cache hit ratio (%)", fmt="{:.1f}"
            ),
            "errors": charts.horizontal(errors, title="Gateway errors by kind") if errors else "",
        }
        table = [
            dict(
                day=d,
                **{
                    k: rows[d][k] if d in rows else 0
                    for k in ("turns", "prompt_tokens", "cached_tokens", "completion_tokens", "cost", "errors")
                },
                ttft_ms=latency[d]["ttft_ms"] if d in latency else None,
                added_ms=latency[d]["added_ms"] if d in latency else None,
            )
            for d in days
        ]
        return self.render(
            request,
            "overview.html",
            csrf=session.csrf,
            svg=svg,
            totals=totals,
            days=count,
            since=since,
            until=until,
            table=table,
            errors=errors,
            nav="overview",
        )

    # --- conversations ---
    async def conversations(self, request: Request, session: Session) -> Response:
        q = request.query_params
        tz = ZoneInfo(self.settings.timezone)

        def day(name: str, plus: int = 0) -> datetime | None:
            try:
                d = date.fromisoformat(q.get(name, ""))
            except ValueError:
                return None
            return datetime(d.year, d.month, d.day, tzinfo=tz) + timedelta(days=plus)

        found = await self.store.search_conversations(
            platform=q.get("platform", ""),
            user=q.get("user", "").strip(),
            text=q.get("text", "").strip(),
            since=day("since"),
            until=day("until", 1),
            limit=100,
        )
        return self.render(request, "conversations.html", csrf=session.csrf, rows=found, q=dict(q), nav="conversations")

    async def conversation(self, request: Request, session: Session) -> Response:
        conv = await self.store.conversation(request.path_params["cid"])
        if conv is None:
            return self.render(
                request,
                "message.html",
                404,
                csrf=session.csrf,
                title="Not found",
                text="There is no such conversation.",
                nav="conversations",
            )
        style = resolve_style(conv["style"]) if conv["style"] else None
        return self.render(request, "conversation.html", csrf=session.csrf, c=conv, style=style, nav="conversations")

    # --- users and quotas ---
    async def users(self, request: Request, session: Session) -> Response:
        local = local_now(self.settings.timezone)
        month = await self.store.top_counters(
            Scope.USER.value, Period.MONTH.value, period_start(Period.MONTH, local), 50
        )
        today = dict(
            await self.store.top_counters(Scope.USER.value, Period.DAY.value, period_start(Period.DAY, local), 500)
        )
        blocked = await self.store.blocked_users()
        blocked_set = {(b.platform, b.user_id) for b in blocked}
        top = []
        for subject, totals in month:
            platform, _, user_id = subject.partition(":")
            top.append(
                dict(
                    subject=subject,
                    platform=platform,
                    user_id=user_id,
                    month=totals,
                    today=today.get(subject),
                    blocked=(platform, user_id) in blocked_set,
                    admin=self.access.is_admin(platform, user_id),
                )
            )
        limits = await self.store.limits()
        defaults = {
            (s.value, p.value): self.quotas.defaults[(s, p)].describe(self.prices.currency)
            for s in Scope
            for p in Period
        }
        glob = {st.period.value: st for st in await self.quotas.status(None, "", "") if st.scope is Scope.GLOBAL}
        return self.render(
            request,
            "users.html",
            csrf=session.csrf,
            top=top,
            blocked=blocked,
            limits=limits,
            defaults=defaults,
            glob=glob,
            admins=self.access.admins.listed(),
            nav="users",
            notice=request.query_params.get("notice", ""),
        )

    async def set_quota(self, request: Request, session: Session) -> Response:
        form: FormData = request.state.form
        try:
            scope = Scope(str(form.get("scope", "")))
            period = Period(str(form.get("period", "")))
        except ValueError:
            return self._back("Pick a scope and a period.")
        subject = str(form.get("subject", "")).strip()
        if scope is Scope.GLOBAL:
            subject = ""
        elif not subject:
            subject = DEFAULT_SUBJECT
        elif scope is Scope.USER and ":" not in subject:
            return self._back("Write the user as platform:id, as the usage table shows them.")
        action = str(form.get("action", "set"))
        if action == "reset":
            await self.quotas.reset_limit(scope, subject, period)
            return self._back(
                f"The {period.adjective} {scope.value} limit for {subject or 'everyone'} is back to its default."
            )
        if action == "lift":
            budget = Allowance()
        else:
            try:
                budget = parse_allowance(str(form.get("budget", "")))
            except ValueError as exc:
                return self._back(str(exc))
        await self.quotas.set_limit(scope, subject, period, budget, by="admin page")
        log.info(
            "admin: %s %s limit for %r set to %s",
            period.adjective,
            scope.value,
            subject,
            budget.describe(self.prices.currency),
        )
        return self._back(
            f"{period.adjective.capitalize()} {scope.value} limit for {subject or 'everyone'}: "
            f"{budget.describe(self.prices.currency)}."
        )

    async def block(self, request: Request, session: Session) -> Response:
        form: FormData = request.state.form
        who = str(form.get("user", "")).strip()
        platform, sep, user_id = who.partition(":")
        if not sep or not platform or not user_id:
            return self._back("Write the user as platform:id, as the usage table shows them.")
        if str(form.get("action", "block")) == "unblock":
            await self.access.unblock(platform, user_id)
            log.info("admin: unblocked %s", who)
            return self._back(f"{who} can use the assistant again.")
        await self.access.block(platform, user_id, reason=str(form.get("reason", ""))[:500], by="admin page")
        log.info("admin: blocked %s", who)
        return self._back(f"{who} is blocked.")

    def _back(self, notice: str) -> Response:
        return RedirectResponse(f"{PREFIX}/users?{urlencode({'notice': notice})}", status_code=303)

    # --- health and styles ---
    async def health_page(self, request: Request, session: Session) -> Response:
        return self.render(request, "health.html", csrf=session.csrf, h=await self.health.report(), nav="health")

    async def styles(self, request: Request, session: Session) -> Response:
        chats = []
        for row in await self.store.custom_styles():
            style = resolve_style(row["style"])
            if style is None:
                continue
            chats.append(
                dict(
                    row,
                    name=style.display_name,
                    custom=style.is_custom,
                    text=style.custom_text or "",
                    limits=style.constraints.describe(style.language),
                )
            )
        return self.render(
            request, "styles.html", csrf=session.csrf, styles=list(STYLES.values()), chats=chats, nav="styles"
        )


def create_admin_site(
    settings: Settings,
    db: Database,
    health: HealthProvider | None = None,
    access: Access | None = None,
    mcp: Any = None,
) -> Starlette:
    return Starlette(routes=AdminPage(settings, db, health, access, mcp).routes())
