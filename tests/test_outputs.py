"Committed notebooks read like a lab notebook: no absolute paths, progress dumps, widget warnings or kernel noise in outputs."
import re
from pathlib import Path
import nbformat, pytest

ROOT = Path(__file__).resolve().parents[1]
BAD = {"absolute path": re.compile(r"(?<![\w.])/(tmp|home|root|work|Users|private/var)/"),
       "virtualenv path": re.compile(r"\.venv/"),
       "widget warning": re.compile(r"IProgress"),
       "progress dump": re.compile(r"\d+%\|[^\n|]*\||\d+(\.\d+)?(it|s)/(s|it)\]"),
       "missing-CUDA line": re.compile(r"No CUDA runtime"),
       "kernel transport warning": re.compile(r"Kernel is running over TCP")}

def _text(out) -> str:
    if out.get("output_type") == "stream": return out.get("text", "")
    if out.get("output_type") == "error": return "\n".join(out.get("traceback", []))
    data = out.get("data", {})
    return "\n".join(v if isinstance(v, str) else "\n".join(v) for k, v in data.items() if k.startswith("text/"))

def output_problems(nb) -> list[str]:
    "Every bad pattern found in a notebook's outputs, as 'cell N: kind: excerpt'."
    found = []
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            text = _text(out)
            for kind, pat in BAD.items():
                m = pat.search(text)
                if m: found.append(f"cell {i}: {kind}: {text[max(0, m.start() - 30): m.end() + 30]!r}")
    return found

NOTEBOOKS = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "nbs").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)

@pytest.mark.parametrize("path", NOTEBOOKS)
def test_committed_outputs_are_clean(path):
    problems = output_problems(nbformat.read(ROOT / path, as_version=4))
    assert not problems, f"{path}:\n" + "\n".join(problems)

def test_the_scan_catches_each_kind():
    for text in ["saved to /tmp/pytest-1/out/fig.png", "/work/main/.venv/lib/python3.11/site-packages/tqdm/auto.py:21: TqdmWarning: IProgress not found",
                 "train:  40%|████      | 4/10 [00:01<00:02,  3.1it/s]", "No CUDA runtime is found, using CUDA_HOME='/usr'"]:
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x", outputs=[nbformat.v4.new_output("stream", name="stdout", text=text)])])
        assert output_problems(nb), text
    clean = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x", outputs=[nbformat.v4.new_output("stream", name="stdout", text="0.842 ± 0.010 (n=3) in runs/20261127/emo")])])
    assert output_problems(clean) == []
