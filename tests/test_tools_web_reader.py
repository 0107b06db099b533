"""The web reader: refuses private, loopback, link-local and other non-public addresses
(before connecting, and again after every redirect), bounds size and time, returns readable
text. No real network: a fake site on 127.0.0.1 reached through a scripted resolver."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest
from aiohttp import web

from bot.tools import ToolError
from bot.tools.web_reader import WebReader, is_public_address, system_resolver, web_reader_tool

LOOPBACK = ipaddress.ip_address("127.0.0.1")

PAGE = """<!doctype html><html><head><title>夏日防晒指南</title><style>p {color: red}</style></head>
<body><nav>首页 | 关于</nav><article><h1>防晒怎么选</h1><p>SPF50+ 适合<b>户外</b>。</p>
<p>通勤用 SPF30 就够了。</p></article><script>track("secret-script")</script><footer>© site</footer></body></html>"""


def names(mapping: dict[str, list[str]], seen: list[str] | None = None):
    async def resolve(host: str, port: int) -> list[str]:
        if seen is not None:
            seen.append(host)
        if host not in mapping:
            raise OSError("no such host")
        return mapping[host]

    return resolve


@pytest.fixture
async def site():
    release = asyncio.Event()

    async def page(_: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    async def gbk(_: web.Request) -> web.Response:
        return web.Response(
            body="<html><body><p>中文编码页面</p></body></html>".encode("gbk"),
            headers={"Content-Type": "text/html; charset=gbk"},
        )

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound(request.query["to"])

    async def big(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        try:
            for _ in range(400):  # 400 × 64 KiB = 25 MiB if nobody stops reading
                await response.write(b"a" * 65536)
        except (ConnectionResetError, ConnectionError):
            pass
        return response

    async def slow(_: web.Request) -> web.Response:
        await release.wait()
        return web.Response(text="late")

    async def image(_: web.Request) -> web.Response:
        return web.Response(body=b"\x89PNG\r\n", content_type="image/png")

    async def missing(_: web.Request) -> web.Response:
        return web.Response(status=404, text="nope")

    app = web.Application()
    app.router.add_get("/page", page)
    app.router.add_get("/gbk", gbk)
    app.router.add_get("/redirect", redirect)
    app.router.add_get("/big", big)
    app.router.add_get("/slow", slow)
    app.router.add_get("/image", image)
    app.router.add_get("/missing", missing)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
    await runner.setup()
    tcp = web.TCPSite(runner, "127.0.0.1", 0)
    await tcp.start()
    port = runner.addresses[0][1]
    yield f"http://site.test:{port}"
    release.set()
    await runner.cleanup()


def test_reader(**kw: object) -> WebReader:
    """A reader that also allows exactly 127.0.0.1 (the fake site), nothing else private."""
    options: dict[object, object] = {
        "resolver": names({"site.test": ["127.0.0.1"], "internal.test": ["192.168.1.10"]}),
        "allow": lambda ip: ip == LOOPBACK or is_public_address(ip),
        "timeout": 5.0,
    }
    options.update(kw)
    return WebReader(**options)  # type: ignore[arg-type]


test_reader.__test__ = False  # a helper, not a test


@pytest.mark.parametrize(
    "address, public",
    [
        ("8.8.8.8", True),
        ("1.1.1.1", True),
        ("2001:4860:4860::8888", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.0.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("240.0.0.1", False),
        ("192.0.2.1", False),
        ("::1", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("ff02::1", False),
        ("::ffff:10.0.0.1", False),
        ("::ffff:8.8.8.8", True),
        ("2002:0a00:0001::1", False),
    ],
)
def test_public_address_policy(address: str, public: bool) -> None:
    assert is_public_address(ipaddress.ip_address(address)) is public


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://10.0.0.8/admin",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:8080/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
        "https://192.168.1.1/",
    ],
)
async def test_refuses_private_literals_without_resolving(url: str) -> None:
    seen: list[str] = []
    reader = WebReader(resolver=names({}, seen))
    with pytest.raises(ToolError, match="private or reserved"):
        await reader.read(url)
    assert seen == []


async def test_every_resolved_address_must_be_public() -> None:
    reader = WebReader(resolver=names({"mixed.test": ["93.184.216.34", "10.0.0.7"], "localhost.test": ["::1"]}))
    with pytest.raises(ToolError, match=r"mixed.test points to a private .*10\.0\.0\.7"):
        await reader.read("http://mixed.test/")
    with pytest.raises(ToolError, match="private or reserved"):
        await reader.read("https://localhost.test/")
    with pytest.raises(ToolError, match="could not be found"):
        await reader.read("http://unknown.test/")


@pytest.mark.parametrize("url", ["http://localhost/", "http://2130706433/", "http://0x7f.0.0.1/"])
async def test_system_resolver_aliases_of_loopback_are_refused(url: str) -> None:
    with pytest.raises(ToolError, match="private or reserved|could not be found|not a valid"):
        await WebReader(resolver=system_resolver).read(url)


@pytest.mark.parametrize(
    "url, message",
    [
        ("file:///etc/passwd", "only http"),
        ("ftp://example.com/", "only http"),
        ("http://user:pw@example.com/", "user name or password"),
        ("http://", "no host|not a valid"),
    ],
)
async def test_refuses_other_schemes_and_credentials(url: str, message: str) -> None:
    with pytest.raises(ToolError, match=message):
        await WebReader(resolver=names({})).read(url)


async def test_reads_readable_text(site: str) -> None:
    text = await test_reader().read(f"{site}/page")
    assert "Title: 夏日防晒指南" in text
    assert "防晒怎么选\nSPF50+ 适合户外。\n通勤用 SPF30 就够了。" in text
    assert "secret-script" not in text and "color: red" not in text and "首页" not in text
    assert "<p>" not in text
    gbk = await test_reader().read(f"{site}/gbk")
    assert "中文编码页面" in gbk


async def test_redirects_are_checked_at_every_hop(site: str) -> None:
    ok = await test_reader().read(f"{site}/redirect?to=/page")
    assert "防晒怎么选" in ok
    with pytest.raises(ToolError, match=r"10\.0\.0\.1"):
        await test_reader().read(f"{site}/redirect?to=http://10.0.0.1/")
    with pytest.raises(ToolError, match=r"internal.test points to a private .*192\.168\.1\.10"):
        await test_reader().read(f"{site}/redirect?to=http://internal.test/secret")
    with pytest.raises(ToolError, match="too many redirects"):
        await test_reader(max_redirects=2).read(f"{site}/redirect?to=/redirect%3Fto%3D/redirect%253Fto%253D/page")


async def test_size_is_bounded(site: str) -> None:
    text = await test_reader(max_bytes=100_000, max_chars=5_000).read(f"{site}/big")
    body = text.split("\n\n")[1]
    assert set(body) == {"a"} and len(body) == 5_000
    assert text.endswith("[the page was long; only its beginning was read]")


async def test_time_is_bounded(site: str) -> None:
    with pytest.raises(ToolError, match="did not load within 0.2 seconds"):
        await test_reader(timeout=0.2).read(f"{site}/slow")


async def test_non_pages_and_http_errors(site: str) -> None:
    with pytest.raises(ToolError, match=r"not a web page \(image/png\)"):
        await test_reader().read(f"{site}/image")
    with pytest.raises(ToolError, match="HTTP 404"):
        await test_reader().read(f"{site}/missing")


async def test_tool_wrapper_returns_refusals_as_results() -> None:
    from bot.gateway.events import ToolCall
    from bot.tools import ToolRegistry

    reg = ToolRegistry([web_reader_tool(WebReader(resolver=names({})))])
    [result] = await reg.run_calls([ToolCall("w", "read_web_page", '{"url": "http://127.0.0.1:22/"}')], timeout=5)
    assert result.startswith("Error: 127.0.0.1 points to a private or reserved network address")
