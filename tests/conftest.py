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

def visionlab_bg(*args, nbs=EXTRA_NBS, cwd=None, env=None):
    "Start the `visionlab` console script in the background (stdout and stderr merged, line-buffered text)."
    return subprocess.Popen([VISIONLAB, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
                            env={**cli_env(nbs), **(env or {})}, cwd=cwd)

@pytest.fixture(scope="session")
def fixture_run(tmp_path_factory):
    "One `visionlab reproduce all` over the fixture series (one passing, one failing), shared by the tests."
    out = tmp_path_factory.mktemp("runs")
    r = visionlab("reproduce", "all", "--profile", "quick", "--device", "cpu", "--out", out, "--no-progress")
    runs = sorted(out.iterdir())
    return r, runs[0] if runs else None

# `make test` runs pytest with pytest-xdist (`-n auto --dist worksteal`, one worker per core): idle workers take tests from busy ones,
# so the long end-to-end tests (a series' paper run, the docs site) do not leave one worker waiting on the other. Expensive shared
# state is built once per run where it matters (the docs site: a file lock in tests/test_docs.py). `--dist loadgroup` did not group
# tests here (pytest 9 with pytest-xdist 3.8: the worker ids carry no group suffix), so nothing relies on it.

if os.environ.get("PYTEST_XDIST_WORKER"):          # one thread per worker (and per kernel it starts): workers do not oversubscribe
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"): os.environ.setdefault(var, "1")
