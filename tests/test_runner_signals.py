"Interrupts: Ctrl-C keeps what finished and can be resumed; SIGKILL of the runner leaves no process of the run behind."
import json, re, signal, tempfile, threading, time
from pathlib import Path
from conftest import visionlab, visionlab_bg, EXTRA_NBS

def _reader(p):
    "Collect the lines of `p.stdout` in a list, in a thread."
    lines = []
    t = threading.Thread(target=lambda: [lines.append(l) for l in p.stdout], daemon=True); t.start()
    return lines

def _wait_for(cond, timeout=120):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if cond(): return True
        time.sleep(0.1)
    return False

def _alive(pid: int) -> bool:
    "Whether `pid` runs (a zombie, dead but not yet reaped, does not count)."
    try: return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError): return False

def test_ctrl_c_then_resume(tmp_path):
    hold = tmp_path / "hold"; hold.write_text(""); out = tmp_path / "runs"
    p = visionlab_bg("reproduce", "tiny", "sleeper", "-p", "hold", hold, "--out", out, sigint_ignored=True)   # as `visionlab ... &`
    lines = _reader(p)
    assert _wait_for(lambda: any("[sleeper] waiting" in l for l in lines)), "".join(lines)   # progress streamed from the notebook
    run = next(out.iterdir()); pids = json.loads((run / "sleeper" / "pids.json").read_text())
    p.send_signal(signal.SIGINT)
    assert p.wait(60) == 130, "".join(lines)
    text = "".join(lines)
    assert "Traceback" not in text, text
    st = json.loads((run / "sleeper" / "status.json").read_text())
    assert st["status"] == "interrupted", st
    assert json.loads((run / "tiny" / "status.json").read_text())["status"] == "ok" and (run / "tiny" / "results.json").exists()
    md = (run / "report.md").read_text()
    assert "| tiny |" in md and "| sleeper |" in md and "interrupted" in md
    assert f"report: {run / 'report.html'}" in text
    m = re.search(r"resume with: visionlab (reproduce .*)$", text, re.M)
    assert m and f"--resume {run}" in m.group(1), text
    assert _wait_for(lambda: not any(_alive(x) for x in pids.values()), 10)          # the kernel and its children are gone
    hold.unlink()
    r = visionlab(*m.group(1).split(), nbs=EXTRA_NBS)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "tiny: done already, skipped" in r.stdout and "sleeper: ok" in r.stdout
    assert json.loads((run / "sleeper" / "status.json").read_text())["status"] == "ok"

def test_sigkill_leaves_no_process_of_the_run(tmp_path):
    hold = tmp_path / "hold"; hold.write_text(""); out = tmp_path / "runs"
    tmp = Path(tempfile.mkdtemp(prefix="t"))                      # the run's temporary files (kernel sockets) go here: a short path
    p = visionlab_bg("reproduce", "sleeper", "-p", "hold", hold, "--out", out, "--no-progress", env={"TMPDIR": str(tmp)})
    lines = _reader(p)
    assert _wait_for(lambda: any(out.glob("*/sleeper/worker.pid"))), "".join(lines)
    sd = next(out.glob("*/sleeper"))
    _wait_for(lambda: (sd / "worker.pid").read_text().strip() != "")
    pids = {**json.loads((sd / "pids.json").read_text()), "worker": int((sd / "worker.pid").read_text())}
    assert all(_alive(x) for x in pids.values()), pids
    assert any(tmp.rglob("kernel-*"))
    p.kill(); p.wait(10)
    assert _wait_for(lambda: not any(_alive(x) for x in pids.values()), 15), {k: _alive(v) for k, v in pids.items()}
    assert _wait_for(lambda: not any(tmp.iterdir()), 10), list(tmp.rglob("*"))       # no socket files left
    tmp.rmdir()
    hold.unlink()
