"""Tests of the DAT series: attacks, quantizer, QSGD across workers, bytes on the wire, LAMB, 2-worker equivalence, a killed worker."""
import math, os, signal
from pathlib import Path
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from visionlab_nb.core.attacks import pgd_attack, fgsm_attack, clean_and_robust_accuracy
from visionlab_nb.dat.compression import QSGDQuantizer, ring_wire_bytes, run_in_group, measure_bytes_per_step
from visionlab_nb.dat.lamb import Lamb, warmup_step_factor
from visionlab_nb.dat.objectives import make_objective
from visionlab_nb.dat.distributed import (TrainConfig, save_data_file, launch_local, run_local, read_result, kill_worker_after,
                                          shard_batches)

REPO = Path(__file__).resolve().parents[1]


def _toy():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(256, 10))
    return model, torch.rand(64, 1, 8, 8), torch.randint(0, 10, (64,))


def test_attacks_stay_in_ball_and_box_and_raise_loss():
    model, x, y = _toy()
    model.train()
    xa = pgd_attack(model, x, y, eps=0.1, step_size=0.025, steps=10)
    assert (xa - x).abs().max() <= 0.1 + 1e-6 and xa.min() >= 0 and xa.max() <= 1
    assert F.cross_entropy(model(xa), y) > F.cross_entropy(model(x), y)
    assert model.training and all(p.grad is None for p in model.parameters())   # mode restored, no parameter grads
    xf = fgsm_attack(model, x, y, eps=0.1)
    assert (xf - x).abs().max() <= 0.1 + 1e-6
    clean, robust = clean_and_robust_accuracy(model, x, y, eps=0.1, step_size=0.025, steps=5, batch_size=16)
    with torch.no_grad(): by_hand = (model(x).argmax(1) == y).float().mean().item()
    assert clean == pytest.approx(by_hand)                                       # clean accuracy is the plain accuracy
    assert robust < clean                                                        # PGD finds errors on this undefended model
    _, robust_eps0 = clean_and_robust_accuracy(model, x, y, eps=0.0, step_size=0.025, steps=5, batch_size=16)
    assert robust_eps0 == pytest.approx(clean)                                   # an empty ball changes nothing


def test_dat_objective_is_clean_plus_adversarial():
    model, x, y = _toy()
    dat, madry = make_objective("dat-pgd", eps=0.1, steps=2), make_objective("madry", eps=0.1, steps=2)
    g = lambda: torch.Generator().manual_seed(0)
    torch.testing.assert_close(dat.loss(model, x, y, g()), madry.loss(model, x, y, g()) + F.cross_entropy(model(x), y))
    assert make_objective("fgsm-rs", eps=0.08).step_size == pytest.approx(0.1)


def test_qsgd_unbiased_payload_and_grid():
    q = QSGDQuantizer(bits=7)
    gen = torch.Generator().manual_seed(0)
    g = torch.randn(300)
    codes, norm = q.quantize(g, generator=gen)
    assert codes.dtype == torch.uint8 and q.payload_bytes(g.numel()) == 300 + 4      # 1 byte per element + one float per tensor
    mean = torch.stack([q.dequantize(*q.quantize(g, generator=gen)) for _ in range(10_000)]).mean(0)
    assert (mean - g).norm() / g.norm() < 0.01                                        # unbiased
    grid = torch.tensor([69.0, -66.0, 64.0, -54.0, 0.0]) / 32                         # 69^2+66^2+64^2+54^2 = 127^2
    for _ in range(5): assert torch.equal(q.dequantize(*q.quantize(grid, generator=gen)), grid)   # exact on the grid
    d, s = g.numel(), q.levels
    var = torch.stack([(q.dequantize(*q.quantize(g, generator=gen)) - g).pow(2).sum() for _ in range(500)]).mean()
    assert var <= min(d / s**2, math.sqrt(d) / s) * g.pow(2).sum()
    assert ring_wire_bytes("all_gather", 100, 4) == 300 and ring_wire_bytes("all_reduce", 100, 4) == 150


def test_qsgd_allgather_unbiased_across_workers_and_within_bound(world_size=3):
    """Real gloo workers with different fixed gradients: the mean of 1500 QSGDAllGather aggregations is the exact mean of the
    workers' gradients, and the mean squared error is positive and under (1/M^2) sum_i min(d/s^2, sqrt(d)/s) |g_i|^2."""
    st = run_in_group("qsgd_statistics", world_size, shapes=[[200], [12, 5]], reps=1500)
    assert st["world_size"] == world_size
    assert st["rel_bias"] < 0.01
    assert 0 < st["mse"] <= st["bound"]


def test_wire_bytes_measured_on_the_sockets():
    """Bytes written to the sockets by each worker in one step: the ring model plus gloo's headers; QSGD's saving is 8/M."""
    shapes = [(64, 32, 3, 3), (64,), (10, 2048)]
    d = sum(math.prod(s) for s in shapes)
    for m in (2, 4):
        w = measure_bytes_per_step(shapes, schemes=("allreduce", "qsgd"), world_size=m)
        assert 0 <= w["allreduce"]["sent_bytes"] - 2 * (m - 1) / m * 4 * d <= 300 * 2 * (m - 1)
        assert 0 <= w["qsgd"]["sent_bytes"] - (m - 1) * (d + 4 * len(shapes)) <= 300 * 2 * (m - 1)
        assert w["allreduce"]["sent_bytes"] / w["qsgd"]["sent_bytes"] == pytest.approx(8 / m, rel=0.1)


def test_powersgd_with_several_ddp_buckets():
    """torch's PowerSGD hook over several DDP buckets on gloo (PreActResNet-18 has three): unordered, the workers start the P/Q
    all-reduces of different buckets in different orders and abort (SIGABRT, size mismatch); in bucket order every step completes,
    sends the P and Q factors plus the uncompressed biases, and the plain all-reduce hook over the same buckets is exact."""
    shapes, r = [(256, 256)] * 4 + [(256,)] * 4, 2
    w = measure_bytes_per_step(shapes, schemes=("ddp-allreduce", "ddp-powersgd"), world_size=2, bucket_cap_mb=0.3)
    assert w["ddp-allreduce"]["rel_error"] < 1e-6 and w["ddp-allreduce"]["calls"] >= 2          # >= 2 buckets
    assert w["ddp-powersgd"]["calls"] == 3 * w["ddp-allreduce"]["calls"]                        # uncompressed, P, Q per bucket
    assert w["ddp-powersgd"]["payload_bytes"] == 4 * (4 * (256 + 256) * r + 4 * 256)
    assert math.isfinite(w["ddp-powersgd"]["rel_error"])


def test_lamb_matches_timm_below_clip_and_schedule():
    from timm.optim import Lamb as TimmLamb
    torch.manual_seed(0)
    a = nn.Linear(10, 5); b = nn.Linear(10, 5); b.load_state_dict(a.state_dict())
    oa = Lamb(a.parameters(), lr=1e-2, weight_decay=1e-2)
    ob = TimmLamb(b.parameters(), lr=1e-2, weight_decay=1e-2, bias_correction=False, max_grad_norm=None, always_adapt=True)
    for _ in range(10):
        x = torch.randn(8, 10)
        for m, o in ((a, oa), (b, ob)): o.zero_grad(); m(x).pow(2).mean().backward(); o.step()
    for p, q in zip(a.parameters(), b.parameters()): torch.testing.assert_close(p, q, atol=1e-6, rtol=0)
    assert warmup_step_factor(0, 10) == 0.1 and warmup_step_factor(9, 10) == 1.0
    assert warmup_step_factor(10 + 5, 10, [5], 0.1) == pytest.approx(0.1)


def test_sharding_matches_single_process_batches():
    one = shard_batches(120, 1, 0, 24, epoch=1, seed=3)
    two = [shard_batches(120, 2, r, 12, epoch=1, seed=3) for r in range(2)]
    for k in range(len(one)): assert sorted(torch.cat([two[0][k], two[1][k]]).tolist()) == sorted(one[k].tolist())


@pytest.fixture(scope="module")
def digits_file(tmp_path_factory):
    from sklearn.datasets import load_digits
    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16
    y = torch.tensor(d.target)
    return save_data_file(tmp_path_factory.mktemp("data") / "digits.pt", x[:1200], y[:1200], x[1200:1400], y[1200:1400])


def test_two_workers_equal_one_process_and_survive_a_killed_worker(tmp_path, digits_file):
    """One torchrun job (2 gloo workers, --max-restarts=1) runs (1) the equivalence run, then (2) a run during which we SIGKILL rank 1."""
    eq = dict(data_file=digits_file, model="small_cnn", objective="dat-pgd", eps=0.1, attack_steps=3, random_start=False,
              batch_size=64, epochs=1, warmup_epochs=1, max_steps=10, optimizer="lamb", lr=0.01, eval_steps=0, save_params=True)
    ft = dict(data_file=digits_file, model="small_cnn_w16", objective="dat-pgd", eps=0.1, attack_steps=1, batch_size=64,
              epochs=12, optimizer="lamb", lr=0.01, eval_steps=3)
    two = TrainConfig(name="two", out_dir=str(tmp_path / "two"), **eq)
    killed_run = TrainConfig(name="ft", out_dir=str(tmp_path / "ft"), **ft)
    proc = launch_local([two, killed_run], nproc=2, run_dir=tmp_path / "job", max_restarts=1, wait=False)
    try:
        pid = kill_worker_after(killed_run.out_dir, rank=1, epoch=2, timeout=50)
        rc = proc.wait(timeout=50)
    finally:
        if proc.poll() is None: os.killpg(proc.pid, signal.SIGTERM); proc.wait()
    log = (tmp_path / "job" / "torchrun.log").read_text()
    assert rc == 0, log[-2000:]
    # (1) equivalence: 2 workers on half-batches == 1 process on the whole batch; ranks identical
    one = run_local(TrainConfig(name="one", out_dir=str(tmp_path / "one"), **eq))
    r2 = read_result(two.out_dir)
    p2 = [torch.load(tmp_path / "two" / f"params_rank{r}.pt") for r in range(2)]
    p1 = torch.load(tmp_path / "one" / "params_rank0.pt")
    assert r2["steps"] == one["steps"] == 10
    assert max((p2[0][k] - p1[k]).abs().max().item() for k in p1) < 1e-5
    from visionlab_nb.dat.models import make_model
    torch.manual_seed(0)                                                          # the workers' initialisation (seed 0)
    init = make_model("small_cnn", 1, 10, 8).state_dict()
    assert min((p1[k] - init[k]).abs().max().item() for k in p1) > 1e-4           # every tensor moved: the equality is not vacuous
    assert r2["ranks_identical"] and all(torch.equal(p2[0][k], p2[1][k]) for k in p1)
    # (2) the killed worker was restarted and the job finished from the checkpoint
    res = read_result(killed_run.out_dir)
    assert res["restarts"] == 1 and res["resumed_from_epoch"] >= 2 and res["epochs"] == 12
    assert (tmp_path / "ft" / "pid_rank1_attempt1").exists()
    assert int((tmp_path / "ft" / "pid_rank1_attempt0").read_text()) == pid
