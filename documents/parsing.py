"""Turn uploaded bytes into plain text, one parser per supported file type."""

from __future__ import annotations

import functools
import io
import re
from dataclasses import dataclass
from pathlib import PurePath
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lxml.html import HtmlElement, HTMLParser

from documents.textblocks import blocks_text, fenced, normalize_blocks, prose, text_blocks

CONTENT_TYPES = {
    ".txt": "text/plain",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".html": "text/html",
    ".htm": "text/html",
    ".pdf": "application/pdf",
}
SUPPORTED_EXTENSIONS = ", ".join(sorted({ext for ext in CONTENT_TYPES if ext not in {".markdown", ".htm"}}))

# Navigation, chrome and code that is not part of a page's main text.
HTML_DROP_TAGS = [
    "script",
    "style",
    "noscript",
    "template",
    "nav",
    "header",
    "footer",
    "aside",
    "form",
    "iframe",
    "svg",
]
HTML_DROP_ROLES = ["navigation", "search", "banner", "contentinfo", "complementary"]
# Private-use characters standing for a line break and a space inside <pre>, so that the
# whitespace folding of the rest of the page leaves code as it is.
PRE_NEWLINE = "\ue000"
PRE_SPACE = "\ue001"
MARKUP = "\ue002"  # leads the headings and fences the parser writes, until prose is told from them
SECTION_HEADINGS = ["h1", "h2", "h3", "h4"]  # h5 and h6 read as a line of text
# Reference documentation describes a function, class or command-line option per entry
# (Sphinx's <dl class="py function">): each entry is a section of its own, named after
# what it describes, one level below the heading above it. Methods and attributes stay
# in their class's section.
API_ENTRIES = [{"py", "function"}, {"py", "class"}, {"py", "exception"}, {"std", "cmdoption"}, {"describe"}]
API_NAME_CLASSES = {"sig-prename", "sig-name"}  # the entry's name, without its parameters
HTML_BLOCK_TAGS = {
    "p", "div", "section", "article", "main", "li", "dt", "dd", "pre", "blockquote", "table", "tr",
    "h1", "h2", "h3", "h4", "h5", "h6", "br", "hr", "ul", "ol", "dl", "figure", "figcaption",
}  # fmt: skip


class ParseError(Exception):
    """The file cannot be read as its type says; the message is shown to the uploader."""


@dataclass(frozen=True)
class ParsedDocument:
    title: str
    text: str


def content_type_for(filename: str) -> str | None:
    return CONTENT_TYPES.get(PurePath(filename).suffix.lower())


def parse_document(*, filename: str, content_type: str, data: bytes) -> ParsedDocument:
    parser = {
        "text/plain": _parse_text,
        "text/markdown": _parse_markdown,
        "text/html": _parse_html,
        "application/pdf": _parse_pdf,
    }.get(content_type)
    if parser is None:
        raise ParseError(f"Unsupported file type {content_type!r}; supported: {SUPPORTED_EXTENSIONS}.")
    title, text = parser(data)
    text = normalize_text(text)
    if not text:
        raise ParseError("The file contains no text to index.")
    title = (title or PurePath(filename).stem).replace("\x00", "").strip()[:300]  # PostgreSQL stores no NUL
    return ParsedDocument(title=title, text=text)


def normalize_text(text: str) -> str:
    """The text format of documents.textblocks: blocks separated by one blank line, runs of
    spaces collapsed outside code, no NUL bytes."""
    return blocks_text(normalize_blocks(text_blocks(text.replace("\x00", ""))))


def decode_text(data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise ParseError(
                f"The file is not UTF-16 text, as its first bytes say (bytes {exc.start}-{exc.end - 1} are invalid). "
                "Save it as UTF-8 and upload it again."
            ) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ParseError(
            f"The file is not UTF-8 text (byte 0x{data[exc.start]:02x} at position {exc.start} is invalid). "
            "Save it as UTF-8 and upload it again."
        ) from None


def _parse_text(data: bytes) -> tuple[str, str]:
    return "", prose(decode_text(data))


def _parse_markdown(data: bytes) -> tuple[str, str]:
    text = decode_text(data)
    heading = re.search(r"^#\s+(.+?)\s*#*\s*$", text, flags=re.MULTILINE)
    return (heading.group(1) if heading else ""), text


def _parse_html(data: bytes) -> tuple[str, str]:
    # lxml's tree directly, not through BeautifulSoup: a tenth of the time, on bulk ingestion.
    import lxml.html
    from lxml import etree

    try:
        root = lxml.html.document_fromstring(_html_decode(data).encode(), parser=_html_parser())
    except etree.ParserError:  # nothing but whitespace: parse_document says there is no text
        return "", ""
    etree.strip_tags(root, etree.Comment, etree.ProcessingInstruction)
    title_tag = root.find(".//title")
    title = _words(title_tag) if title_tag is not None else ""
    for tag in list(root.iter(*HTML_DROP_TAGS)):
        _drop(tag)
    for tag in root.xpath("//*[@role]"):
        if tag.get("role") in HTML_DROP_ROLES:
            _drop(tag)
    for tag in list(root.iter("a")):
        if "headerlink" in _classes(tag):  # Sphinx's pilcrow anchors
            _drop(tag)
    main = next(
        (found[0] for found in (list(root.iter("main")), root.xpath("//*[@role='main']"), list(root.iter("article")))
         if found),
        root.body if root.find("body") is not None else root,
    )  # fmt: skip
    for pre in list(main.iter("pre")):  # code keeps its lines and indentation, fenced
        code = "".join(pre.itertext()).strip("\n").replace("\t", "    ")
        _set_text(pre, MARKUP + fenced(code).replace("\n", PRE_NEWLINE).replace(" ", PRE_SPACE))
    _api_entries_as_headings(main)
    for heading in _descendants(main, SECTION_HEADINGS):
        words = _words(heading)
        _set_text(heading, f"{MARKUP}{'#' * int(heading.tag[1])} {words}" if words else "")
    # Elsewhere inside a paragraph, newlines are only layout.
    paragraphs = re.split(r"\n\s*\n", _text_with_blocks(main))
    text = prose("\n\n".join(" ".join(p.split()) for p in paragraphs))
    text = text.replace(MARKUP, "").replace(PRE_NEWLINE, "\n").replace(PRE_SPACE, " ")
    if not title:
        title = next((b.text for b in text_blocks(text) if b.kind == "heading" and b.level == 1), "")
    return title, text


def _html_decode(data: bytes) -> str:
    """The page's text: in its declared charset, else it must be UTF-8 (or UTF-16 with a BOM)."""
    declared = re.search(rb"<meta[^>]+charset=[\"']?([\w-]+)", data[:4096], flags=re.IGNORECASE)
    if declared is not None:
        try:
            return data.decode(declared.group(1).decode("ascii"), errors="replace")
        except LookupError:  # a charset Python does not know: read it as UTF-8 if it is
            pass
    return decode_text(data)


@functools.cache
def _html_parser() -> HTMLParser:
    from lxml.html import HTMLParser

    return HTMLParser(encoding="utf-8")


def _api_entries_as_headings(main: HtmlElement) -> None:
    """Each API entry becomes a section: its first <dt> a heading naming what the entry
    describes (several names for aliases), every <dt> its full signature, a line of text."""
    level = 1
    for tag in _descendants(main, [*SECTION_HEADINGS, "dl"]):
        if tag.tag in SECTION_HEADINGS:
            level = int(tag.tag[1])
            continue
        signatures = [child for child in tag if child.tag == "dt"]
        if not signatures or not any(entry <= _classes(tag) for entry in API_ENTRIES):
            continue
        names = [
            "".join("".join(n.itertext()) for n in dt.iterdescendants() if API_NAME_CLASSES & _classes(n)).strip()
            or _words(dt)
            for dt in signatures
        ]
        words = ", ".join(dict.fromkeys(filter(None, names)))  # "class list" and "list" are one name
        heading = main.makeelement(f"h{min(level + 1, len(SECTION_HEADINGS))}")
        heading.text = words
        for dt, name in zip(signatures, names, strict=True):
            signature = " ".join("".join(dt.itertext()).split())
            if signature == name:  # a bare name ("-v"): the heading says it all
                _drop(dt)
            else:
                line = main.makeelement("p")
                line.text, line.tail = signature, dt.tail
                tag.replace(dt, line)
        tag.addprevious(heading)


def _descendants(element: HtmlElement, tags: list[str]) -> list[HtmlElement]:
    return [tag for tag in element.iter(*tags) if tag is not element]


def _classes(element: HtmlElement) -> set[str]:
    return set((element.get("class") or "").split())


def _words(element: HtmlElement) -> str:
    return " ".join(piece.strip() for piece in element.itertext() if piece.strip())


def _drop(element: HtmlElement) -> None:
    """Remove the element and what it holds; the text after it stays."""
    if element.getparent() is not None:
        element.drop_tree()


def _set_text(element: HtmlElement, text: str) -> None:
    for child in list(element):
        element.remove(child)
    element.text = text


def _text_with_blocks(main: HtmlElement) -> str:
    """The text inside `main`, with a blank line around each block element's."""
    from lxml import etree

    parts: list[str] = []
    for event, element in etree.iterwalk(main, events=("start", "end")):
        block = element is not main and element.tag in HTML_BLOCK_TAGS
        if block:
            parts.append("\n\n")
        if event == "start":
            parts.append(element.text or "")
        elif element is not main:
            parts.append(element.tail or "")
    return "".join(parts)


def _parse_pdf(data: bytes) -> tuple[str, str]:
    from pypdf import PdfReader

    if not data.lstrip()[:5] == b"%PDF-":
        raise ParseError("The file is not a PDF (it does not start with %PDF-).")
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise ParseError("The PDF is encrypted; upload a copy without a password.")
        pages = [page.extract_text() or "" for page in reader.pages]
        title = str(reader.metadata.title or "") if reader.metadata else ""
        headings = _pdf_outline(reader)
    except ParseError:
        raise
    except Exception as exc:  # pypdf raises many types on damaged input; all mean the same to the uploader
        raise ParseError(f"The PDF is damaged and cannot be read ({type(exc).__name__}: {exc}).") from None
    if not any(page.strip() for page in pages):
        raise ParseError("The PDF has no extractable text (it may be scanned images).")
    pages = [_with_headings(prose(page), headings.get(number, [])) for number, page in enumerate(pages)]
    return title, "\n\n".join(pages)


def _pdf_outline(reader: object) -> dict[int, list[tuple[int, str]]]:
    """The outline's entries (bookmarks) by page number: (level, title), in outline order.
    A damaged outline is no outline: the text still reads without headings."""
    headings: dict[int, list[tuple[int, str]]] = {}

    def walk(entries: list[object], level: int) -> None:
        for entry in entries:
            if isinstance(entry, list):
                walk(entry, level + 1)
                continue
            page = reader.get_destination_page_number(entry)  # type: ignore[attr-defined]
            title = " ".join(str(getattr(entry, "title", "") or "").split())
            if title and page is not None and page >= 0:
                headings.setdefault(page, []).append((min(level, 6), title))

    try:
        walk(reader.outline, 1)  # type: ignore[attr-defined]
    except Exception:  # pypdf raises many types on a damaged outline
        return {}
    return headings


def _with_headings(page: str, headings: list[tuple[int, str]]) -> str:
    """The page's text with each outline heading in place of the line that prints it, or
    at the top of the page when no line does."""
    lines = page.split("\n")
    on_top: list[str] = []
    for level, title in headings:
        marked = f"\n\n{'#' * level} {title}\n\n"
        wanted = title.casefold()
        found = next((i for i, line in enumerate(lines) if " ".join(line.split()).casefold() == wanted), None)
        if found is None:
            on_top.append(marked)
        else:
            lines[found] = marked
    return "".join(on_top) + "\n".join(lines)
