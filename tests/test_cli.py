"The runner and the `visionlab` command, end to end on the fixture series."
import json, shutil, subprocess, sys
from pathlib import Path
import pytest
from conftest import visionlab, FIXTURE_NBS, ROOT

@pytest.mark.parametrize("args, expect", [
    (["reproduce", "nosuchseries"], "valid: all, fixture, broken"),
    (["reproduce", "fixture", "--profile", "nosuch"], "valid: smoke, quick, paper"),
    (["reproduce", "fixture", "-p", "nosuch", "1"], "valid: seed, n_seeds, epochs, lr, data_root"),
    (["reproduce", "fixture", "-p", "seed", "notanumber"], "expects int, got 'notanumber'"),
    (["reproduce", "fixture", "-p", "lr", "fast"], "expects float"),
    (["reproduce", "fixture", "--device", "tpu"], "valid: auto, cpu, cuda, cuda:N, mps"),
    (["reproduce", "fixture", "-p", "out_dir", "x"], "set by the runner"),
    (["reproduce", "fixture", "-p", "n_seeds", "0"], "parameter 'n_seeds' of series 'fixture' must be >= 1, got 0"),
    (["reproduce", "fixture", "-p", "epochs", "-1"], "must be >= 1, got -1"),
    (["reproduce", "fixture", "--jobs", "0"], "--jobs: must be >= 1"),
    (["reproduce", "fixture", "--resume", "nosuchrun"], "no such run folder"),
    (["params", "nosuchseries"], "valid: fixture, broken"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_input_exits_2_and_runs_nothing(tmp_path, args, expect):
    r = visionlab(*args, "--out", tmp_path) if args[0] == "reproduce" else visionlab(*args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert expect in r.stderr, r.stderr
    assert list(tmp_path.iterdir()) == []            # no run folder

def test_list_and_params():
    r = visionlab("list")
    assert r.returncode == 0 and "fixture" in r.stdout and "Broken fixture" in r.stdout
    r = visionlab("params", "fixture")
    assert "seed         int" in r.stdout and "# base seed" in r.stdout

def test_help_notebook_lists_every_parameter():
    r = subprocess.run([str(Path(sys.executable).parent / "papermill"), "--help-notebook",
                        str(FIXTURE_NBS / "01_fixture" / "99_reproduce.ipynb")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    helps = {"profile": "smoke | quick | paper", "seed": "base seed", "n_seeds": "repeats per arm", "epochs": "training epochs",
             "lr": "learning rate", "device": "auto | cpu | cuda", "data_root": "real datasets", "out_dir": "results.json and figures"}
    types = {"profile": "str", "seed": "int", "n_seeds": "int", "epochs": "int", "lr": "float", "device": "str", "data_root": "str", "out_dir": "str"}
    lines = r.stdout.splitlines()
    for name, typ in types.items():
        i = next(i for i, l in enumerate(lines) if l.strip().startswith(f"{name}: {typ} (default"))
        assert helps[name] in " ".join(lines[i:i + 2]), (name, lines[i:i + 2])
    assert "repeats per arm" in r.stdout

def test_batch_goes_on_past_a_failure(fixture_run):
    r, run = fixture_run
    assert r.returncode == 1, r.stdout + r.stderr    # one series failed
    assert "fixture: ok" in r.stdout and "broken: failed" in r.stdout
    assert f"report: {run / 'report.md'}" in r.stdout and f"report: {run / 'report.html'}" in r.stdout
    logs = r.stdout + r.stderr + "".join((run / s / "log.txt").read_text() for s in ("fixture", "broken"))
    assert "without encryption" not in logs and "KeyboardInterrupt" not in logs, logs   # kernels over ipc, shut down quietly
    html = (run / "report.html").read_text()
    for f in ("reproduce.ipynb", "log.txt", "results.json"): assert f"<a href='fixture/{f}'>{f}</a>" in html
    assert "<a href='broken/log.txt'>" in html and "broken/results.json" not in html
    assert json.loads((run / "run.json").read_text())["series"] == ["fixture", "broken"]
    st = json.loads((run / "broken" / "status.json").read_text())
    assert st["status"] == "failed" and "fails on purpose" in st["error"]
    assert (run / "broken" / "reproduce.ipynb").exists()           # the executed notebook shows where it failed
    res = json.loads((run / "fixture" / "results.json").read_text())
    assert res["claims"][0]["id"] == "fixture.learns" and res["claims"][0]["verdict"] == "holds"
    assert res["env"]["device"] == "cpu" and res["profile"] == "quick"
    md = (run / "report.md").read_text()
    assert "| fixture | **fixture.learns**: a linear model on digits beats chance | well above 10% |" in md
    assert "| broken |" in md and "ValueError: this fixture fails on purpose" in md
    assert "![accuracy.png](fixture/accuracy.png)" in md and (run / "report.html").exists()

def test_same_seed_same_metrics(tmp_path):
    for _ in range(2):
        r = visionlab("reproduce", "fixture", "--device", "cpu", "--out", tmp_path, "-p", "seed", "7", "--no-progress")
        assert r.returncode == 0, r.stdout + r.stderr
    a, b = sorted(tmp_path.iterdir())
    assert a != b                                     # a run never overwrites an earlier one
    ma, mb = (json.loads((d / "fixture" / "results.json").read_text()) for d in (a, b))
    assert ma["metrics"] == mb["metrics"] and ma["parameters"]["seed"] == 7

def test_resume_skips_done_series_and_reruns_damaged_ones(fixture_run, tmp_path):
    _, run = fixture_run
    copy = tmp_path / run.name; shutil.copytree(run, copy)
    (copy / "broken" / "status.json").write_text("")              # damaged: run it again rather than crash
    r = visionlab("reproduce", "all", "--resume", copy, "--no-progress")
    assert "fixture: done already, skipped" in r.stdout and "broken: failed" in r.stdout, r.stdout + r.stderr
    assert json.loads((copy / "broken" / "status.json").read_text())["status"] == "failed"
    assert (copy / "fixture" / "results.json").read_text() == (run / "fixture" / "results.json").read_text()

@pytest.mark.parametrize("args, expect", [
    (["--profile", "paper"], "the run used --profile quick, not paper"),
    (["-p", "seed", "5"], "parameters differ from the run's: seed 5 (run: default)"),
])
def test_resume_refuses_another_request(fixture_run, tmp_path, args, expect):
    _, run = fixture_run
    copy = tmp_path / run.name; shutil.copytree(run, copy)
    before = sorted((p.relative_to(copy), p.stat().st_mtime) for p in copy.rglob("*"))
    r = visionlab("reproduce", "fixture", "--resume", copy, *args)
    assert r.returncode == 2 and expect in r.stderr, r.stdout + r.stderr
    assert len(r.stderr.strip().splitlines()) == 1                  # one line, no traceback
    assert sorted((p.relative_to(copy), p.stat().st_mtime) for p in copy.rglob("*")) == before

@pytest.mark.parametrize("out, expect", [("", "--out is empty"), ("file", "is a file, not a folder")])
def test_bad_out_exits_2(tmp_path, out, expect):
    (tmp_path / "file").write_text("x")
    r = visionlab("reproduce", "fixture", "--out", str(tmp_path / out) if out else "", cwd=tmp_path)
    assert r.returncode == 2 and expect in r.stderr, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]

def test_nothing_to_reproduce(tmp_path):
    r = visionlab("reproduce", "all", "--out", tmp_path / "runs", nbs=tmp_path)
    assert r.returncode == 0 and "nothing to reproduce" in r.stdout
    assert not (tmp_path / "runs").exists()

def test_publish_puts_outputs_into_the_notebook(fixture_run, tmp_path):
    _, run = fixture_run
    nbs = tmp_path / "nbs"; shutil.copytree(FIXTURE_NBS, nbs)
    copy = tmp_path / "run"; shutil.copytree(run, copy)
    ex = json.loads((copy / "fixture" / "reproduce.ipynb").read_text())       # outputs as a real run may leave them
    cell = next(c for c in ex["cells"] if c["cell_type"] == "code" and "injected-parameters" not in c["metadata"].get("tags", []))
    cell["outputs"] += [{"output_type": "stream", "name": "stdout", "text": f"saved {copy}/fixture/accuracy.png\nepoch 3 100%|###| 3/3 [00:01, 2.0it/s]\n"},
                        {"output_type": "stream", "name": "stderr", "text": "/x/.venv/lib/tqdm/auto.py:21: TqdmWarning: IProgress not found\n"}]
    (copy / "fixture" / "reproduce.ipynb").write_text(json.dumps(ex))
    r = visionlab("publish", copy / "fixture", nbs=nbs)
    assert r.returncode == 0, r.stderr
    nb = json.loads((nbs / "01_fixture" / "99_reproduce.ipynb").read_text())
    assert not any("injected-parameters" in c["metadata"].get("tags", []) for c in nb["cells"])
    assert any(c["metadata"].get("tags") == ["parameters"] for c in nb["cells"])
    assert any(c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code")
    assert f"saved runs/{copy.name}/fixture/accuracy.png" in json.dumps(nb)
    text = json.dumps(nb)
    assert "/tmp/" not in text and str(run) not in text and "Warning" not in text, text
    r = visionlab("publish", run / "broken", nbs=nbs)
    assert r.returncode == 2 and "nothing published" in r.stderr

def test_report_command(fixture_run, tmp_path):
    _, run = fixture_run
    copy = tmp_path / "r"; shutil.copytree(run, copy); (copy / "report.md").unlink()
    r = visionlab("report", copy)
    assert r.returncode == 0 and (copy / "report.md").exists()
    assert visionlab("report", tmp_path / "nope").returncode == 2

@pytest.mark.parametrize("damage, expect", [
    (lambda d: (d / "fixture" / "results.json").write_text('{"series": "fixture", "clai'), "fixture/results.json unreadable: JSONDecodeError"),
    (lambda d: (d / "fixture" / "status.json").write_text(""), "fixture/status.json unreadable"),
    (lambda d: (d / "fixture" / "results.json").write_text(json.dumps({"claims": [{"id": "fixture.learns", "claim": "x"}]})),
     "fixture/results.json: claim fixture.learns lacks paper, ours, verdict"),
])
def test_report_survives_damaged_files(fixture_run, tmp_path, damage, expect):
    _, run = fixture_run
    copy = tmp_path / "r"; shutil.copytree(run, copy); damage(copy)
    r = visionlab("report", copy)
    assert r.returncode == 0, r.stderr
    md = (copy / "report.md").read_text()
    assert expect in md, md
    assert "| broken |" in md and "| fixture |" in md                # the other series still appear

def test_a_broken_overview_is_named(tmp_path, monkeypatch, capsys):
    (tmp_path / "vlbad" / "x").mkdir(parents=True); (tmp_path / "vlbad" / "__init__.py").write_text("")
    (tmp_path / "vlbad" / "x" / "__init__.py").write_text("")
    (tmp_path / "vlbad" / "x" / "overview.py").write_text("import no_such_module_here\n")
    (tmp_path / "nbs" / "01_x").mkdir(parents=True)
    shutil.copy(ROOT / "tests" / "fixtures" / "nbs_extra" / "02_tiny" / "99_reproduce.ipynb", tmp_path / "nbs" / "01_x")
    monkeypatch.syspath_prepend(str(tmp_path)); monkeypatch.setenv("VISIONLAB_PACKAGES", "vlbad"); monkeypatch.setenv("VISIONLAB_NBS", str(tmp_path / "nbs"))
    from visionlab_nb.cli import main
    assert main(["list"]) == 0
    assert "overview not importable: ModuleNotFoundError: No module named 'no_such_module_here'" in capsys.readouterr().out
    assert main(["reproduce", "x", "-p", "n_seeds", "2", "--out", str(tmp_path / "runs")]) == 2
    assert "its overview module could not be imported" in capsys.readouterr().err and not (tmp_path / "runs").exists()
