"""README stays a short user guide, and the Markdown pages link only to files that exist.

Plain Python on the repository's text files: no workflow, no network.
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
CHANGELOG = ROOT / "CHANGELOG.md"
DOCS = ROOT / "docs"

README_MAX_LINES = 250

# ](target) or ](target "title"); the target stops at whitespace or the closing parenthesis.
LINK = re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+[\"'][^\"']*[\"'])?\s*\)")
FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]*`")
HEX_WORD = re.compile(r"\b[0-9a-f]{7,40}\b")
EXTERNAL = ("http://", "https://", "mailto:")


def read(path):
    return path.read_text(encoding="utf-8")


def without_code(text):
    """The text without fenced code blocks and inline code spans, where `](` is no link."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def link_targets(text):
    return LINK.findall(without_code(text))


def relative_targets(text):
    """Relative link targets without their #anchor; external links and pure anchors left out."""
    targets = []
    for target in link_targets(text):
        if target.startswith(EXTERNAL) or target.startswith("#"):
            continue
        path = target.split("#", 1)[0]
        if path:
            targets.append(path)
    return targets


def markdown_pages():
    return [README, CHANGELOG, *sorted(DOCS.glob("*.md"))]


def test_link_pattern_finds_links_and_skips_code():
    text = (
        "See [a](docs/a.md) and [b](docs/b.md#part 'title'), [w](https://x.org), [c](#top).\n"
        "`[not](inline.md)`\n```\n[not](fenced.md)\n```\n"
    )
    assert relative_targets(text) == ["docs/a.md", "docs/b.md"]


def test_readme_is_short():
    lines = read(README).splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines, at most {README_MAX_LINES}"


def test_two_commands_come_first():
    head = "\n".join(read(README).splitlines()[:30])
    assert "make run" in head, "`make run` is not in README.md's first 30 lines"
    assert "make test" in head, "`make test` is not in README.md's first 30 lines"


def test_every_docs_page_is_linked_from_readme():
    linked = {(ROOT / target).resolve() for target in relative_targets(read(README))}
    pages = sorted(DOCS.glob("*.md"))
    assert pages, "docs/ has no Markdown pages"
    missing = [str(page.relative_to(ROOT)) for page in pages if page.resolve() not in linked]
    assert not missing, f"README.md does not link: {', '.join(missing)}"


@pytest.mark.parametrize("page", markdown_pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_exist(page):
    assert page.exists(), f"{page.relative_to(ROOT)} is missing"
    broken = [t for t in relative_targets(read(page)) if not (page.parent / t).exists()]
    assert not broken, f"{page.relative_to(ROOT)} links to missing files: {', '.join(broken)}"


def test_readme_names_no_commit_hash():
    hashes = [
        word for word in HEX_WORD.findall(read(README)) if re.search(r"[0-9]", word) and re.search(r"[a-f]", word)
    ]
    assert not hashes, f"README.md names commit hashes: {', '.join(sorted(set(hashes)))}"
