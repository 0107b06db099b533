"""Logging in to the admin page: the password, sessions, CSRF tokens, login rate limits.

- The password is stored only as an Argon2id hash (``bot admin set-password`` writes it to
  the database; ``BOT_ADMIN_PASSWORD_HASH`` overrides). There is no default password: with
  none set, nobody can log in.
- A session is a random token in an HttpOnly, SameSite=Strict cookie (Secure over HTTPS);
  the database keeps only its HMAC, so a stolen database does not hold usable cookies and
  logging out ends the session for every copy of the cookie.
- Every form carries a CSRF token: the session's own, or before login a signed
  double-submit token bound to a cookie.
- The per-install secret for those HMACs is ``BOT_ADMIN_SESSION_SECRET`` or a random value
  made on first use and kept in the database.
- Login attempts are rate-limited per client address and overall (``limits``, in memory:
  per process).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from limits import parse
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter

from bot.config import Settings
from bot.store.db import Database
from bot.store.usage import UsageStore

PASSWORD_KEY = "admin_password_hash"
SECRET_KEY = "admin_session_secret"
SESSION_COOKIE = "bot_admin_session"
LOGIN_COOKIE = "bot_admin_login"
MIN_PASSWORD = 12

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"use at least {MIN_PASSWORD} characters")
    return _hasher.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True, slots=True)
class Session:
    id: str  # the HMAC of the cookie's token
    csrf: str


@dataclass(frozen=True, slots=True)
class Throttled:
    retry_after: int  # seconds


class AdminAuth:
    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.store = UsageStore(db)
        self._secret: bytes | None = None
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._per_client = parse(settings.admin_login_rate)
        # Overall: ten times one client's rate, against guessing from many addresses.
        self._overall = parse(
            f"{self._per_client.amount * 10}/{self._per_client.multiples} {self._per_client.GRANULARITY.name}"
        )

    async def password_hash(self) -> str | None:
        if self.settings.admin_password_hash is not None:
            return self.settings.admin_password_hash.get_secret_value() or None
        return await self.store.get_setting(PASSWORD_KEY)

    async def set_password(self, password: str) -> None:
        await self.store.set_setting(PASSWORD_KEY, hash_password(password))

    async def secret(self) -> bytes:
        if self._secret is None:
            if self.settings.admin_session_secret is not None:
                value = self.settings.admin_session_secret.get_secret_value()
            else:  # made once per install; the first process to store it wins
                value = await self.store.set_setting(SECRET_KEY, secrets.token_urlsafe(48), only_if_missing=True)
            self._secret = value.encode()
        return self._secret

    async def _mac(self, *parts: str) -> str:
        return hmac.new(await self.secret(), "\x00".join(parts).encode(), hashlib.sha256).hexdigest()

    # --- login ---
    async def throttle(self, client: str) -> Throttled | None:
        """Count one login attempt; a ``Throttled`` when over the rate."""
        for limit, key in ((self._per_client, client), (self._overall, "*")):
            if not await self._limiter.hit(limit, "admin-login", key):
                stats = await self._limiter.get_window_stats(limit, "admin-login", key)
                wait = max(1, int(stats.reset_time - datetime.now(UTC).timestamp()) + 1)
                return Throttled(wait)
        return None

    async def check_password(self, password: str) -> bool:
        stored = await self.password_hash()
        if not stored or not password:
            return False
        # Argon2 takes tens of milliseconds of CPU: keep the event loop (and the bot) running.
        return await asyncio.to_thread(verify_password, stored, password)

    async def login_form_token(self, nonce: str) -> str:
        return await self._mac("login", nonce)

    async def check_login_form_token(self, nonce: str, token: str) -> bool:
        return bool(nonce and token) and hmac.compare_digest(await self.login_form_token(nonce), token)

    # --- sessions ---
    async def start_session(self) -> tuple[str, Session]:
        """A new session: (the cookie's token, the session)."""
        token = secrets.token_urlsafe(32)
        session = Session(await self._mac("session", token), secrets.token_urlsafe(32))
        hours = self.settings.admin_session_hours
        await self.store.add_session(session.id, session.csrf, datetime.now(UTC) + timedelta(hours=hours))
        return token, session

    async def session(self, token: str | None) -> Session | None:
        if not token:
            return None
        session_id = await self._mac("session", token)
        csrf = await self.store.session_csrf(session_id)
        return Session(session_id, csrf) if csrf is not None else None

    async def end_session(self, token: str | None) -> None:
        if token:
            await self.store.end_session(await self._mac("session", token))
