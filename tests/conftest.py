"Shared helpers of the end-to-end tests: the fixture series and the `visionlab` command."
import os, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURE_NBS = ROOT / "tests" / "fixtures" / "nbs"
VISIONLAB = str(Path(sys.executable).parent / "visionlab")

def visionlab(*args, nbs=FIXTURE_NBS, cwd=None, timeout=300):
    "Run the `visionlab` console script with VISIONLAB_NBS pointing at `nbs`; return the CompletedProcess."
    env = {**os.environ, "VISIONLAB_NBS": str(nbs), "PYTHONUNBUFFERED": "1"}
    return subprocess.run([VISIONLAB, *map(str, args)], capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)

@pytest.fixture(scope="session")
def fixture_run(tmp_path_factory):
    "One `visionlab reproduce all` over the fixture series (one passing, one failing), shared by the tests."
    out = tmp_path_factory.mktemp("runs")
    r = visionlab("reproduce", "all", "--profile", "quick", "--device", "cpu", "--out", out, "--no-progress")
    runs = sorted(out.iterdir())
    return r, runs[0] if runs else None
