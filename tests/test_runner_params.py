"The runner's parameter routing (typed profiles), parallel jobs, `data fetch`, and the Makefile's sync-check and lab targets."
import json, os, shutil, subprocess
from pathlib import Path
import pytest
from conftest import visionlab, EXTRA_NBS, TYPED_NBS, ROOT

pytest.importorskip("visionlab_nb.core.series")                  # the kit: typed profiles and resolve_profile

@pytest.mark.parametrize("args, expect", [
    (["-p", "n_seeds", "0"], "series 'typed': parameter 'n_seeds' = 0 is out of range: expected >= 1"),
    (["-p", "workers", "0"], "parameter 'workers' = 0 is out of range: expected >= 1"),
    (["-p", "frac", "1.5"], "expected 0..1"),
    (["-p", "arm", "c"], "expected one of: a, b"),
    (["-p", "workers", "two"], "parameter 'workers' expects int, got 'two'"),
    (["-p", "nosuch", "1"], "valid: seed, data_root, n_seeds, max_steps, workers, frac, arm"),
    (["-p", "overrides", "{}"], "set by the runner"),
])
def test_profile_fields_are_checked_before_anything_runs(in_process, tmp_path, args, expect):
    code, out, err = in_process("reproduce", "typed", "--out", tmp_path, *args, nbs=TYPED_NBS)
    assert code == 2 and expect in err, err
    assert len(err.strip().splitlines()) == 1 and list(tmp_path.iterdir()) == []

def test_params_lists_profile_fields(in_process):
    code, out, err = in_process("params", "typed", nbs=TYPED_NBS)
    assert code == 0, err
    assert "seed         int" in out and "workers      int      smoke=1  quick=2  paper=4   # simulated workers (>= 1)" in out

def test_profile_fields_reach_the_notebook_typed(tmp_path):
    r = visionlab("reproduce", "typed", "--profile", "smoke", "-p", "n_seeds", "2", "-p", "frac", "0.5", "-p", "seed", "3",
                  "--out", tmp_path, nbs=TYPED_NBS)
    assert r.returncode == 0, r.stdout + r.stderr
    res = json.loads(next(tmp_path.glob("*/typed/results.json")).read_text())
    assert res["parameters"] == {"seed": 3, "overrides": {"n_seeds": 2, "frac": 0.5}}
    assert res["overrides_types"] == {"n_seeds": "int", "frac": "float"} and res["profile_values"]["workers"] == 1
    assert res["env"]["TQDM_DISABLE"] == "1" and res["env"]["VISIONLAB_RUN"] == "1" and res["env"]["OMP_NUM_THREADS"] == os.environ.get("OMP_NUM_THREADS")   # one job: threads left as the user set them
    md = next(tmp_path.glob("*/report.md")).read_text()
    assert "| 2 seeds | not measured |" in md                          # smoke: no per-rival verdicts in `ours`

def test_jobs_run_side_by_side_with_a_share_of_the_cores(tmp_path):
    r = visionlab("reproduce", "typed", "tiny", "--jobs", "2", "--out", tmp_path, nbs=[EXTRA_NBS, TYPED_NBS])
    assert r.returncode == 0, r.stdout + r.stderr
    run = next(tmp_path.iterdir())
    res = json.loads((run / "typed" / "results.json").read_text())
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert res["env"]["OMP_NUM_THREADS"] == res["env"]["MKL_NUM_THREADS"] == str(max(1, cores // 2))
    assert "typed: ok" in r.stdout and "tiny: ok" in r.stdout

def test_data_fetch_downloads_both_splits(tmp_path, monkeypatch, capsys):
    from visionlab_nb import cli
    from visionlab_nb.core import data
    calls = []
    monkeypatch.setattr(data, "load_dataset", lambda name, train=True, data_root="", download=False, **kw: calls.append((name, train, data_root, download)))
    assert cli.main(["data", "fetch", "cifar10", "--root", str(tmp_path / "d")]) == 0
    assert calls == [("cifar10", True, str(tmp_path / "d"), True), ("cifar10", False, str(tmp_path / "d"), True)]
    assert "cifar-10-batches-py" in capsys.readouterr().out
    monkeypatch.setattr(data, "load_dataset", lambda *a, **kw: (_ for _ in ()).throw(OSError("no network")))
    assert cli.main(["data", "fetch", "cifar10", "--root", str(tmp_path / "d")]) == 1
    assert "could not fetch cifar10" in capsys.readouterr().err

def _mini_repo(tmp_path) -> Path:
    "A scratch nbdev project with one notebook (the CLI's), exported, and this repository's Makefile."
    repo = tmp_path / "repo"; (repo / "nbs" / "00_core").mkdir(parents=True)
    for f in ("Makefile", "settings.ini", "setup.py"): shutil.copy2(ROOT / f, repo / f)
    shutil.copy2(ROOT / "nbs" / "00_core" / "04_cli.ipynb", repo / "nbs" / "00_core")
    (repo / "visionlab_nb").mkdir(); (repo / "visionlab_nb" / "__init__.py").write_text("")
    env = {**os.environ, "PATH": f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    subprocess.run([str(ROOT / ".venv" / "bin" / "nbdev_export")], cwd=repo, env=env, check=True, capture_output=True)
    return repo

def _make(repo, target):
    venv = ROOT / ".venv"
    return subprocess.run(["make", "-o", "install", "-o", f"{venv}/.installed", f"VENV={venv}", target], cwd=repo,
                          capture_output=True, text=True, timeout=120)

def test_sync_check_names_a_hand_edited_file_and_leaves_it(tmp_path):
    repo = _mini_repo(tmp_path)
    r = _make(repo, "sync-check")
    assert r.returncode == 0 and "in sync" in r.stdout, r.stdout + r.stderr
    py = repo / "visionlab_nb" / "cli.py"
    edited = py.read_text().replace("def main(argv=None) -> int:", "def main(argv=None) -> int:  # hand edit")
    py.write_text(edited)
    r = _make(repo, "sync-check")
    assert r.returncode != 0, r.stdout
    assert "visionlab_nb/cli.py differs from what nbs/00_core/04_cli.ipynb exports" in r.stdout, r.stdout
    assert py.read_text() == edited                                   # the edit is still there

def test_make_lab_allows_root():
    r = subprocess.run(["make", "-n", "lab"], cwd=ROOT, capture_output=True, text=True)
    assert '--allow-root' in r.stdout and 'id -u' in r.stdout
