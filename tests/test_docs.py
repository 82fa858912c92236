"""The documentation points only at things that exist.

Every relative link in `docs/` (and the README) resolves to a file; every repository path named
in `docs/`, `configs/` or the README (`sciops/...`, `configs/...`, `benchmarks/...`,
`examples/...`, `tests/...`, `docs/...`, `data/...`) exists, except the outputs a command
writes (`data/cache/`, `runs/`); nothing names a path outside the repository that a reader's
clone would not have (`../shared/...`, `/work/...`) or a script kept only in a temporary folder,
or the project's internal notes.
Links to headings are checked by `mkdocs build --strict` (`validation.links.anchors: warn`).
"""

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

MARKDOWN = sorted(DOCS.rglob("*.md")) + [ROOT / "README.md"]
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))

# [text](target) and ![alt](target); the target ends at whitespace or the closing parenthesis
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
# a repository path: a top-level folder, then at least one more component
REPO_PATH = re.compile(
    r"(?<![\w./-])(?:\./)?((?:sciops|configs|benchmarks|examples|tests|docs|data)/[\w.+-]+(?:/[\w.+-]+)*/?)"
)
OUTPUTS = ("data/cache/", "runs/")
PLACEHOLDER = re.compile(r"NAME|XXX|<|\{|\*|\bS\b")
FOREIGN = re.compile(r"(?<![\w.])(?:\.\./shared/|/work/)[\w./-]*")
TEMP_SCRIPT = re.compile(r"(?<![\w.])/tmp/[\w./-]*\.(?:py|sh|ipynb)\b")
# the project's internal notes and tracker, which a reader does not have
INTERNAL = re.compile(r"ANCHORS|\bthe issues\b|\bissue \d+\b|\(issue\b")
# a file the page's own example writes (`--out PATH`, `--extxyz-out PATH`, `write_hdf5("PATH"`)
WRITTEN = re.compile(r"(?:--[\w-]*out[ =]|write_\w+\([\"'])([\w./-]+)")


def _rel(path: pathlib.Path) -> str:
    return str(path.relative_to(ROOT))


def _links(path: pathlib.Path) -> list[str]:
    text = path.read_text()
    text = re.sub(r"```.*?```", "", text, flags=re.S)  # code blocks hold commands, not links
    return [t for t in LINK.findall(text) if not re.match(r"[a-z]+:|#", t)]


def _named_paths(path: pathlib.Path) -> list[str]:
    text = path.read_text()
    written = set(WRITTEN.findall(text))
    text = LINK.sub("", text)  # link targets are relative to the page: test_relative_links_resolve
    names = []
    for m in REPO_PATH.finditer(text):
        name = m.group(1).rstrip(".")
        if (name + "/").startswith(OUTPUTS) or name in written or PLACEHOLDER.search(name):
            continue
        names.append(name)
    return names


def test_the_checks_catch_what_they_should(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "[a](missing.md) [b](https://x.org) [c](#anchor) ![d](img/x.png)\n"
        "see configs/nope.yaml and data/cache/out.h5 and benchmarks/NAME.py\n"
        "cached under data/cache like the others\n"
        "sciops generate --out data/new.h5; read data/new.h5\n"
        "```\n[e](in_code.md)\n```\n"
    )
    assert _links(page) == ["missing.md", "img/x.png"]
    assert _named_paths(page) == ["configs/nope.yaml"]
    assert FOREIGN.search("read ../shared/data/x.h5")
    assert TEMP_SCRIPT.search("python /tmp/work/train.py 1500")
    assert not TEMP_SCRIPT.search("--data /tmp/mf5/cyl10c.h5")
    assert INTERNAL.search("as ANCHORS.md records") and INTERNAL.search("Target (issue 7)")


@pytest.mark.parametrize("path", MARKDOWN, ids=_rel)
def test_relative_links_resolve(path):
    missing = [t for t in _links(path) if not (path.parent / t.split("#")[0]).exists()]
    assert not missing, f"{_rel(path)}: links to missing files: {missing}"


@pytest.mark.parametrize("path", MARKDOWN + CONFIGS, ids=_rel)
def test_named_repository_paths_exist(path):
    missing = sorted({n for n in _named_paths(path) if not (ROOT / n).exists()})
    assert not missing, f"{_rel(path)}: names paths that do not exist: {missing}"


@pytest.mark.parametrize("path", MARKDOWN + CONFIGS, ids=_rel)
def test_no_paths_outside_the_repository(path):
    text = path.read_text()
    bad = FOREIGN.findall(text) + TEMP_SCRIPT.findall(text) + INTERNAL.findall(text)
    assert not bad, f"{_rel(path)}: names paths a clone of the repository does not have: {bad}"


def test_every_page_is_in_the_nav():
    nav = (ROOT / "mkdocs.yml").read_text()
    pages = {_rel(p)[len("docs/"):] for p in DOCS.rglob("*.md")}
    missing = sorted(p for p in pages if not re.search(rf":\s*{re.escape(p)}\s*$", nav, re.M))
    assert not missing, f"pages missing from mkdocs.yml's nav: {missing}"


def test_ci_builds_the_docs_strictly_and_not_quietly():
    """`mkdocs build --strict --quiet` passes with warnings (quiet drops them before strict
    counts them: measured, a build with two hook warnings exited 0), so CI's build must not be
    quiet, or the docstring and tutorial hooks would fail nothing."""
    lines = [line for line in (ROOT / ".ci" / "run").read_text().splitlines()
             if "mkdocs build" in line and not line.lstrip().startswith("#")]
    assert len(lines) == 1 and "--strict" in lines[0].split()
    assert not {"-q", "--quiet"} & set(lines[0].split())
