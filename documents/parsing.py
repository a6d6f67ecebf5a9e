"""Turn uploaded bytes into plain text, one parser per supported file type."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import PurePath

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
PRE_NEWLINE = "\ue000"  # a private-use character standing for a line break inside <pre>
HTML_BLOCK_TAGS = [
    "p", "div", "section", "article", "main", "li", "dt", "dd", "pre", "blockquote", "table", "tr",
    "h1", "h2", "h3", "h4", "h5", "h6", "br", "hr", "ul", "ol", "dl", "figure", "figcaption",
]  # fmt: skip


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
    """Paragraphs separated by one blank line, runs of spaces collapsed, no NUL bytes."""
    text = text.replace("\x00", "").replace("\r\n", "\n").replace("\r", "\n")
    paragraphs = (re.sub(r"[ \t\f\v\u00a0]+", " ", p).strip() for p in re.split(r"\n\s*\n", text))
    return "\n\n".join(p for p in paragraphs if p)


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
    return "", decode_text(data)


def _parse_markdown(data: bytes) -> tuple[str, str]:
    text = decode_text(data)
    heading = re.search(r"^#\s+(.+?)\s*#*\s*$", text, flags=re.MULTILINE)
    return (heading.group(1) if heading else ""), text


def _parse_html(data: bytes) -> tuple[str, str]:
    from bs4 import BeautifulSoup

    # Let the parser honour a declared charset; undeclared bytes must be UTF-8.
    declared = re.search(rb"<meta[^>]+charset=[\"']?([\w-]+)", data[:4096], flags=re.IGNORECASE)
    if declared is None:
        decode_text(data)
    soup = BeautifulSoup(data, "lxml")
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    for tag in soup(HTML_DROP_TAGS):
        tag.decompose()
    for tag in soup.select(", ".join(f'[role="{role}"]' for role in HTML_DROP_ROLES)):
        tag.decompose()
    for tag in soup.select("a.headerlink"):  # Sphinx's pilcrow anchors
        tag.decompose()
    main = soup.find("main") or soup.select_one('[role="main"]') or soup.find("article") or soup.body or soup
    for pre in main.find_all("pre"):  # code keeps its lines
        pre.string = pre.get_text().strip("\n").replace("\n", PRE_NEWLINE)
    for tag in main.find_all(HTML_BLOCK_TAGS):
        tag.insert_before("\n\n")
        tag.insert_after("\n\n")
    # Elsewhere inside a paragraph, newlines are only layout.
    paragraphs = re.split(r"\n\s*\n", main.get_text())
    text = "\n\n".join(" ".join(p.split()) for p in paragraphs).replace(PRE_NEWLINE, "\n")
    if not title:
        h1 = main.find("h1")
        title = h1.get_text(" ", strip=True) if h1 else ""
    return title, text


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
    except ParseError:
        raise
    except Exception as exc:  # pypdf raises many types on damaged input; all mean the same to the uploader
        raise ParseError(f"The PDF is damaged and cannot be read ({type(exc).__name__}: {exc}).") from None
    if not any(page.strip() for page in pages):
        raise ParseError("The PDF has no extractable text (it may be scanned images).")
    return title, "\n\n".join(pages)
