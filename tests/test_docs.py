"""The README and the documentation pages: their Python examples run as written, every link between
them resolves (file and heading), and the site builds with MkDocs in strict mode."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCKS = [(page, block) for page in PAGES for block in re.findall(r"```python\n(.*?)```", page.read_text(), re.S)]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _anchors(page: Path) -> set[str]:
    """The anchors of ``page``'s headings as GitHub and MkDocs make them (lower case, punctuation dropped, spaces to hyphens)."""
    headings = re.findall(r"^#+ (.+)$", re.sub(r"```.*?```", "", page.read_text(), flags=re.S), re.M)
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-") for heading in headings}


def test_the_readme_is_short_and_points_to_every_page():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) < 200, "the README keeps what a newcomer needs in the first ten minutes"
    for page in sorted((ROOT / "docs").glob("*.md")):
        assert page.name == "index.md" or f"docs/{page.name}" in readme, f"the README links {page.name}"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_internal_link_resolves(page):
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.exists(), f"{page.name} links {target}: no such file"
        if anchor:
            assert anchor in _anchors(linked), f"{page.name} links {target}: no such heading"


def test_the_documentation_site_builds_strictly(tmp_path):
    pytest.importorskip("mkdocs")
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr
    pages = sorted((tmp_path / "site").glob("*.html"))
    assert (tmp_path / "site" / "attacks.html") in pages, "links to .html pages, which open from file://"
    assert not [page.name for page in pages if re.search(r'<(script|link)[^>]+(src|href)="https?://', page.read_text())], "no network"


def test_there_are_python_examples():
    assert len(BLOCKS) >= 4 and {page.name for page, _ in BLOCKS} >= {"README.md", "own-models.md"}


@pytest.mark.parametrize("number", range(len(BLOCKS)), ids=lambda number: f"{BLOCKS[number][0].name}-{number}")
def test_a_python_example_runs(number, capsys):
    page, block = BLOCKS[number]
    exec(compile(block, f"{page.name} python block {number}", "exec"), {})
    assert capsys.readouterr().out.strip()
