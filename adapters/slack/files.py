"""Files shared in Slack → ``Attachment``s, or a note saying why not.

Downloads use the bot token (scope ``files:read``). Slack answers a wrong token or a
missing scope with 200 and an HTML login page, so the content type is checked. Slack
Connect events carry stubs (``file_access: check_file_info``) that ``files.info`` resolves.
"""

from __future__ import annotations

import logging

import aiohttp
from slack_sdk.errors import SlackApiError

from adapters.slack.api import SlackApi, error_code
from bot.platform import Attachment, FileKind, RateLimited, readable

log = logging.getLogger(__name__)

MB = 1024 * 1024
IMAGE_MAX = 10 * MB  # the gateway takes images up to 10 MB
DOCUMENT_MAX = 20 * MB


class FileProblem(Exception):
    """Worded for the user."""


def _kind(info: dict) -> FileKind | None:
    """Only what the bot can use is downloaded."""
    return readable(info.get("mimetype") or "", info.get("name") or "")


class FileFetcher:
    def __init__(self, api: SlackApi, session: aiohttp.ClientSession, token: str) -> None:
        self.api = api
        self.session = session
        self._token = token

    async def fetch_all(self, team: str, files: list[dict]) -> tuple[list[Attachment], list[str]]:
        attachments, notes = [], []
        for info in files:
            try:
                attachments.append(await self.fetch(team, info))
            except FileProblem as exc:
                notes.append(str(exc))
        return attachments, notes

    async def fetch(self, team: str, info: dict) -> Attachment:
        if (
            info.get("file_access") == "check_file_info"
            or not info.get("url_private_download")
            and not info.get("url_private")
        ):
            info = await self._info(team, info.get("id", ""))
        name = info.get("name") or info.get("title") or info.get("id", "file")
        kind = _kind(info)
        if kind is None:
            raise FileProblem(
                f"I can't read “{name}” ({info.get('mimetype') or 'unknown type'}). "
                "I understand images (JPEG, PNG, GIF, WebP), text, Markdown, CSV, JSON, PDF and Word files."
            )
        limit = IMAGE_MAX if kind == "image" else DOCUMENT_MAX
        if int(info.get("size") or 0) > limit:
            raise FileProblem(
                f"“{name}” is {int(info['size']) / MB:.1f} MB; the limit is {limit // MB} MB, so I didn't read it."
            )
        url = info.get("url_private_download") or info.get("url_private")
        if not isinstance(url, str):
            raise FileProblem(f"I couldn't download “{name}” (Slack gave no link to it).")
        data, content_type = await self._download(url, limit, name)
        if content_type.startswith("text/html") and not name.lower().endswith((".html", ".htm")):
            log.error("slack file download returned an HTML page: check the bot token's files:read scope")
            raise FileProblem(
                f"I couldn't download “{name}”: Slack didn't let me read it "
                "(the app may lack the files:read permission)."
            )
        mime = (info.get("mimetype") or content_type or "application/octet-stream").lower()
        return Attachment(data=data, mime=mime, filename=name)

    async def _info(self, team: str, file_id: str) -> dict:
        try:
            resp = await self.api.call_retrying(team, "files.info", file=file_id)
        except (SlackApiError, RateLimited) as exc:
            code = error_code(exc) if isinstance(exc, SlackApiError) else "rate limited"
            raise FileProblem(f"I couldn't open a shared file ({code}).") from exc
        return dict(resp["file"])

    async def _download(self, url: str, limit: int, name: str) -> tuple[bytes, str]:
        headers = {"Authorization": f"Bearer {self._token}"}
        try:
            async with self.session.get(url, headers=headers, timeout=aiohttp.ClientTimeout(total=60)) as resp:
                if resp.status != 200:
                    raise FileProblem(f"I couldn't download “{name}” (HTTP {resp.status}).")
                content_type = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
                chunks, size = [], 0
                async for chunk in resp.content.iter_chunked(256 * 1024):
                    size += len(chunk)
                    if size > limit:
                        raise FileProblem(f"“{name}” is over {limit // MB} MB, so I didn't read it.")
                    chunks.append(chunk)
                return b"".join(chunks), content_type
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise FileProblem(f"I couldn't download “{name}” (network error or timeout).") from exc
