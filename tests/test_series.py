"Generic tests over every series found in nbs/: the overview contract, every claim's decide, a smoke run and a capped paper run."
import dataclasses, importlib, os
from pathlib import Path
import pytest
from visionlab_nb.core.claims import VERDICTS, NOT_MEASURED, Verdict, check_decide, read_results
from visionlab_nb.core.series import Profile, field_docs
from visionlab_nb.core.runner import find_series

ROOT = Path(__file__).resolve().parents[1]
SERIES = find_series([ROOT / "nbs"])
LEGACY: set = set()     # series still on the pre-kit pattern (none now); a new series never goes here

def _kit_series():
    return [s for s in SERIES if s not in LEGACY]

# Real bugs these tests found and that are not fixed yet: each names the failure; remove the entry with the fix.
KNOWN_FAILURES: dict = {}                        # (kind, series) -> reason: a known failure, marked xfail until fixed

def _with_known(kind):
    return [pytest.param(s, marks=pytest.mark.xfail(reason=KNOWN_FAILURES[(kind, s)], strict=False))
            if (kind, s) in KNOWN_FAILURES else s for s in _kit_series()]

def overview(name):
    return importlib.import_module(f"visionlab_nb.{name}.overview")

def execute(name, tmp_path, **params):
    "Run a series' reproduce notebook with papermill; return its results.json."
    import papermill as pm
    nb = SERIES[name].notebook
    os.environ["TQDM_DISABLE"] = "1"
    pm.execute_notebook(str(nb), str(tmp_path / "executed.ipynb"), cwd=str(nb.parent), progress_bar=False,
                        parameters={"device": "cpu", "out_dir": str(tmp_path / "out"), **params})
    return read_results(tmp_path / "out")

def test_series_are_found_in_order():
    names = list(SERIES)
    order = ["dat", "advcl", "tinymim", "cmt", "doorping", "pmtiqa", "drums", "reft", "reliant", "emo"]
    assert names == [n for n in order if n in names]
    assert {"dat", "emo"} <= set(names)

@pytest.mark.parametrize("name", _kit_series())
def test_overview_contract(name):
    ov = overview(name)
    assert isinstance(ov.TITLE, str) and ov.TITLE
    assert set(ov.PROFILES) == {"smoke", "quick", "paper"}
    cls = type(ov.PROFILES["quick"])
    assert issubclass(cls, Profile) and all(isinstance(p, cls) for p in ov.PROFILES.values())
    docs = field_docs(cls)
    undocumented = [f.name for f in dataclasses.fields(cls) if not docs.get(f.name)]
    assert not undocumented, f"{name}: profile fields without a comment: {undocumented}"
    ids = [c.id for c in ov.CLAIMS]
    assert ids and len(set(ids)) == len(ids) and all(i.startswith(name + ".") for i in ids)
    assert all(c.decide is not None and c.rule for c in ov.CLAIMS)

@pytest.mark.parametrize("name", _kit_series())
def test_reproduce_is_skipped_by_nbdev_test(name):
    "The reproduce notebook runs the experiment: `nbdev_test` (make test) must skip it (front matter `skip_exec: true`)."
    from visionlab_nb.core.docs import front_matter, _read
    nb = next((ROOT / "nbs").glob(f"[0-9]*_{name}/99_reproduce.ipynb"))
    assert front_matter(_read(nb)).get("skip_exec") is True, f"{nb}: give it the front matter `skip_exec: true`"

@pytest.mark.parametrize("name", _kit_series())
def test_every_decide_gives_each_declared_outcome(name):
    "A decide that always says 'holds' (or ignores its metrics) fails here: each claim declares examples of its outcomes."
    for c in overview(name).CLAIMS:
        assert len(c.examples) >= 2, f"{c.id}: give made-up metrics for at least 'holds' and 'fails'"
        check_decide(c)

@pytest.mark.parametrize("name", _kit_series())
def test_smoke_run(name, tmp_path):
    res = execute(name, tmp_path, profile="smoke")
    ov = overview(name)
    assert [c["id"] for c in res["claims"]] == [c.id for c in ov.CLAIMS]
    assert all(c["verdict"] == NOT_MEASURED for c in res["claims"])
    for c in ov.CLAIMS:                                  # the verdict code runs on what a real run measures
        v = c.evaluate(res["metrics"])
        assert isinstance(v, Verdict) and v.verdict in VERDICTS
        assert not v.ours.startswith("metric "), f"{c.id}: the smoke run does not measure what decide reads ({v.ours})"

@pytest.mark.parametrize("name", _with_known("paper"))
def test_paper_profile_runs_on_real_format_files(name, tmp_path):
    exp = importlib.import_module(f"visionlab_nb.{name}.experiment")
    data = tmp_path / "data"; data.mkdir()
    exp.fake_paper_data(data)
    capped = {"max_steps": 2, "n_seeds": 1, **getattr(exp, "CAPPED_PAPER", {})}   # a series may narrow its sweep for this run
    res = execute(name, tmp_path, profile="paper", data_root=str(data), overrides=capped)
    assert res["profile"] == "paper" and res["parameters"]["profile_values"]["max_steps"] == 2

def run_until_error(name, **params) -> BaseException | None:
    """Run a series' reproduce notebook's code cells here, in this process, with `params` set after its parameters cell, until one
    raises; return that exception (None if every cell ran). Cheaper than a kernel for a run that must stop in its first cells."""
    import nbformat
    nb_path = SERIES[name].notebook
    ns, cwd = {"__name__": "__main__"}, os.getcwd()
    os.chdir(nb_path.parent)
    try:
        for c in nbformat.read(nb_path, as_version=4).cells:
            if c.cell_type != "code": continue
            exec(compile(c.source, f"{nb_path.name}", "exec"), ns)
            if "parameters" in c.metadata.get("tags", []): ns.update(params)
    except Exception as e:
        return e
    finally:
        os.chdir(cwd)
    return None

@pytest.mark.parametrize("name", _kit_series())
def test_paper_profile_without_data_fails_fast(name, tmp_path):
    "The paper profile with no dataset stops in the notebook's first cells, naming what is missing (before any model is trained)."
    e = run_until_error(name, profile="paper", device="cpu", data_root=str(tmp_path / "nowhere"), out_dir=str(tmp_path / "out"),
                        overrides={"max_steps": 2, "n_seeds": 1})
    assert e is not None, f"{name}: the paper profile ran without its data"
    assert isinstance(e, FileNotFoundError) or "not found" in str(e).lower(), repr(e)
    assert not (tmp_path / "out" / "results.json").exists()
