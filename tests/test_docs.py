"The docs: README.md matches nbs/index.ipynb, one _quarto.yml, and nbdev's notebook processing runs clean."
import os, subprocess, sys
from pathlib import Path
from conftest import ROOT

def test_readme_matches_index():
    from visionlab_nb.core.runner import index_markdown
    assert (ROOT / "README.md").read_text() == index_markdown(ROOT / "nbs" / "index.ipynb"), "run `make readme`"

def test_one_quarto_yml():
    link = ROOT / "nbs" / "_quarto.yml"
    assert link.is_symlink() and link.resolve() == (ROOT / "_quarto.yml").resolve()

def test_index_has_quickstart_and_scoreboard():
    text = (ROOT / "README.md").read_text()
    assert text.index("make reproduce") < text.index("make test") < text.index("## The series")
    assert "<!-- scoreboard:start -->" in text

def test_proc_nbs_runs_clean(tmp_path):
    # nbdev_proc_nbs without its Quarto install step (Quarto is not needed to process the notebooks)
    code = ("from nbdev.quarto import refresh_quarto_yml, nbdev_sidebar; from nbdev.serve import proc_nbs; import nbdev.doclinks;"
            "refresh_quarto_yml(); nbdev.doclinks._build_modidx(); nbdev_sidebar.__wrapped__(); c = proc_nbs(n_workers=1); print(c)")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    proc = ROOT / "_proc"
    assert (proc / "index.ipynb").exists() and (proc / "_quarto.yml").exists()
    sidebar = (ROOT / "nbs" / "sidebar.yml").read_text()
    for d in sorted(p.name for p in (ROOT / "nbs").iterdir() if p.is_dir() and p.name[:2].isdigit()):
        assert f"section: {d.split('_', 1)[1]}" in sidebar, (d, sidebar)    # one section per series (and the core)

def test_notebooks_are_valid():
    import warnings, nbformat
    for nb_path in sorted(ROOT.glob("nbs/**/*.ipynb")) + sorted(ROOT.glob("tests/fixtures/**/*.ipynb")):
        with warnings.catch_warnings():
            warnings.simplefilter("error")                  # a missing cell id is a warning today, an error tomorrow
            nbformat.validate(nbformat.read(nb_path, as_version=nbformat.NO_CONVERT))
