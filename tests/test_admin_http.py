"""The admin page over HTTP (no browser): login, sessions, CSRF, rate limits, cookies."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from bot.admin.app import create_admin_app
from bot.admin.auth import AdminAuth, hash_password
from bot.admin.status import RunnerHealth
from bot.platform.base import Health
from bot.process.webapp import create_app
from bot.store.db import Database

PASSWORD = "correct horse battery staple"


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    yield database
    await database.dispose()


def client_for(settings, db: Database, base: str = "http://bot.test") -> httpx.AsyncClient:
    app = create_app([], admin=create_admin_app(settings, db))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base, follow_redirects=False)


def hidden(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, f"no {name} field"
    return match.group(1)


async def login(client: httpx.AsyncClient, password: str = PASSWORD, **headers: str) -> httpx.Response:
    form = await client.get("/admin/login", headers=headers)
    return await client.post(
        "/admin/login",
        data={"csrf": hidden(form.text, "csrf"), "password": password, "next": "/admin/users"},
        headers=headers,
    )


async def test_every_page_redirects_to_the_login_without_a_session(settings, db) -> None:
    async with client_for(settings, db) as client:
        for path in (
            "/admin/",
            "/admin/conversations",
            "/admin/conversations/1",
            "/admin/users",
            "/admin/health",
            "/admin/styles",
        ):
            response = await client.get(path)
            assert response.status_code == 303, path
            assert response.headers["location"].startswith("/admin/login?next=")
        posted = await client.post("/admin/quotas", data={"scope": "global", "period": "day", "budget": "1 tokens"})
        assert posted.status_code == 303 and posted.headers["location"].startswith("/admin/login")
        assert (await client.get("/admin")).headers["location"] == "/admin/"


async def test_no_password_set_means_nobody_logs_in(settings, db) -> None:
    async with client_for(settings, db) as client:
        page = await client.get("/admin/login")
        assert "No admin password is set" in page.text
        response = await login(client, "")
        assert response.status_code == 401 and "Wrong password" in response.text
        assert "bot_admin_session" not in response.cookies


async def test_login_wrong_password_csrf_and_logout(settings, db) -> None:
    await AdminAuth(settings, db).set_password(PASSWORD)
    async with client_for(settings, db) as client:
        wrong = await login(client, "not the password at all")
        assert wrong.status_code == 401 and "Wrong password." in wrong.text
        # A login form posted without its cookie-bound token (a cross-site post) is refused.
        forged = await client.post("/admin/login", data={"csrf": "x", "password": PASSWORD})
        assert forged.status_code == 403
        ok = await login(client)
        assert ok.status_code == 303 and ok.headers["location"] == "/admin/users"
        cookie = ok.headers["set-cookie"]
        assert "bot_admin_session=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert "Path=/admin" in cookie and "Secure" not in cookie  # plain HTTP, no trusted proxy
        page = await client.get("/admin/users")
        assert page.status_code == 200 and "Users &amp; quotas" in page.text
        assert (
            page.headers["x-frame-options"] == "DENY" and "script-src 'none'" in page.headers["content-security-policy"]
        )
        csrf = hidden(page.text, "csrf")
        # A form without the session's CSRF token changes nothing.
        refused = await client.post("/admin/block", data={"user": "telegram:7", "action": "block"})
        assert refused.status_code == 403
        assert "telegram:7" not in (await client.get("/admin/users")).text
        done = await client.post("/admin/block", data={"user": "telegram:7", "action": "block", "csrf": csrf})
        assert done.status_code == 303
        assert "telegram:7 — since" in (await client.get("/admin/users")).text
        stolen = client.cookies.get("bot_admin_session")
        out = await client.post("/admin/logout", data={"csrf": csrf})
        assert out.status_code == 303 and out.headers["location"] == "/admin/login"
        assert (await client.get("/admin/")).status_code == 303
    # The old cookie, replayed from elsewhere, no longer opens anything.
    async with client_for(settings, db) as other:
        other.cookies.set("bot_admin_session", stolen, domain="bot.test", path="/admin")
        assert (await other.get("/admin/")).status_code == 303


async def test_login_attempts_are_rate_limited(make_settings, db) -> None:
    settings = make_settings(BOT_ADMIN_LOGIN_RATE="3/minute", BOT_ADMIN_PASSWORD_HASH=hash_password(PASSWORD))
    async with client_for(settings, db) as client:
        codes = [(await login(client, "wrong password number x")).status_code for _ in range(3)]
        assert codes == [401, 401, 401]
        blocked = await login(client)  # even the right password waits now
        assert blocked.status_code == 429 and "Too many attempts" in blocked.text


async def test_secure_cookie_only_behind_a_trusted_https_proxy(make_settings, db) -> None:
    hashed = hash_password(PASSWORD)
    proxied = {"X-Forwarded-Proto": "https"}
    untrusted = make_settings(BOT_ADMIN_PASSWORD_HASH=hashed)
    async with client_for(untrusted, db) as client:
        response = await login(client, **proxied)  # a forged header is not believed
        assert response.status_code == 303 and "Secure" not in response.headers["set-cookie"]
    trusted = make_settings(BOT_ADMIN_PASSWORD_HASH=hashed, BOT_ADMIN_TRUST_PROXY="true")
    async with client_for(trusted, db) as client:
        form = await client.get("/admin/login", headers=proxied)
        assert "Secure" in form.headers["set-cookie"]
    async with client_for(untrusted, db, base="https://bot.test") as client:
        response = await login(client)
        assert response.status_code == 303 and "Secure" in response.headers["set-cookie"]


async def test_login_redirect_stays_on_the_admin_page(settings, db) -> None:
    await AdminAuth(settings, db).set_password(PASSWORD)
    async with client_for(settings, db) as client:
        form = await client.get("/admin/login")
        response = await client.post(
            "/admin/login",
            data={"csrf": hidden(form.text, "csrf"), "password": PASSWORD, "next": "https://evil.example/"},
        )
        assert response.headers["location"] == "/admin/"


async def test_stored_text_is_escaped_on_the_page(settings, db) -> None:
    from bot.platform.messages import ConversationKey
    from bot.store.repo import NewPart, Store

    store = Store(db)
    conv = await store.conversation(ConversationKey("telegram", "b", "1"))
    await store.add_message(
        conv.id,
        "user",
        [NewPart("text", text="<script>alert(1)</script> hi")],
        status="pending",
        author_id="5",
        author_name="<b>Eve</b>",
    )
    await AdminAuth(settings, db).set_password(PASSWORD)
    async with client_for(settings, db) as client:
        await login(client)
        page = await client.get(f"/admin/conversations/{conv.id}")
        assert "&lt;script&gt;alert(1)&lt;/script&gt; hi" in page.text and "<script>alert" not in page.text
        found = await client.get("/admin/conversations", params={"user": "eve", "text": "<script>"})
        assert f'href="/admin/conversations/{conv.id}"' in found.text and "&lt;b&gt;Eve&lt;/b&gt;" in found.text


async def test_the_health_page_shows_each_platform_as_connected_now(settings, db) -> None:
    """Live, as /readyz reads it: a Socket Mode session that drops shows at once, not only
    whether the adapter was started."""
    link = {"up": True}
    health = RunnerHealth(db, {"slack": lambda: Health(link["up"], "Socket Mode")})
    await AdminAuth(settings, db).set_password(PASSWORD)
    app = create_app([], admin=create_admin_app(settings, db, health))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bot.test") as client:
        await login(client)

        async def state() -> str:
            page = (await client.get("/admin/health")).text
            return re.search(r"<strong>slack</strong>: <span[^>]*>([^<]+)</span>", page).group(1)

        assert await state() == "stopped"
        health.mark("slack", True)
        assert await state() == "connected"
        link["up"] = False
        assert await state() == "disconnected"
        assert "<strong>telegram</strong>: <span" in (await client.get("/admin/health")).text  # not configured
