from __future__ import annotations

import pytest

from documents.parsing import normalize_text
from documents.textblocks import (
    Block,
    blocks_text,
    fenced,
    normalize_blocks,
    section_label,
    text_blocks,
    text_sections,
)

# A text in the canonical format, as normalize_text writes it.
NORMALIZED = """# Tea Guide

Green tea is brewed cool.
Black tea is brewed hot.

## Brewing

Measure the leaves:

```python
def brew(leaves):

    for minute in range(3):
        steep(leaves)
```

### Water

Use fresh water.

````
```
a fence inside
```
````

##### Small print

Boil it once."""


def kinds(blocks: list[Block]) -> list[tuple[str, str]]:
    return [(block.kind, block.text) for block in blocks]


def test_headings_are_read_with_their_level_and_words():
    blocks = text_blocks("# Title\n\n## Part two ##\n\n#### Deep  \n\n###### Six")
    assert [(b.kind, b.level, b.text) for b in blocks] == [
        ("heading", 1, "Title"),
        ("heading", 2, "Part two"),
        ("heading", 4, "Deep"),
        ("heading", 6, "Six"),
    ]


@pytest.mark.parametrize("line", ["#hashtag", "####### seven", "    # indented four"])
def test_a_line_that_is_not_an_atx_heading_is_text(line):
    assert [b.kind for b in text_blocks(line)] == ["text"]


def test_paragraphs_are_separated_by_blank_lines_and_keep_their_line_breaks():
    blocks = text_blocks("First line\ncontinues.\n\n\n\nSecond paragraph.\r\nStill second.")
    assert kinds(blocks) == [
        ("text", "First line\ncontinues."),
        ("text", "Second paragraph.\nStill second."),
    ]


def test_a_heading_line_ends_the_paragraph_above_it():
    assert kinds(text_blocks("Some words\n## Next\nMore words")) == [
        ("text", "Some words"),
        ("heading", "Next"),
        ("text", "More words"),
    ]


def test_backtick_code_keeps_its_indentation_inner_blank_lines_and_language():
    text = "Before.\n\n```python\ndef f():\n\n    return 1\n```\n\nAfter."
    blocks = text_blocks(text)
    assert kinds(blocks) == [("text", "Before."), ("code", "def f():\n\n    return 1"), ("text", "After.")]
    assert blocks[1].info == "python"


def test_tilde_code_is_code_and_a_backtick_fence_does_not_close_it():
    blocks = text_blocks("~~~\nx = 1\n```\n# not a heading\n~~~\nafter")
    assert kinds(blocks) == [("code", "x = 1\n```\n# not a heading"), ("text", "after")]


def test_a_longer_fence_holds_a_shorter_one_inside():
    blocks = text_blocks("`````\n```\ninner\n```\n````\n`````\nafter")
    assert kinds(blocks) == [("code", "```\ninner\n```\n````"), ("text", "after")]


def test_a_fence_left_open_runs_to_the_end():
    assert kinds(text_blocks("Intro.\n\n```\ncode\n\n## not a heading")) == [
        ("text", "Intro."),
        ("code", "code\n\n## not a heading"),
    ]


def test_blank_lines_around_code_inside_its_fence_are_dropped_and_empty_code_is_no_block():
    assert kinds(text_blocks("```\n\n  x\n\n```\n\n```\n\n```")) == [("code", "  x")]


def test_every_block_starts_where_its_text_is_in_a_normalized_text():
    blocks = text_blocks(NORMALIZED)
    assert len(blocks) == 10
    for block in blocks:
        assert NORMALIZED[block.start : block.start + len(block.text)] == block.text


def test_block_starts_point_into_the_text_read_even_with_closing_hashes_and_indentation():
    text = "Intro\n\n  ## Spaced out ##\n\n ```\n    code\n ```"
    blocks = text_blocks(text)
    assert kinds(blocks) == [("text", "Intro"), ("heading", "Spaced out"), ("code", "    code")]
    for block in blocks:
        assert text[block.start : block.start + len(block.text)] == block.text


def test_the_canonical_text_of_a_normalized_texts_blocks_is_the_text_itself():
    assert normalize_text(NORMALIZED) == NORMALIZED
    assert blocks_text(text_blocks(NORMALIZED)) == NORMALIZED


def test_blocks_text_writes_what_text_blocks_reads_back_as_the_same_blocks():
    blocks = [
        Block("heading", "Title", level=1),
        Block("text", "A paragraph\nof two lines."),
        Block("code", "print('```')\n\n    indented", info="python"),
        Block("heading", "Fifth", level=5),
        Block("code", "~~~\nstill code"),
    ]
    read_back = text_blocks(blocks_text(blocks))
    assert [(b.kind, b.text, b.level, b.info) for b in read_back] == [(b.kind, b.text, b.level, b.info) for b in blocks]


@pytest.mark.parametrize(
    ("code", "fence"),
    [("x = 1", "```"), ("a ``b`` c", "```"), ("```\nmd\n```", "````"), ("one ``` two ````` three", "``````")],
)
def test_fenced_code_gets_a_fence_longer_than_any_backtick_run_inside(code, fence):
    written = fenced(code, info="md")
    assert written == f"{fence}md\n{code}\n{fence}"
    assert kinds(text_blocks(written)) == [("code", code)]
    assert text_blocks(written)[0].info == "md"


def test_normalizing_collapses_spaces_in_prose_keeps_code_and_drops_empty_blocks():
    blocks = [
        Block("heading", "  Many\t\u00a0 spaces  ", level=2),
        Block("text", "  one   two \n\n   three\t four  "),
        Block("text", " \t "),
        Block("code", "\n\nif x:\n\tpass   \n    y  =  1\n\n", info="py"),
        Block("code", "  \n  "),
    ]
    assert [(b.kind, b.text, b.level, b.info) for b in normalize_blocks(blocks)] == [
        ("heading", "Many spaces", 2, ""),
        ("text", "one two\nthree four", 0, ""),
        ("code", "if x:\n    pass\n    y  =  1", 0, "py"),
    ]


def test_each_block_is_under_the_path_of_the_h1_to_h4_headings_above_it():
    text = (
        "Preface.\n\n# A\n\npa\n\n## B\n\npb\n\n### C\n\npc\n\n#### D\n\npd\n\n## E\n\npe\n\n### F\n\npf\n\n# G\n\npg"
    )
    assert [(s.path, [b.text for b in s.blocks]) for s in text_sections(text)] == [
        ((), ["Preface."]),
        (("A",), ["pa"]),
        (("A", "B"), ["pb"]),
        (("A", "B", "C"), ["pc"]),
        (("A", "B", "C", "D"), ["pd"]),
        (("A", "E"), ["pe"]),  # a new h2 closes B and the C and D under it
        (("A", "E", "F"), ["pf"]),
        (("G",), ["pg"]),
    ]


def test_a_level_skipped_path_keeps_only_the_headings_above():
    sections = text_sections("# A\n\n### Deep\n\nx\n\n## B\n\ny")
    assert [(s.path, [b.text for b in s.blocks]) for s in sections] == [(("A", "Deep"), ["x"]), (("A", "B"), ["y"])]


def test_an_h5_or_h6_stays_in_its_section_as_a_line_of_text():
    sections = text_sections("## Setup\n\nFirst.\n\n##### Note\n\nSecond.\n\n###### Tiny\n\n```\ncode\n```")
    assert len(sections) == 1
    assert sections[0].path == ("Setup",)
    assert kinds(list(sections[0].blocks)) == [
        ("text", "First."),
        ("text", "Note"),
        ("text", "Second."),
        ("text", "Tiny"),
        ("code", "code"),
    ]


def test_a_heading_with_nothing_under_it_makes_no_section():
    sections = text_sections("# A\n\n## Empty\n\n## Full\n\nText.")
    assert [s.path for s in sections] == [("A", "Full")]


def test_a_section_label_is_the_title_then_the_heading_path():
    assert section_label("Tea Guide", ("Brewing", "Water")) == "Tea Guide › Brewing › Water"


def test_a_section_label_does_not_repeat_a_title_its_first_heading_already_says():
    title = "7. Input and Output — Python 3.11.2 documentation"
    path = ("7. Input and Output", "7.2. Reading and Writing Files")
    assert section_label(title, path) == "7. Input and Output › 7.2. Reading and Writing Files"
    assert section_label("Tea Guide", ("tea guide", "Brewing")) == "tea guide › Brewing"


def test_a_heading_that_is_only_part_of_the_titles_first_word_is_not_the_title():
    assert section_label("Documentation", ("Doc", "Intro")) == "Documentation › Doc › Intro"
    assert section_label("Tea Guide", ("Brewing", "Tea Guide")) == "Tea Guide › Brewing › Tea Guide"


def test_a_document_without_headings_is_labelled_by_its_title_alone():
    assert section_label("Release notes", ()) == "Release notes"
    assert section_label("", ("Only heading",)) == "Only heading"
    assert section_label("", ()) == ""


@pytest.mark.parametrize("line", ["    # install it", "    ``` not a fence"])
def test_normalizing_keeps_an_indented_line_that_looks_like_markup_as_text(line):
    text = normalize_text(f"Example:\n\n{line}\n    pip install foo\n\nDone.")
    assert normalize_text(text) == text
    assert [b.kind for b in text_blocks(text)] == ["text", "text", "text"]


def test_a_line_with_inline_backticks_is_text_not_a_fence():
    text = "```pip install foo``` installs it.\n\n# Usage\n\nCall it."
    assert [b.kind for b in text_blocks(text)] == ["text", "heading", "text"]
    assert normalize_text(normalize_text(text)) == normalize_text(text)


def test_a_document_of_headings_alone_keeps_them_as_its_text():
    [section] = text_sections("# Contents\n\n## Install\n\n### Use")
    assert section.path == () and [b.text for b in section.blocks] == ["Contents", "Install", "Use"]
