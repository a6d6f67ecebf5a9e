from __future__ import annotations

import pytest

from documents.parsing import ParseError, content_type_for, parse_document
from tests.documents.factories import make_pdf

HTML_PAGE = b"""<!doctype html>
<html><head><title>Brewing guide</title>
<style>body { color: red }</style>
<script>var tracking = "do not index me";</script>
</head><body>
<nav><a href="/">Home</a> | <a href="/menu">Navigation menu</a></nav>
<header>Site banner</header>
<main>
  <h1>Green tea</h1>
  <p>Brew green tea at <b>80 degrees</b> for two
     minutes.</p>
  <p>Use fresh water.</p>
  <script>alert("inline")</script>
</main>
<aside>Related links</aside>
<footer>Copyright footer</footer>
</body></html>"""


def parse(filename: str, data: bytes):
    content_type = content_type_for(filename)
    assert content_type is not None
    return parse_document(filename=filename, content_type=content_type, data=data)


def test_text_keeps_paragraphs_and_uses_the_file_name_as_title():
    parsed = parse("notes.txt", b"First line\ncontinues here.\n\n\n\nSecond   paragraph.\r\n")
    assert parsed.title == "notes"
    assert parsed.text == "First line\ncontinues here.\n\nSecond paragraph."


def test_text_with_a_byte_order_mark_or_utf16_decodes():
    assert parse("a.txt", "\ufeffcafé".encode()).text == "café"
    assert parse("b.txt", "thé vert".encode("utf-16")).text == "thé vert"


def test_text_that_is_not_utf8_is_refused_with_the_offending_byte():
    with pytest.raises(ParseError, match=r"not UTF-8 text \(byte 0xe9 at position 3"):
        parse("latin1.txt", "café au lait".encode("latin-1"))


def test_markdown_title_comes_from_the_first_heading():
    parsed = parse("guide.md", b"Intro line\n\n# Tea Guide\n\nSteep well.")
    assert parsed.title == "Tea Guide"
    assert "Steep well." in parsed.text


def test_html_keeps_the_main_text_only():
    parsed = parse("guide.html", HTML_PAGE)
    assert parsed.title == "Brewing guide"
    assert parsed.text == "Green tea\n\nBrew green tea at 80 degrees for two minutes.\n\nUse fresh water."
    for noise in ["tracking", "inline", "Navigation", "banner", "Related", "Copyright", "color"]:
        assert noise not in parsed.text


def test_html_without_main_uses_the_body_and_drops_sphinx_chrome():
    page = (
        b'<html><body><div role="navigation">index modules</div>'
        b'<div role="main"><h1>Errors<a class="headerlink" href="#e">\xc2\xb6</a></h1><p>Raise them.</p></div>'
        b'<div role="search">quick search</div></body></html>'
    )
    parsed = parse("errors.html", page)
    assert parsed.title == "Errors"
    assert parsed.text == "Errors\n\nRaise them."


def test_html_with_a_declared_charset_is_decoded_by_it():
    page = '<html><head><meta charset="iso-8859-1"></head><body><p>café</p></body></html>'.encode("latin-1")
    assert parse("old.html", page).text == "café"


def test_pdf_text_from_every_page():
    data = make_pdf([["Page one talks about kettles."], ["Page two (the last) talks about cups."]])
    parsed = parse("manual.pdf", data)
    assert "Page one talks about kettles." in parsed.text
    assert "Page two (the last) talks about cups." in parsed.text
    assert parsed.text.index("kettles") < parsed.text.index("cups")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"this is not a pdf", "not a PDF"),
        (b"%PDF-1.4\n1 0 obj garbage without any structure", "PDF is damaged"),
        (make_pdf([[]]), "no extractable text"),
    ],
)
def test_bad_pdfs_are_refused_with_a_reason(data, message):
    with pytest.raises(ParseError, match=message):
        parse("broken.pdf", data)


def test_text_with_a_utf16_mark_but_broken_bytes_is_refused_with_a_reason():
    with pytest.raises(ParseError, match="The file is not UTF-16 text"):
        parse("odd.txt", b"\xff\xfe\x00\xd8")


def test_a_nul_byte_in_a_title_is_dropped():
    assert parse("tea.md", b"# Te\x00a\n\nBrew it hot.").title == "Tea"


def test_a_file_with_nothing_but_whitespace_has_no_text():
    with pytest.raises(ParseError, match="no text"):
        parse("blank.md", b"  \n\n \t \n")


def test_nul_bytes_are_removed():
    assert parse("nul.txt", b"tea\x00pot").text == "teapot"


def test_unknown_extension_has_no_content_type():
    assert content_type_for("slides.pptx") is None
    assert content_type_for("README.MD") == "text/markdown"


def test_html_code_blocks_keep_their_lines():
    page = b"<html><body><p>Loop:</p><pre>&gt;&gt;&gt; for i in range(2):\n...     print(i)\n0\n1\n</pre></body></html>"
    assert parse("code.html", page).text == "Loop:\n\n>>> for i in range(2):\n... print(i)\n0\n1"
