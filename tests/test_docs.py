"""The docs site, checked without Quarto: nbdev's notebook processing (nbdev_proc_nbs) on a copy of the notebooks git tracks, then
every sidebar entry is a page, every page is in the sidebar, every summary is one full sentence, every internal link lands, and the
committed sidebar, home page and README are what the generators in visionlab_nb.core.docs make of the notebooks."""
import hashlib, os, tempfile, warnings
from collections import defaultdict
from pathlib import Path
import pytest
import yaml
from filelock import FileLock
from conftest import ROOT
from visionlab_nb.core import docs

# Pages that fail a check today, as (check, page relative to nbs/) (the checks: visionlab_nb.core.docs.site_problems). Each is owned
# by its series (or the lead, or the runner helper) and reported to the lead, who empties this set as they are fixed. A problem not listed here fails the test, and an entry that no longer fails
# only warns (so that a fix elsewhere never breaks this test).
KNOWN_BAD: set = set()   # (check, page) pairs of known defects; a fixed one is reported as stale

@pytest.fixture(scope="session")
def site():
    "The processed site of the notebooks git tracks, and its problems grouped by check."
    # kept between runs (a cache: only changed notebooks are processed again), outside any dot-folder, which nbdev would skip
    dest = Path(tempfile.gettempdir()) / f"visionlab_nb-docs-{hashlib.sha1(str(ROOT.resolve()).encode()).hexdigest()[:8]}"
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")          # the pytest-xdist workers of one run build the site once, in turn
    with FileLock(f"{dest}.lock"):
        built = Path(f"{dest}.built")
        if run and built.exists() and built.read_text() == run: proc = dest / "_proc"
        else:
            proc = docs.process_site(dest, ROOT)
            built.write_text(run or "")
    probs = defaultdict(list)
    for p in docs.site_problems(proc, dest / "nbs"): probs[p.check].append(p)
    return dest, proc, probs

def _check(probs, *checks):
    found = [p for c in checks for p in probs.get(c, [])]
    new = [p for p in found if (p.check, p.page) not in KNOWN_BAD]
    stale = {k for k in KNOWN_BAD if k[0] in checks} - {(p.check, p.page) for p in found}
    if stale: warnings.warn(f"fixed, remove from KNOWN_BAD: {sorted(stale)}")
    assert not new, "\n".join(f"{p.page}: {p.check}: {p.detail}" for p in new)

def test_sidebar_is_generated(site):
    dest, proc, _ = site
    assert (ROOT / "nbs" / "sidebar.yml").read_text() == docs.sidebar_yml(dest / "nbs"), "run `make sidebar` and commit nbs/sidebar.yml"
    assert "custom_sidebar = True" in (ROOT / "settings.ini").read_text()      # so nbdev_docs does not overwrite it
    assert (proc / "sidebar.yml").exists()

def test_sidebar_sections_and_titles(site):
    dest, _, _ = site
    sb = yaml.safe_load((ROOT / "nbs" / "sidebar.yml").read_text())["website"]["sidebar"]["contents"]
    assert sb[0] == {"text": "Home", "href": "index.ipynb"}
    sections = [s for s in sb if "section" in s]
    assert len(sections) == len(docs.doc_folders(dest / "nbs"))                 # one per folder: the core, then each series
    for s in sections:
        assert s["contents"] and all(e["href"] and e["text"] and not e["text"].startswith("#") for e in s["contents"]), s
        if "href" in s: assert " — " in s["section"] and s["contents"][0] == {"text": "Overview", "href": s["href"]}, s

def test_nbdev_processes_every_notebook(site): _check(site[2], "proc")   # else nbdev_docs stops at that notebook

def test_every_sidebar_entry_is_a_page(site): _check(site[2], "sidebar")

def test_every_page_is_in_the_sidebar(site): _check(site[2], "orphan")

def test_summaries_are_full_sentences(site): _check(site[2], "summary")

def test_titles_once(site): _check(site[2], "title")

def test_internal_links_land(site): _check(site[2], "link")

def test_overviews_link_their_pages(site): _check(site[2], "overview")

def test_pages_readable(site): _check(site[2], "markup", "truncated", "outputs", "order")

def test_page_navigation_and_wrapping_tables():
    q = yaml.safe_load((ROOT / "_quarto.yml").read_text())
    assert q["website"]["page-navigation"] is True                              # previous/next links under every page
    assert "sidebar.yml" in q["metadata-files"]
    css = (ROOT / "nbs" / "styles.css").read_text()
    assert "white-space: normal" in css and "overflow-x: auto" in css

def test_home_page_links_series_and_claims(site, tmp_path):
    "The series table links every series to its overview, the scoreboard every claim to its reproduce page (`make readme`)."
    import shutil
    dest = site[0]
    idx = shutil.copy(dest / "nbs" / "index.ipynb", tmp_path / "index.ipynb")
    docs.refresh_index(idx, nbs=dest / "nbs")
    assert (tmp_path / "index.ipynb").read_text() == (dest / "nbs" / "index.ipynb").read_text(), "run `make readme`"
    text = (dest / "nbs" / "index.ipynb").read_text()
    for d in docs.doc_folders(dest / "nbs"):
        if (d / "00_overview.ipynb").exists(): assert f"]({d.name}/00_overview.ipynb)" in text, d.name

def test_readme_matches_index():
    assert (ROOT / "README.md").read_text() == docs.index_markdown(ROOT / "nbs" / "index.ipynb"), "run `make readme`"
    text = (ROOT / "README.md").read_text()
    assert text.index("make reproduce") < text.index("make test") < text.index("## The series")
    assert docs.SCOREBOARD_START in text and docs.SCOREBOARD_END in text
    import re
    for t in re.findall(r"\]\((nbs/[^)#\s]+)", text): assert (ROOT / t).exists(), t   # README links into nbs/ land

def test_one_quarto_yml():
    link = ROOT / "nbs" / "_quarto.yml"
    assert link.is_symlink() and link.resolve() == (ROOT / "_quarto.yml").resolve()

def test_notebooks_are_valid():
    import nbformat
    for nb_path in sorted(ROOT.glob("nbs/**/*.ipynb")) + sorted(ROOT.glob("tests/fixtures/**/*.ipynb")):
        with warnings.catch_warnings():
            warnings.simplefilter("error")                  # a missing cell id is a warning today, an error tomorrow
            nbformat.validate(nbformat.read(nb_path, as_version=nbformat.NO_CONVERT))
