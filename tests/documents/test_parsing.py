from __future__ import annotations

import io

import pytest
from pypdf import PdfReader, PdfWriter
from pypdf.generic import IndirectObject

from documents.parsing import ParseError, content_type_for, parse_document
from documents.textblocks import text_blocks
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
    assert parsed.text == "# Green tea\n\nBrew green tea at 80 degrees for two minutes.\n\nUse fresh water."
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
    assert parsed.text == "# Errors\n\nRaise them."


def test_html_with_a_declared_charset_is_decoded_by_it():
    page = '<html><head><meta charset="iso-8859-1"></head><body><p>café</p></body></html>'.encode("latin-1")
    assert parse("old.html", page).text == "café"


def test_html_with_an_unknown_charset_is_read_as_utf8_or_refused():
    page = '<html><head><meta charset="klingon"></head><body><p>thé</p></body></html>'
    assert parse("odd.html", page.encode()).text == "thé"
    with pytest.raises(ParseError, match="not UTF-8 text"):
        parse("odd.html", page.encode("latin-1"))


def test_html_undeclared_must_be_utf8():
    with pytest.raises(ParseError, match=r"not UTF-8 text \(byte 0xe9"):
        parse("old.html", "<html><body><p>café</p></body></html>".encode("latin-1"))


def test_html_comments_and_an_xml_declaration_leave_no_text():
    page = (
        b'<?xml version="1.0" encoding="utf-8"?>\n<html><body><main><!-- build 42 -->'
        b"<p>Warm<!-- the pot --> the pot.</p></main></body></html>"
    )
    assert parse("x.html", page).text == "Warm the pot."


@pytest.mark.parametrize("page", [b"   \n ", b"<html><body><!-- nothing --></body></html>"])
def test_html_with_no_text_is_refused_with_a_reason(page):
    with pytest.raises(ParseError, match="no text"):
        parse("empty.html", page)


def test_html_text_after_a_dropped_element_stays():
    page = b"<html><body><p>Before <script>x()</script>after, <a class='headerlink'>#</a>and on.</p></body></html>"
    assert parse("t.html", page).text == "Before after, and on."


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


def test_html_code_blocks_keep_their_lines_and_indentation_fenced():
    page = b"<html><body><p>Loop:</p><pre>&gt;&gt;&gt; for i in range(2):\n...     print(i)\n0\n1\n</pre></body></html>"
    assert parse("code.html", page).text == "Loop:\n\n```\n>>> for i in range(2):\n...     print(i)\n0\n1\n```"


SPHINX_PAGE = """<html><head><title>7. Input and Output &#8212; Python 3.11.2 documentation</title></head><body>
<div class="sphinxsidebar" role="navigation"><h3>Table of Contents</h3></div>
<div role="main"><section>
<h1>7. Input and Output<a class="headerlink" href="#io" title="Permalink to this heading">\u00b6</a></h1>
<p>There are several ways.</p>
<h2>7.2. Reading and <code>Writing</code>
    Files<a class="headerlink" href="#rw">\u00b6</a></h2>
<p>Open a file:</p>
<div class="highlight"><pre><span class="gp">&gt;&gt;&gt; </span><span class="k">with</span> open('f') as f:
<span class="gp">... </span>    data = f.read()

<span class="gp">&gt;&gt;&gt; </span>f.closed
True
</pre></div>
<h3>7.2.1. Methods of File Objects<a class="headerlink" href="#m">\u00b6</a></h3><p>Call read.</p>
<h4>Seeking</h4><p>Call seek.</p>
<h5>Note</h5><p>Small print.</p>
<h6>Aside</h6>
</section></div></body></html>"""


def test_html_headings_h1_to_h4_become_markdown_headings_and_h5_stays_text():
    parsed = parse("inputoutput.html", SPHINX_PAGE.encode())
    assert parsed.title == "7. Input and Output \u2014 Python 3.11.2 documentation"
    assert parsed.text == (
        "# 7. Input and Output\n\nThere are several ways.\n\n## 7.2. Reading and Writing Files\n\nOpen a file:\n\n"
        "```\n>>> with open('f') as f:\n...     data = f.read()\n\n>>> f.closed\nTrue\n```\n\n"
        "### 7.2.1. Methods of File Objects\n\nCall read.\n\n#### Seeking\n\nCall seek.\n\n"
        "Note\n\nSmall print.\n\nAside"
    )
    assert "\u00b6" not in parsed.text
    assert "Table of Contents" not in parsed.text


API_PAGE = """<html><body><div role="main"><section><h1>bisect \u2014 Array bisection algorithm</h1>
<p>Keep a list sorted.</p>
<dl class="py function">
<dt class="sig sig-object py" id="bisect.insort_right"><span class="sig-prename descclassname">bisect.</span><span
 class="sig-name descname">insort_right</span>(<em class="sig-param">a</em>, <em class="sig-param">x</em>)</dt>
<dt class="sig sig-object py" id="bisect.insort"><span class="sig-prename descclassname">bisect.</span><span
 class="sig-name descname">insort</span>(<em class="sig-param">a</em>, <em class="sig-param">x</em>)</dt>
<dd><p>Insert <em>x</em> in <em>a</em> in sorted order.</p>
<dl class="py method"><dt class="sig sig-object py"><span class="sig-name descname">helper</span>()</dt>
<dd><p>A method stays in its entry.</p></dd></dl></dd></dl>
<section><h2>Examples</h2><p>See below.</p>
<dl class="std cmdoption"><dt class="sig sig-object std" id="cmdoption-v"><span class="sig-name descname">-v</span></dt>
<dd><p>Be verbose.</p></dd></dl></section></section></div></body></html>"""


def test_an_api_entry_of_a_reference_page_is_a_section_named_after_what_it_describes():
    parsed = parse("bisect.html", API_PAGE.encode())
    assert parsed.text == (
        "# bisect \u2014 Array bisection algorithm\n\nKeep a list sorted.\n\n"
        "## bisect.insort_right, bisect.insort\n\nbisect.insort_right(a, x)\n\nbisect.insort(a, x)\n\n"
        "Insert x in a in sorted order.\n\nhelper()\n\nA method stays in its entry.\n\n"
        "## Examples\n\nSee below.\n\n### -v\n\nBe verbose."
    )


def test_an_api_entry_that_names_one_thing_twice_is_headed_by_it_once():
    page = (
        b'<html><body><h1>Built-in Types</h1><dl class="py class"><dt><span class="sig-name">list</span>'
        b'([iterable])</dt><dt><span class="sig-name">list</span></dt><dd><p>A mutable sequence.</p></dd></dl>'
        b"</body></html>"
    )
    assert parse("stdtypes.html", page).text == (
        "# Built-in Types\n\n## list\n\nlist([iterable])\n\nA mutable sequence."
    )


def test_html_code_with_backticks_and_tabs_is_fenced_longer_with_tabs_as_spaces():
    page = b"<html><body><p>Markdown:</p><pre>```\n\tindented\n```</pre></body></html>"
    assert parse("md.html", page).text == "Markdown:\n\n````\n```\n    indented\n```\n````"


def test_html_without_a_title_takes_the_first_h1():
    page = b"<html><body><h2>Before</h2><h1>Real <em>title</em></h1><p>Text.</p></body></html>"
    parsed = parse("untitled.html", page)
    assert parsed.title == "Real title"
    assert parsed.text == "## Before\n\n# Real title\n\nText."


def test_html_without_a_title_never_takes_it_from_a_comment_in_code():
    page = b"<html><body><h2>Install</h2><pre># install deps\npip install x</pre></body></html>"
    assert parse("install.html", page).title == "install"  # the file's name


def test_markdown_keeps_its_headings_and_fences():
    source = (
        "# Guide\n\nIntro   text.\n\n## Install ##\n\n```bash\npip install x\n\n    indented\n```\n\n"
        "~~~\n```\nnested\n```\n~~~\n\n##### Fine print\n"
    )
    parsed = parse("guide.md", source.encode())
    assert parsed.title == "Guide"
    assert parsed.text == (
        "# Guide\n\nIntro text.\n\n## Install\n\n```bash\npip install x\n\n    indented\n```\n\n"
        "````\n```\nnested\n```\n````\n\n##### Fine print"
    )


def pdf_with_outline(pages: list[list[str]], outline: list[tuple[str, int, int]]) -> bytes:
    """make_pdf's pages with an outline: (title, page number, level) entries, a level-2 entry
    nested under the level-1 entry before it."""
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(make_pdf(pages))))
    parents: dict[int, IndirectObject] = {}
    for title, page_number, level in outline:
        parents[level] = writer.add_outline_item(title=title, page_number=page_number, parent=parents.get(level - 1))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_pdf_outline_titles_become_headings_at_the_lines_that_print_them():
    data = pdf_with_outline(
        [
            ["KETTLES", "Boil water in a kettle.", "Descaling", "Use vinegar monthly."],
            ["Cups hold tea.", "Saucers", "Saucers catch drips."],
        ],
        [("Kettles", 0, 1), ("Descaling", 0, 2), ("Cups and saucers", 1, 1), ("Saucers", 1, 2)],
    )
    assert parse("manual.pdf", data).text == (
        "# Kettles\n\nBoil water in a kettle.\n\n## Descaling\n\nUse vinegar monthly.\n\n"
        "# Cups and saucers\n\nCups hold tea.\n\n## Saucers\n\nSaucers catch drips."
    )


def test_pdf_outline_titles_no_line_prints_go_at_the_top_of_their_page():
    data = pdf_with_outline(
        [["Preface text."], ["Chapter text starts here.", "And goes on."]],
        [("Preface", 0, 1), ("Chapter One", 1, 1), ("Overview", 1, 2)],
    )
    assert parse("book.pdf", data).text == (
        "# Preface\n\nPreface text.\n\n# Chapter One\n\n## Overview\n\nChapter text starts here.\nAnd goes on."
    )


def test_a_pdf_outline_entry_marks_only_one_line_of_its_page():
    data = pdf_with_outline([["Notes", "First.", "Notes", "Second."]], [("Notes", 0, 1)])
    assert parse("notes.pdf", data).text == "# Notes\n\nFirst.\nNotes\nSecond."


def test_a_pdf_without_an_outline_has_no_headings():
    assert parse("plain.pdf", make_pdf([["Kettles", "Boil water."]])).text == "Kettles\nBoil water."


@pytest.mark.parametrize(
    ("damage", "replacement"),
    [
        (b"/A 6 0 R", b"/A 12345"),  # an action that is no dictionary: pypdf raises reading the outline
        (b"/D [ 3 0 R /Fit ]", b"/D [ 9 0 R /Fit ]"),  # a destination on a page that does not exist
        (b"/Outlines 8 0 R", b"/Outlines 9 0 R"),  # an outline object that does not exist
        (b"/First 7 0 R", b"/First 5 0 R"),  # an outline entry that is a content stream
    ],
)
def test_a_pdf_with_a_damaged_outline_is_read_without_headings(damage, replacement):
    data = pdf_with_outline([["Kettles", "Boil water in a kettle."]], [("Kettles", 0, 1)])
    assert data.count(damage) == 1 and len(damage) == len(replacement)  # the xref offsets stay right
    parsed = parse("damaged.pdf", data.replace(damage, replacement))
    assert parsed.text == "Kettles\nBoil water in a kettle."


@pytest.mark.parametrize(
    ("filename", "data"),
    [
        ("fence.html", b"<html><body><p><code>```</code> opens a fence.</p><h2>Next</h2><p>More.</p></body></html>"),
        ("underlined.txt", b"Chapter 1\n~~~~~~~~~\nSome text.\n\nChapter 2\n\nMore text."),
    ],
    ids=["html-inline-code", "txt-tilde-underline"],
)
def test_prose_that_starts_like_a_fence_stays_prose(filename, data):
    assert "code" not in [block.kind for block in text_blocks(parse(filename, data).text)]
