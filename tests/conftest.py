"Shared helpers of the end-to-end tests: the fixture series and the `visionlab` command."
import os, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURE_NBS = ROOT / "tests" / "fixtures" / "nbs"            # fixture (passes) and broken (fails): `reproduce all` runs these
EXTRA_NBS = ROOT / "tests" / "fixtures" / "nbs_extra"        # tiny, and sleeper (a child process tree): no torch, start fast
TYPED_NBS = ROOT / "tests" / "fixtures" / "nbs_typed"        # typed: a series with typed profiles (the kit)
FIXTURE_PKGS = ROOT / "tests" / "fixtures" / "pkgs"          # vlfixtures: the overview module of the typed series
VISIONLAB = str(Path(sys.executable).parent / "visionlab")

def cli_env(nbs=FIXTURE_NBS) -> dict:
    "The environment of a `visionlab` run over the fixture folders `nbs` (a path or a list of paths)."
    nbs = os.pathsep.join(map(str, nbs)) if isinstance(nbs, (list, tuple)) else str(nbs)
    pp = os.pathsep.join(p for p in (str(FIXTURE_PKGS), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "VISIONLAB_NBS": nbs, "VISIONLAB_PACKAGES": "vlfixtures", "PYTHONPATH": pp, "PYTHONUNBUFFERED": "1"}

@pytest.fixture
def in_process(monkeypatch, capsys):
    "Run `visionlab` in this process over fixture folders: `in_process(*args, nbs=...)` -> (exit code, stdout, stderr)."
    monkeypatch.syspath_prepend(str(FIXTURE_PKGS))
    def run(*args, nbs=FIXTURE_NBS):
        for k, v in cli_env(nbs).items():
            if k.startswith("VISIONLAB_"): monkeypatch.setenv(k, v)
        from visionlab_nb.cli import main
        try: code = main(list(map(str, args)))
        except SystemExit as e: code = e.code
        out = capsys.readouterr()
        return code, out.out, out.err
    return run

def visionlab(*args, nbs=FIXTURE_NBS, cwd=None, timeout=300):
    "Run the `visionlab` console script with VISIONLAB_NBS pointing at `nbs`; return the CompletedProcess."
    return subprocess.run([VISIONLAB, *map(str, args)], capture_output=True, text=True, env=cli_env(nbs), cwd=cwd, timeout=timeout)

def visionlab_bg(*args, nbs=EXTRA_NBS, cwd=None, env=None, sigint_ignored=False):
    """Start the `visionlab` console script in the background (stdout and stderr merged, line-buffered text); `sigint_ignored`
    starts it the way a shell starts `cmd &`, with SIGINT ignored."""
    import signal
    pre = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if sigint_ignored else None
    return subprocess.Popen([VISIONLAB, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
                            env={**cli_env(nbs), **(env or {})}, cwd=cwd, preexec_fn=pre)

@pytest.fixture(scope="session")
def fixture_run(tmp_path_factory):
    "One `visionlab reproduce all` over the fixture series (one passing, one failing), shared by the tests."
    out = tmp_path_factory.mktemp("runs")
    r = visionlab("reproduce", "all", "--profile", "quick", "--device", "cpu", "--out", out, "--no-progress")
    runs = sorted(out.iterdir())
    return r, runs[0] if runs else None

# `make test` runs pytest with pytest-xdist (`-n auto --dist load --maxschedchunk 1`, one worker per core): each worker takes the next
# test when it is free, and the tests are handed out longest first (below), so the long end-to-end tests (a series' paper run, the
# docs site) start early and the run does not end on one worker finishing a long test while the other waits. Expensive shared state
# is built once per run where it matters (the docs site: a file lock in tests/test_docs.py; its first test comes first).

LONGEST_FIRST = (                  # seconds each took in a `make test` (pytest --durations), longest first; the rest keep their order
    ("test_docs.py::test_sidebar_is_generated", 82),    # builds the docs site the other docs tests read
    *((f"test_paper_profile_runs_on_real_format_files[{s}]", t) for s, t in
      (("dat", 124), ("advcl", 95), ("emo", 85), ("doorping", 52), ("pmtiqa", 48), ("drums", 45), ("reft", 44), ("tinymim", 41),
       ("cmt", 20))),
    *((f"test_smoke_run[{s}]", t) for s, t in (("emo", 44), ("dat", 30), ("reliant", 20), ("reft", 20))),
    ("test_emo.py::test_training_in_processes_equals_in_process", 24),
    ("test_cli.py::test_same_seed_same_metrics", 23),
)

def pytest_collection_modifyitems(config, items):
    "Longest tests first (see LONGEST_FIRST); the others after them, in collection order."
    def cost(item):
        return next((-t for name, t in LONGEST_FIRST if item.nodeid.endswith(name)), 0)
    items.sort(key=cost)

if os.environ.get("PYTEST_XDIST_WORKER"):          # one core per worker (and per kernel it starts): workers do not oversubscribe
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"): os.environ.setdefault(var, "1")
    os.environ.setdefault("VISIONLAB_THREADS", "1")  # core.train.pmap runs a series' jobs in its own process
