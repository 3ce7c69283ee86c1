"Science tests of the pmtiqa series: the benchmark's target, the splits, the metrics, the real-format loaders, the model and the schedules."
import numpy as np
import pytest
import scipy.stats
import torch
from visionlab_nb.pmtiqa.benchmark import (KINDS, make_benchmark, level_table, monotone_fraction, split_by_reference,
                                           srcc, plcc, brisque_features)
from visionlab_nb.pmtiqa.datasets import FAKERS, load_records, read_xlsx, write_xlsx, PatchDataset
from visionlab_nb.pmtiqa.model import PMTIQANet
from visionlab_nb.pmtiqa.train import loss_weights, SCHEDULES


@pytest.fixture(scope="module")
def bench():
    return make_benchmark(n_crops=1)


def test_every_distortion_is_monotone_in_its_level(bench):
    tab, frac = level_table(bench), monotone_fraction(bench)
    for k in KINDS:
        assert all(a > b for a, b in zip(tab[k], tab[k][1:])), (k, tab[k])
        assert frac[k] >= 0.95, (k, frac[k])
    assert 0 <= bench.score.min() and bench.score.max() <= 100


@pytest.mark.parametrize("seed", [0, 1, 2, 7])
def test_split_shares_no_reference(bench, seed):
    tr, va, te = split_by_reference(bench.ref, 0.2, seed=seed, val_frac=0.25)
    parts = [set(bench.ref[i].tolist()) for i in (tr, va, te)]
    assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])
    assert len(tr) + len(va) + len(te) == len(bench)


def test_srcc_plcc_equal_scipy():
    rng = np.random.default_rng(3)
    a = rng.normal(size=50); b = a + rng.normal(size=50)
    b[:5] = b[5]                                        # ties
    assert srcc(a, b) == pytest.approx(scipy.stats.spearmanr(a, b).statistic, abs=1e-12)
    assert plcc(a, b) == pytest.approx(scipy.stats.pearsonr(a, b).statistic, abs=1e-12)
    assert srcc(torch.tensor(a), torch.tensor(b)) == pytest.approx(scipy.stats.spearmanr(a, b).statistic, abs=1e-12)


@pytest.mark.parametrize("name", sorted(FAKERS))
def test_each_loader_reads_its_fabricated_files(name, tmp_path):
    truth = FAKERS[name](tmp_path / name)
    r = load_records(name, tmp_path)
    assert len(r) > 0 and len(r.paths) == len(r.score) == len(r.cls) == len(r.ref)
    assert r.cls.min() >= 0 and r.cls.max() <= 9
    if "score" in truth: np.testing.assert_allclose(r.score, truth["score"])
    x, s, c, i = PatchDataset(r, [0], patch=32, patch_num=1, train=True)[0]
    assert x.shape == (3, 32, 32) and float(s) == pytest.approx(float(r.score[0]), rel=1e-6)


def test_missing_dataset_names_layout(tmp_path):
    with pytest.raises(FileNotFoundError, match="AllMOS_release"):
        load_records("livec", tmp_path)


def test_xlsx_roundtrip(tmp_path):
    write_xlsx(tmp_path / "a.xlsx", [["h1", "h2"], [3, 4.5]])
    assert read_xlsx(tmp_path / "a.xlsx") == [["h1", "h2"], [3.0, 4.5]]


def test_brisque_features_match_piq(bench):
    import sys, piq
    mod = sys.modules["piq.brisque"]; got = {}
    orig = mod._score_svr
    mod._score_svr = lambda f: (got.__setitem__("f", f), f.sum(-1))[1]
    try: piq.brisque(bench.images[:4].float() / 255, data_range=1.0, reduction="none")
    finally: mod._score_svr = orig
    torch.testing.assert_close(brisque_features(bench.images[:4]), got["f"], atol=1e-4, rtol=1e-4)


def test_multiscale_taps_every_stage_and_schedules():
    net = PMTIQANet(grids=(4, 2, 1))
    out = net(torch.randn(3, 3, 32, 32))
    out["mos"].sum().backward()
    assert all(t[0].weight.grad.abs().sum() > 0 for t in net.features.taps)     # stages 1-3 reach the score
    assert net.features.last[-1].weight.grad.abs().sum() > 0                     # and stage 4
    assert loss_weights("progressive", 0, 10) == (0.0, 1.0) and loss_weights("progressive", 9, 10) == (1.0, 0.0)
    assert loss_weights("reversed", 0, 10) == (1.0, 0.0) and set(SCHEDULES) == {"progressive", "fixed", "regression", "reversed"}
