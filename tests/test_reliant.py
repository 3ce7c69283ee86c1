"Science tests of the reliant series: the smooth step, the metrics against fairlearn, the proxy's own optimiser, the loaders."
import numpy as np
import pytest
import torch
from fairlearn.metrics import demographic_parity_difference, equal_opportunity_difference, equalized_odds_difference
from visionlab_nb.reliant.data import (load_fair_graph, make_fair_graph, write_bail, write_credit, write_dblp, write_pokec,
                                       label_split)
from visionlab_nb.reliant.fairkd import (STEP_COEFS, BiasProxy, bias_surrogate, distill, fair_metrics, fit, kd_loss,
                                         legendre_step)
from visionlab_nb.reliant.models import NodeClassifier

torch.set_num_threads(1)


def test_surrogate_is_a_smooth_step():
    p = torch.linspace(0, 1, 2001, dtype=torch.float64)
    f = legendre_step(p)
    x = (2 * p - 1).numpy()
    ref = 0.5 + np.polynomial.legendre.legval(x, [0, *sum(([c, 0] for c in STEP_COEFS), [])][:-1])
    np.testing.assert_allclose(f.numpy(), ref, atol=1e-12)                 # Legendre series, numpy's evaluation
    step = (p > 0.5).double()
    assert float((f - step)[(p - 0.5).abs() >= 0.45].abs().max()) < 0.11  # close to the step away from 0.5
    assert float((f - step)[(p - 0.5).abs() >= 0.30].abs().max()) < 0.20
    assert abs(float(legendre_step(torch.tensor(0.5))) - 0.5) < 1e-12
    slope = (f.diff() / p.diff())
    assert bool((slope > 0).all()) and float(slope.max()) < 3                # monotone and smooth
    pg = torch.rand(100, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(legendre_step, (pg,))                    # differentiable everywhere


def test_metrics_equal_fairlearn():
    g = torch.Generator().manual_seed(1)
    for _ in range(10):
        n = 300
        y, s = torch.randint(0, 2, (n,), generator=g), torch.randint(0, 2, (n,), generator=g)
        logits = torch.randn(n, 2, generator=g) + torch.stack([torch.zeros(n), 0.6 * s + 0.4 * y], 1)
        idx = torch.randperm(n, generator=g)[:200]
        m = fair_metrics(logits, y, s, idx)
        yt, pr, st = y[idx].numpy(), logits[idx].argmax(1).numpy(), s[idx].numpy()
        assert m["sp"] == pytest.approx(demographic_parity_difference(yt, pr, sensitive_features=st), abs=1e-9)
        assert m["eo"] == pytest.approx(equal_opportunity_difference(yt, pr, sensitive_features=st), abs=1e-9)
        assert equalized_odds_difference(yt, pr, sensitive_features=st) >= m["eo"] - 1e-12


def test_surrogate_tracks_the_gap():
    n = 1000
    s = torch.arange(n) % 2
    every = torch.ones(n, dtype=torch.bool)
    sharp = torch.where(s == 1, 0.999, 0.001)[:, None]
    prob = torch.cat([1 - sharp, sharp], 1)
    assert float(bias_surrogate(prob, s, every)) > 1.5 * 0.85 ** 2           # ΔSP = 1 -> about 2 (f(1) - f(0))^2
    assert float(bias_surrogate(torch.full((n, 2), 0.5), s, every)) == 0.0


def test_proxy_changes_only_under_its_own_optimiser():
    d = make_fair_graph(n=200, seed=3)
    torch.manual_seed(0)
    stu, bp = NodeClassifier("mlp", d.x.shape[1]), BiasProxy(d.num_nodes)
    opt, opt_p = torch.optim.Adam(stu.parameters(), lr=0.05), torch.optim.Adam(bp.parameters(), lr=0.05)
    every = torch.ones(d.num_nodes, dtype=torch.bool)
    P0 = bp.P.detach().clone()
    out = stu(bp.averaged(d.x), d.edge_index)
    loss = kd_loss(out, torch.randn(d.num_nodes, 2), d.y, d.idx_train) + 10 * bias_surrogate(out.softmax(1), d.sens, every)
    opt.zero_grad(); loss.backward(); opt.step()
    assert torch.equal(bp.P.detach(), P0) and bp.P.grad is None
    W = [q.detach().clone() for q in stu.parameters()]
    lp = -10 * bias_surrogate(stu(bp.nodewise(d.x), d.edge_index).softmax(1), d.sens, every)
    opt_p.zero_grad(); lp.backward(); opt_p.step(); stu.zero_grad(set_to_none=True)
    assert all(torch.equal(a, b.detach()) for a, b in zip(W, stu.parameters()))
    assert not torch.equal(bp.P.detach(), P0)
    # inside distill: alpha = 0 never steps the proxy (the unaware student), alpha > 0 does
    T = fit(d, "gcn", epochs=5, seed=0).logits
    torch.manual_seed(0); NodeClassifier("mlp", d.x.shape[1], layers=2)  # distill draws the proxy right after the student
    P_init = BiasProxy(d.num_nodes).P.detach()
    r0 = distill(d, T, "mlp", mode="sp", alpha=0.0, epochs=5, seed=0)
    r1 = distill(d, T, "mlp", mode="sp", alpha=10.0, epochs=5, seed=0)
    assert torch.equal(r0.proxy, P_init) and not torch.equal(r1.proxy, P_init)


def test_max_steps_caps_every_loop():
    d = make_fair_graph(n=150, seed=0)
    assert fit(d, "sage", epochs=50, max_steps=2).steps == 2
    T = fit(d, "gcn", epochs=3).logits
    for mode in (None, "sp", "eo"):
        assert distill(d, T, "gcn", mode=mode, alpha=10, layers=1, epochs=50, max_steps=2).steps == 2


def test_loaders_read_the_real_formats(tmp_path):
    write_bail(tmp_path, seed=2); write_credit(tmp_path, seed=2); write_pokec(tmp_path, seed=2); write_dblp(tmp_path, seed=2)
    write_dblp(tmp_path, seed=2, large=True)
    ref = make_fair_graph(n=120, n_feat=6, avg_degree=6, seed=2)
    for name in ("bail", "credit", "pokec", "dblp", "dblp-l"):
        g = load_fair_graph(name, str(tmp_path))
        assert torch.equal(g.sens, ref.sens) and torch.equal(g.edge_index, ref.edge_index), name
        lab = g.y >= 0
        assert torch.equal(g.y[lab], ref.y[lab]), name
        assert torch.equal(g.x[:, -2:], torch.nn.functional.one_hot(g.sens, 2).float()), name
    with pytest.raises(FileNotFoundError, match="pokec/region_job.csv"):
        load_fair_graph("pokec", str(tmp_path / "none"))
    # the official bail/credit split rule (python random, seed 20)
    y = np.r_[np.zeros(40, int), np.ones(60, int)]
    tr, va, te = label_split(y, (0.5, 0.75), max_train_per_class=10)
    assert (len(tr), len(va), len(te)) == (20, 25, 25) and len(set(tr) | set(va) | set(te)) == 70
