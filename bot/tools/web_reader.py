"""The optional web page reader (BOT_WEB_READER, off by default).

A URL from a chat is untrusted input that makes our server open connections, so:
- only http/https, no credentials in the URL;
- the host is resolved first and EVERY address must be public (no private, loopback,
  link-local, multicast, reserved, unspecified, CGNAT or documentation ranges; IPv4-mapped
  and 6to4/Teredo IPv6 are checked by their embedded IPv4);
- the connection goes to the address we checked (the URL is pinned to the IP, with the
  original Host header and TLS server name), so DNS cannot change its answer in between;
- redirects are followed by hand, each hop checked the same way;
- bounded in bytes, characters and time; environment proxies are ignored.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from bot.tools.registry import Tool, ToolError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]
AddressPolicy = Callable[[IPAddress], bool]

MAX_BYTES = 2 * 1024 * 1024
MAX_CHARS = 20_000
TIMEOUT = 10.0
MAX_REDIRECTS = 5
USER_AGENT = "chatbot-web-reader/1.0 (+reads one page on a user's request)"
_HTML_TYPES = ("text/html", "application/xhtml+xml")
_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/ld+json")
_DROP_TAGS = (
    "script",
    "style",
    "noscript",
    "template",
    "svg",
    "iframe",
    "nav",
    "footer",
    "aside",
    "form",
    "button",
    "head",
)
_BLOCK_TAGS = {
    "p",
    "div",
    "li",
    "ul",
    "ol",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "br",
    "tr",
    "section",
    "article",
    "header",
    "main",
    "blockquote",
    "pre",
    "table",
    "dd",
    "dt",
    "figcaption",
}


def is_public_address(ip: IPAddress) -> bool:
    """True only for globally routable unicast addresses."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:  # ::ffff:a.b.c.d is a.b.c.d
            return is_public_address(ip.ipv4_mapped)
        embedded = ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None and not is_public_address(embedded):
            return False
    return ip.is_global and not (
        ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved or ip.is_unspecified
    )


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


class WebReader:
    def __init__(
        self,
        *,
        max_bytes: int = MAX_BYTES,
        max_chars: int = MAX_CHARS,
        timeout: float = TIMEOUT,
        max_redirects: int = MAX_REDIRECTS,
        resolver: Resolver = system_resolver,
        allow: AddressPolicy = is_public_address,
    ) -> None:
        self.max_bytes, self.max_chars, self.timeout = max_bytes, max_chars, timeout
        self.max_redirects = max_redirects
        self.resolver, self.allow = resolver, allow

    async def check(self, url: httpx.URL) -> IPAddress:
        """The address to connect to, after checking the URL and every address of its host."""
        if url.scheme not in ("http", "https"):
            raise ToolError("only http:// and https:// addresses can be read")
        if url.userinfo:
            raise ToolError("addresses with a user name or password are not read")
        host = url.host
        if not host:
            raise ToolError("the address has no host")
        port = url.port or (443 if url.scheme == "https" else 80)
        literal = _ip_literal(host)
        if literal is not None:
            addresses = [literal]
        else:
            try:
                async with asyncio.timeout(self.timeout):
                    names = await self.resolver(url.raw_host.decode("ascii"), port)
            except (OSError, UnicodeError, TimeoutError):
                raise ToolError(f"the host {host} could not be found") from None
            addresses = [a for a in (_ip_literal(n.split("%", 1)[0]) for n in names) if a is not None]
            if not addresses:
                raise ToolError(f"the host {host} could not be found")
        for address in addresses:
            if not self.allow(address):
                raise ToolError(
                    f"{host} points to a private or reserved network address ({address}); "
                    "only public web pages can be read"
                )
        return addresses[0]

    async def read(self, url: str) -> str:
        try:
            async with asyncio.timeout(self.timeout):
                return await self._read(url)
        except TimeoutError:
            raise ToolError(f"the page did not load within {self.timeout:g} seconds") from None

    async def _read(self, raw_url: str) -> str:
        try:
            url = httpx.URL(raw_url.strip())
        except (httpx.InvalidURL, TypeError):
            raise ToolError("that is not a valid web address") from None
        limits = httpx.Limits(max_connections=2, max_keepalive_connections=0)
        async with httpx.AsyncClient(
            trust_env=False, follow_redirects=False, limits=limits, timeout=httpx.Timeout(self.timeout)
        ) as client:
            for _hop in range(self.max_redirects + 1):
                address = await self.check(url)
                host_header = url.netloc.decode("ascii")
                pinned = url.copy_with(host=str(address))
                extensions: dict[str, Any] = (
                    {"sni_hostname": url.raw_host.decode("ascii")} if url.scheme == "https" else {}
                )
                request = client.build_request(
                    "GET",
                    pinned,
                    extensions=extensions,
                    headers={
                        "Host": host_header,
                        "User-Agent": USER_AGENT,
                        "Accept": "text/html,application/xhtml+xml,text/plain;q=0.9,*/*;q=0.5",
                    },
                )
                try:
                    response = await client.send(request, stream=True)
                except httpx.HTTPError as exc:
                    raise ToolError(f"the page could not be fetched ({type(exc).__name__})") from None
                try:
                    if response.is_redirect and "location" in response.headers:
                        url = url.join(response.headers["location"])
                        continue
                    if response.status_code >= 400:
                        raise ToolError(f"the page answered HTTP {response.status_code}")
                    return await self._page(url, response)
                finally:
                    await response.aclose()
        raise ToolError(f"too many redirects (more than {self.max_redirects})")

    async def _page(self, url: httpx.URL, response: httpx.Response) -> str:
        ctype = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype and not ctype.startswith(_TEXT_TYPES + _HTML_TYPES):
            raise ToolError(f"that address is not a web page ({ctype})")
        body = bytearray()
        cut = False
        async for chunk in response.aiter_bytes():
            body.extend(chunk)
            if len(body) >= self.max_bytes:
                del body[self.max_bytes :]
                cut = True
                break
        charset = response.charset_encoding
        if ctype in _HTML_TYPES or (not ctype and b"<html" in body[:2048].lower()):
            title, text = html_to_text(bytes(body), charset)
        else:
            title, text = "", _decode(bytes(body), charset)
        text = re.sub(r"\n{3,}", "\n\n", text).strip()
        notes = []
        if len(text) > self.max_chars:
            text = text[: self.max_chars]
            cut = True
        if cut:
            notes.append("[the page was long; only its beginning was read]")
        head = f"URL: {url}\n" + (f"Title: {title}\n" if title else "")
        return head + "\n" + text + ("\n\n" + " ".join(notes) if notes else "")


def _decode(data: bytes, charset: str | None) -> str:
    if charset:
        try:
            return data.decode(charset, "replace")
        except LookupError:
            pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("gb18030", "replace")


def html_to_text(data: bytes, charset: str | None = None) -> tuple[str, str]:
    """(title, readable text) of an HTML page: scripts, styles and navigation dropped,
    blocks on their own lines."""
    import lxml.html

    if not data.strip():
        return "", ""
    try:
        if charset:
            root = lxml.html.document_fromstring(_decode(data, charset))
        else:  # let lxml honour <meta charset>, falling back to our own decoding
            try:
                root = lxml.html.document_fromstring(data)
            except ValueError:
                root = lxml.html.document_fromstring(_decode(data, None))
    except Exception:  # noqa: BLE001 - lxml raises several types on garbage
        return "", _decode(data, charset)
    title_el = root.find(".//title")
    title = title_el.text_content().strip() if title_el is not None else ""
    for el in list(root.iter(*_DROP_TAGS)):
        el.drop_tree()
    for el in root.iter():
        if isinstance(el.tag, str) and el.tag in _BLOCK_TAGS:
            el.tail = "\n" + (el.tail or "")
    lines = (re.sub(r"[ \t\u00a0]+", " ", line).strip() for line in root.text_content().splitlines())
    return title, "\n".join(line for line in lines if line)


def web_reader_tool(reader: WebReader | None = None) -> Tool:
    reader = reader or WebReader()

    async def read_web_page(url: str) -> str:
        return await reader.read(url)

    return Tool(
        "read_web_page",
        "Fetch a public web page and return its readable text (title and main text, at most "
        f"{reader.max_chars:,} characters). Only for URLs the user gave or asked about.",
        {
            "type": "object",
            "required": ["url"],
            "properties": {"url": {"type": "string", "description": "an http(s) URL"}},
        },
        read_web_page,
        timeout=reader.timeout + 2,
        label="web reader",
    )
