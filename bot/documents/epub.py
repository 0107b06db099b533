"""E-books (.epub): chapters in spine order, titled from the table of contents (EPUB 3 nav
document, else the EPUB 2 NCX), as text.

Read with zipfile and lxml rather than ebooklib: ebooklib is AGPL-3.0, which would put the
whole service under the AGPL's network clause, and all we need is the package document's
spine and the table of contents, a few dozen lines. XML is parsed with entities, DTDs and
network access off; chapters go through lxml's HTML parser, which is lenient with the
tag soup real e-books hold and expands no entities but the HTML ones.
"""

from __future__ import annotations

import posixpath
import re
import zipfile
from typing import Any
from urllib.parse import unquote, urldefrag

from bot.documents.archive import label, open_zip
from bot.documents.document import Document, DocumentUnreadable, Location, Section
from bot.documents.textnorm import normalise

MAX_CHAPTERS = 5_000
MAX_CHAPTER_BYTES = 32 * 1024 * 1024
# Encryption that only obfuscates embedded fonts (IDPF, Adobe): the text is readable.
FONT_OBFUSCATION = {"http://www.idpf.org/2008/embedding", "http://ns.adobe.com/pdf/enc#RC"}
XHTML_TYPES = {"application/xhtml+xml", "text/html", "application/html"}
NS = {
    "c": "urn:oasis:names:tc:opendocument:xmlns:container",
    "opf": "http://www.idpf.org/2007/opf",
    "ncx": "http://www.daisy.org/z3986/2005/ncx/",
    "enc": "http://www.w3.org/2001/04/xmlenc#",
    "epub": "http://www.idpf.org/2007/ops",
}
BLOCKS = {
    "p",
    "div",
    "section",
    "article",
    "li",
    "tr",
    "br",
    "hr",
    "blockquote",
    "pre",
    "table",
    "ul",
    "ol",
    "dl",
    "dt",
    "dd",
    "figure",
    "figcaption",
    "aside",
    "header",
    "footer",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
}
SKIP = {"script", "style", "head", "title", "svg", "math", "rt", "rp"}
_CJK = "\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef"
_CJK_BREAK = re.compile(f"(?<=[{_CJK}])[ \t\r\f\v]*\n\\s*(?=[{_CJK}])")
_SPACES = re.compile(r"\s+")
_MANY_LINES = re.compile(r"\n[ \t]*(\n[ \t]*)+")
_DECLARED = re.compile(rb"^\s*<\?xml[^>]*encoding=[\"']([A-Za-z0-9._-]+)")
_DECLARATION = re.compile(r"^\ufeff?\s*<\?xml[^>]*\?>")


def _xml(raw: bytes) -> Any:
    from lxml import etree

    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, recover=True, remove_comments=True
    )
    root = etree.fromstring(raw, parser)
    if root is None:
        raise ValueError("not XML")
    return root


def _read(archive: zipfile.ZipFile, path: str) -> bytes:
    info = archive.getinfo(path)
    if info.file_size > MAX_CHAPTER_BYTES:
        raise ValueError(f"{path} is too large")
    return archive.read(info)


def _resolve(base: str, href: str) -> str:
    """A manifest or TOC href, relative to the file that holds it, as a path in the zip."""
    path = unquote(urldefrag(href)[0])
    return posixpath.normpath(posixpath.join(posixpath.dirname(base), path)) if path else ""


def _tag(element: Any) -> str:
    tag = element.tag
    return tag.rpartition("}")[2].lower() if isinstance(tag, str) else ""


def _inline(text: str) -> str:
    """HTML whitespace as a browser shows it: a line break between two CJK characters is no
    space at all; any other run of whitespace is one space."""
    return _SPACES.sub(" ", _CJK_BREAK.sub("", text))


def _html(raw: bytes) -> Any:
    """An XHTML/HTML document through lxml's HTML parser, decoded as its XML declaration or
    BOM says, else as UTF-8 (the EPUB default; the HTML parser alone would guess Latin-1)."""
    from lxml import html

    head = raw[:200]
    declared = _DECLARED.search(head)
    if raw.startswith(b"\xef\xbb\xbf"):
        codec = "utf-8-sig"
    elif raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        codec = "utf-16"
    else:
        codec = declared.group(1).decode("ascii") if declared else "utf-8"
    try:
        text = raw.decode(codec, "replace")
    except LookupError:
        text = raw.decode("utf-8", "replace")
    text = _DECLARATION.sub("", text, count=1)  # lxml takes no encoding declaration in a str
    parser = html.HTMLParser(no_network=True, remove_comments=True, remove_pis=True)
    return html.document_fromstring(text or "<html/>", parser=parser)


def html_text(raw: bytes) -> tuple[str, str]:
    """A content document's text (headings as Markdown) and its first heading."""
    root = _html(raw)
    body = root.find("body")
    out: list[str] = []
    first_heading = ""

    def walk(element: Any) -> None:
        nonlocal first_heading
        tag = _tag(element)
        if tag in SKIP or not tag:
            if element.tail:
                out.append(_inline(element.tail))
            return
        block = tag in BLOCKS
        if block:
            out.append("\n")
        if tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
            heading = _inline(element.text_content()).strip()
            if heading and not first_heading:
                first_heading = heading
            out.append("#" * int(tag[1]) + " ")
        if element.text:
            out.append(_inline(element.text))
        for child in element:
            walk(child)
        if block:
            out.append("\n")
        if element.tail:
            out.append(_inline(element.tail))

    walk(body if body is not None else root)
    text = _MANY_LINES.sub("\n\n", "".join(out))
    text = "\n".join(line.strip() for line in text.split("\n")).strip()
    return text, first_heading


def _toc(archive: zipfile.ZipFile, manifest: dict[str, tuple[str, str, str]], ncx_id: str) -> dict[str, str]:
    """Chapter titles by content-document path: the first TOC entry pointing into each."""
    titles: dict[str, str] = {}
    nav = next((href for href, _, props in manifest.values() if "nav" in props.split()), None)
    if nav:
        root = _html(_read(archive, nav))
        navs = root.xpath("//nav")
        toc = [n for n in navs if "toc" in (n.get(f"{{{NS['epub']}}}type") or n.get("epub:type") or "")]
        for node in toc or navs[:1]:
            for link in node.iter("a"):
                path = _resolve(nav, link.get("href") or "")
                title = _inline(link.text_content()).strip()
                if path and title:
                    titles.setdefault(path, title)
        if titles:
            return titles
    ncx = manifest.get(ncx_id) or next((m for m in manifest.values() if m[1] == "application/x-dtbncx+xml"), None)
    if ncx:
        root = _xml(_read(archive, ncx[0]))
        for point in root.iter(f"{{{NS['ncx']}}}navPoint"):
            text = point.find("ncx:navLabel/ncx:text", NS)
            content = point.find("ncx:content", NS)
            if text is not None and content is not None and (text.text or "").strip():
                path = _resolve(ncx[0], content.get("src") or "")
                if path:
                    titles.setdefault(path, _inline(text.text or "").strip())
    return titles


def _drm(archive: zipfile.ZipFile) -> bool:
    if "META-INF/encryption.xml" not in archive.namelist():
        return False
    root = _xml(_read(archive, "META-INF/encryption.xml"))
    methods = {m.get("Algorithm", "") for m in root.iter(f"{{{NS['enc']}}}EncryptionMethod")}
    return bool(methods - FONT_OBFUSCATION)


def read_epub(data: bytes, filename: str) -> Document:
    name = label(filename)
    with open_zip(data, filename, "an e-book (EPUB)") as archive:
        try:
            if _drm(archive):
                raise DocumentUnreadable(f"{name} is protected by DRM; I can only read e-books without it")
            container = _xml(_read(archive, "META-INF/container.xml"))
            rootfile = container.find(".//c:rootfile", NS)
            if rootfile is None or not rootfile.get("full-path"):
                raise ValueError("no package document")
            opf_path = rootfile.get("full-path")
            opf = _xml(_read(archive, opf_path))
            manifest = {
                item.get("id"): (
                    _resolve(opf_path, item.get("href") or ""),
                    item.get("media-type") or "",
                    item.get("properties") or "",
                )
                for item in opf.iterfind("opf:manifest/opf:item", NS)
            }
            spine = opf.find("opf:spine", NS)
            if spine is None:
                raise ValueError("no spine")
            order = [ref.get("idref") for ref in spine.iterfind("opf:itemref", NS)]
            titles = _toc(archive, manifest, spine.get("toc") or "")
            chapters = [manifest[i] for i in order if i in manifest and manifest[i][1] in XHTML_TYPES]
        except DocumentUnreadable:
            raise
        except Exception as exc:  # noqa: BLE001 - zip, XML and layout errors all mean "damaged"
            raise DocumentUnreadable(
                f"{name} could not be read as an e-book (it may be damaged: {type(exc).__name__})"
            ) from None
        sections: list[Section] = []
        notes: list[str] = []
        bad = 0
        for path, _, _ in chapters[:MAX_CHAPTERS]:
            try:
                text, heading = html_text(_read(archive, path))
            except Exception:  # noqa: BLE001 - one broken chapter must not lose the others
                bad += 1
                continue
            if not text:
                continue  # a cover or an image-only page
            title = normalise(titles.get(path) or heading)
            sections.append(Section(Location("chapter", len(sections) + 1, title), normalise(text)))
    if bad:
        notes.append(f"{bad} chapter(s) of {name} could not be read and were skipped")
    if len(chapters) > MAX_CHAPTERS:
        notes.append(f"{name} has {len(chapters):,} content files; I read the first {MAX_CHAPTERS:,}")
    if not sections:
        raise DocumentUnreadable(f"{name} contains no text I can read")
    return Document(filename, "epub", "chapter", sections, len(sections), notes)
