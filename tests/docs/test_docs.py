"""The documentation: a front page, a docs tree whose links hold, one home for each text,
and a performance page that explains the bench's report without copying it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from core.settings import REPO_ROOT
from tests.docs_text import DOCS_DIR, README

PAGES = [
    REPO_ROOT / "README.md",
    REPO_ROOT / "CHANGELOG.md",
    REPO_ROOT / "charts" / "README.md",
    *sorted(DOCS_DIR.glob("*.md")),
]
FRONT_PAGE_MAX_LINES = 160
_LINK = re.compile(r"\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6} (.+)$", re.M)


def _slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lowercase, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    return {_slug(h) for h in _HEADING.findall(page.read_text(encoding="utf-8"))}


def _relative_links(page: Path) -> list[str]:
    links = _LINK.findall(page.read_text(encoding="utf-8"))
    return [link for link in links if not re.match(r"[a-z]+:", link)]


def test_readme_is_a_front_page_that_links_every_page_of_the_docs():
    """README stays short and links each page of docs/ and the changelog."""
    assert len(README.splitlines()) <= FRONT_PAGE_MAX_LINES
    linked = {link.split("#", 1)[0] for link in _relative_links(REPO_ROOT / "README.md")}
    for page in [*DOCS_DIR.glob("*.md"), REPO_ROOT / "CHANGELOG.md"]:
        assert str(page.relative_to(REPO_ROOT)) in linked, f"README does not link {page.name}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_every_relative_link_names_a_file_and_a_heading_that_exist(page: Path):
    """A link into the repository reaches an existing file, and its #anchor a heading there."""
    for link in _relative_links(page):
        target, _, anchor = link.partition("#")
        path = (page.parent / target).resolve() if target else page
        assert path.exists(), f"{page.name}: {link} names no file"
        if anchor:
            assert anchor in _anchors(path), f"{page.name}: {link} names no heading of {path.name}"


def _paragraphs(page: Path) -> set[str]:
    """The page's prose paragraphs and table rows of some length, whitespace normalised."""
    text = page.read_text(encoding="utf-8")
    blocks = re.split(r"\n\s*\n|\n(?=\|)", text)
    return {" ".join(b.split()) for b in blocks if len(" ".join(b.split())) >= 160}


def test_no_paragraph_is_written_in_two_pages():
    """Each text has one home: no paragraph or table row of README, docs/ or the changelog
    appears in a second page."""
    seen: dict[str, str] = {}
    for page in PAGES:
        for paragraph in _paragraphs(page):
            assert paragraph not in seen, f"written in {seen[paragraph]} and {page.name}: {paragraph[:80]}"
            seen[paragraph] = page.name


def test_the_docs_read_as_a_reference_not_a_work_journal():
    """README and docs/ carry no issue numbers or "this round": the history is the changelog's."""
    for page in [REPO_ROOT / "README.md", *DOCS_DIR.glob("*.md")]:
        text = page.read_text(encoding="utf-8")
        for journal in (r"\bissue \d+", r"\bthis round\b", r"\bprevious figures\b"):
            assert not re.search(journal, text, re.I), f"{page.name}: {journal}"


def test_the_performance_page_explains_each_part_of_the_latest_report_and_copies_none():
    """docs/performance.md links bench/results/latest.md, explains each of its parts, and
    repeats none of its figures, so that the next bench run cannot leave it stale."""
    report = (REPO_ROOT / "bench" / "results" / "latest.md").read_text(encoding="utf-8")
    page = (DOCS_DIR / "performance.md").read_text(encoding="utf-8")
    assert "(../bench/results/latest.md)" in page
    parts = re.findall(r"^\*\*([^*]+)\*\*", report, re.M)
    assert parts, "the report has no parts"
    for part in parts:
        assert f"- **{part}**:" in page, f"docs/performance.md does not explain the report's {part}"
    # Measured figures: the table cells after the first, but for the run's own size (its first
    # line) and our ratio to ourselves.
    cells = " ".join(" ".join(line.split("|")[2:]) for line in report.splitlines() if line.startswith("| "))
    settings = set(re.findall(r"\d[\d,.]*", report.splitlines()[0])) | {"1.00"}
    figures = set(re.findall(r"\d[\d,]*\.\d+|\d{1,3}(?:,\d{3})+", cells)) - settings
    copied = sorted(f for f in figures if re.search(rf"(?<![\d.,]){re.escape(f)}(?![\d,]|\.\d)", page))
    assert not copied, f"docs/performance.md copies figures of the report: {copied}"
