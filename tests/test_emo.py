"""Tests of the EMO series: windowing, shapes, exact parameter/FLOP counts (fvcore too), the deploy form, official checkpoints, timm registry."""
import json
from pathlib import Path

import pytest
import torch

from visionlab_nb.emo.blocks import (WINDOW_LAYOUTS, WindowAttention, meta_mobile_block, pad_to_multiple,
                                     window_partition, window_reverse)
from visionlab_nb.emo.models import (EMO, EMO_CONFIGS, EMO_TINY32, OFFICIAL_PARAMS_M, PAPER_FLOPS_M, TIMM_NAMES, count_params,
                                     emo, load_official, official_logits, small_input)
from visionlab_nb.emo.measure import analytic_flops, count_flops, deploy

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("layout", WINDOW_LAYOUTS)
@pytest.mark.parametrize("hw,window", [((14, 14), (7, 7)), ((16, 16), (7, 7)), ((8, 12), (4, 4)), ((7, 7), (7, 7))])
def test_windowing_is_a_permutation(layout, hw, window):
    "Every token lands in exactly one window, each window has wh*ww tokens, and window_reverse inverts the partition."
    H, W = hw
    ids = torch.arange(1, H * W + 1).float().view(1, 1, H, W)          # 1-based so zero padding is distinguishable
    padded, (pb, pr) = pad_to_multiple(ids, window)
    wins, grid = window_partition(padded, window, layout)
    assert wins.shape == (grid[0] * grid[1], 1, *window)
    flat = wins.flatten().long().tolist()
    real = sorted(t for t in flat if t > 0)
    assert real == list(range(1, H * W + 1))                           # each real token exactly once
    assert flat.count(0) == (H + pb) * (W + pr) - H * W                # the rest is padding
    torch.testing.assert_close(window_reverse(wins, grid, layout), padded)


def test_strided_window_is_the_official_grid():
    "At 14x14 with windows of 7, strided window (a, b) holds rows a, a+2, ... and columns b, b+2, ...; contiguous holds a 7x7 tile."
    ids = torch.arange(196).view(1, 1, 14, 14)
    s, _ = window_partition(ids, (7, 7), "strided")
    c, _ = window_partition(ids, (7, 7), "contiguous")
    assert torch.equal(s[1, 0], ids[0, 0, 0::2, 1::2])                 # window (0, 1)
    assert torch.equal(c[1, 0], ids[0, 0, :7, 7:])


def _copy(dst, src):
    dst.load_state_dict(src.state_dict()); return dst


def test_layout_irrelevant_when_window_covers_map():
    "A 2-block model gives the same output with strided and contiguous windows when one window covers the whole map."
    torch.manual_seed(0)
    def two_blocks(layout, window):
        return torch.nn.Sequential(*[meta_mobile_block("irmb", 40, 3.0, 5, norm="ln", act="gelu", dim_head=20,
                                                       window_size=window, window_layout=layout) for _ in range(2)]).eval()
    x = torch.randn(2, 40, 7, 7)
    for window in (7, 0):                                              # window = map size, or global
        a = two_blocks("strided", window)
        b = _copy(two_blocks("contiguous", window), a)
        torch.testing.assert_close(a(x), b(x))
    a = two_blocks("strided", 7)                                       # on 14x14 the layouts differ
    b = _copy(two_blocks("contiguous", 7), a)
    x14 = torch.randn(2, 40, 14, 14)
    assert (a(x14) - b(x14)).abs().max() > 1e-4


@pytest.mark.parametrize("size,maps", [(224, [56, 28, 14, 7]), (256, [64, 32, 16, 8])])
def test_feature_maps(size, maps):
    m = emo("EMO-1M").eval()
    with torch.no_grad():
        feats = m.feature_maps(torch.randn(1, 3, size, size))
        assert [f.shape[-1] for f in feats] == maps and [f.shape[-2] for f in feats] == maps
        assert m(torch.randn(1, 3, size, size)).shape == (1, 1000)


def test_small_input_variants():
    for cfg in (EMO_TINY32, small_input(EMO_CONFIGS["EMO-1M"])):
        m = EMO(cfg).eval()
        assert [f.shape[-1] for f in m.feature_maps(torch.randn(2, 3, 32, 32))] == [16, 16, 8, 4]
        assert m(torch.randn(2, 3, 32, 32)).shape == (2, 10)


EXACT_PARAMS = {"EMO-1M": 1361168, "EMO-2M": 2377472, "EMO-5M": 5108848, "EMO-6M": 6168496}


@pytest.mark.parametrize("name", list(EMO_CONFIGS))
def test_params_match_official(name):
    n = count_params(emo(name))
    assert n == EXACT_PARAMS[name]                                     # our build, frozen
    assert abs(n / 1e6 - OFFICIAL_PARAMS_M[name]) <= 0.0005            # official fvcore printout (3 decimals)


@pytest.mark.parametrize("name", list(EMO_CONFIGS))
def test_flops_match_paper(name):
    fl = count_flops(emo(name), 224)
    an = analytic_flops(EMO_CONFIGS[name])["total"]
    assert abs(fl["paper_flops"] - an) <= 0.002 * an                   # real counter == closed form
    assert abs(fl["paper_flops"] / 1e6 - PAPER_FLOPS_M[name]) <= 0.03 * PAPER_FLOPS_M[name]


def test_instantiations():
    "The four Meta-Mobile instantiations: MHSA has no depth-wise conv and lambda 1, FFN no attention/conv, IRB conv only, iRMB both."
    x = torch.randn(2, 40, 14, 14)
    blocks = {k: meta_mobile_block(k, 40, 3.0, 5, norm="ln", act="gelu", dim_head=20).eval() for k in ("mhsa", "ffn", "irb", "irmb")}
    assert blocks["mhsa"].attn is not None and blocks["mhsa"].dw is None and blocks["mhsa"].shrink.in_channels == 40
    assert blocks["ffn"].attn is None and blocks["ffn"].dw is None and blocks["ffn"].shrink.in_channels == 120
    assert blocks["irb"].attn is None and blocks["irb"].dw is not None
    assert blocks["irmb"].attn is not None and blocks["irmb"].dw is not None
    for b in blocks.values(): assert b(x).shape == x.shape
    # iRMB = IRB + the Q/K projection (2C^2 + 2C parameters)
    assert count_params(blocks["irmb"]) - count_params(blocks["irb"]) == 2 * 40 * 40 + 2 * 40


def test_flops_equal_fvcore():
    "fvcore (the paper's counter, a dev dependency) gives the same count as ours to 0.1%."
    from fvcore.nn import FlopCountAnalysis
    for name in ("EMO-1M", "EMO-5M"):
        m = emo(name).eval()
        fa = FlopCountAnalysis(m, torch.randn(1, 3, 224, 224))
        fa.unsupported_ops_warnings(False); fa.uncalled_modules_warnings(False)
        assert abs(fa.total() - count_flops(m, 224)["paper_flops"]) <= 1e-3 * fa.total()


def _trained_looking_bn(m):
    for bn in m.modules():
        if isinstance(bn, torch.nn.BatchNorm2d):
            bn.running_mean.normal_(0, 0.3); bn.running_var.uniform_(0.5, 2.0)
            bn.weight.data.uniform_(0.5, 1.5); bn.bias.data.normal_(0, 0.2)
    return m


@pytest.mark.parametrize("name", ["EMO-1M", "EMO-5M"])
def test_fuse_equals_eval(name):
    "EMO.fuse() folds every BatchNorm and uses SDPA; its logits equal the eval-mode logits within 1e-5."
    torch.manual_seed(0)
    m = _trained_looking_bn(emo(name)).eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        y = m(x); yf = m.fuse()(x)
    assert sum(isinstance(b, torch.nn.BatchNorm2d) for b in m.modules()) == 0
    assert all(a.fused_attn for a in m.modules() if isinstance(a, WindowAttention))
    assert (y - yf).abs().max() < 1e-5


def test_fold_batchnorms_timm_peer():
    "The fx pass that gives the peers the same deploy treatment folds every BN of timm's MobileNetV2 exactly."
    import timm
    torch.manual_seed(0)
    m = _trained_looking_bn(timm.create_model("mobilenetv2_100")).eval()
    d, note = deploy(m)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad(): assert (m(x) - d(x)).abs().max() < 1e-4
    assert sum(isinstance(b, torch.nn.BatchNorm2d) for b in d.modules()) == 0, note


def test_timm_registry():
    import timm
    for variant, name in TIMM_NAMES.items():
        m = timm.create_model(variant)
        assert count_params(m) == EXACT_PARAMS[name]
        assert m.pretrained_cfg["input_size"] == (3, 224, 224)
    m = timm.create_model("vl_emo_1m", num_classes=7).eval()
    f = m.forward_features(torch.randn(1, 3, 224, 224))
    assert f.shape == (1, 168, 7, 7) and m.forward_head(f).shape == (1, 7)
    m.reset_classifier(3); assert m(torch.randn(1, 3, 224, 224)).shape == (1, 3)


def test_official_checkpoint(tmp_path):
    "A state dict with the official EMO-1M key names and shapes loads strictly through timm, each tensor where it belongs."
    spec = json.loads((ROOT / "nbs/10_emo/fixtures/emo_1m_official_keys.json").read_text())
    g = torch.Generator().manual_seed(0)
    sd = {k: (torch.tensor(0) if k.endswith("num_batches_tracked") else torch.rand(s, generator=g) + 0.5) for k, s in spec.items()}
    torch.save({"net": {k: torch.zeros_like(v) for k, v in sd.items()}, "net_E": sd}, tmp_path / "net.pth")
    import timm
    m = timm.create_model("vl_emo_1m", pretrained=True, pretrained_cfg_overlay=dict(file=str(tmp_path / "net.pth")))
    ours = m.state_dict()
    assert len(ours) == len(spec)
    for official, mine in [("stage0.0.convs.0.0.weight", "stem.0.0.weight"), ("stage0.1.se.conv_expand.bias", "stem.1.se.fc2.bias"),
                           ("stage2.1.norm.running_mean", "stages.1.1.norm.running_mean"),
                           ("stage3.1.qk.conv.weight", "stages.2.1.attn.qk.weight"), ("stage3.1.v.conv.weight", "stages.2.1.expand.0.weight"),
                           ("stage3.7.conv_local.norm.weight", "stages.2.7.dw.1.weight"), ("stage4.2.proj.conv.weight", "stages.3.2.shrink.weight"),
                           ("stage4.2.norm.norm.bias", "stages.3.2.norm.bias"), ("norm.norm.weight", "norm.weight"), ("head.bias", "head.bias")]:
        assert torch.equal(ours[mine], sd[official]), official          # the EMA weights ('net_E'), renamed
    m2 = load_official(tmp_path / "net.pth", "EMO-1M")
    assert torch.equal(m2.head.weight, sd["head.weight"])
    assert official_logits({"out": torch.ones(2), "out_kd": torch.zeros(2)}).sum() == 2


def test_training_in_processes_equals_in_process(tmp_path, monkeypatch):
    "The arms' runs spread over two processes give the same lrs and accuracies as every run in this process."
    monkeypatch.setenv("VISIONLAB_THREADS", "2")     # two cores for this run, whatever the test worker has: pmap starts two processes
    from visionlab_nb.core.series import Run
    from visionlab_nb.emo.experiment import load_data, run_training
    from visionlab_nb.emo.overview import PROFILES
    metrics = []
    for workers in (1, 2):
        run = Run("emo", PROFILES, "smoke", {"lr_grid": "0.003", "max_steps": 2}, out_dir=tmp_path / str(workers))
        run_training(run, run.P, load_data(run.P), workers=workers)
        metrics.append(run.metrics)
    assert set(metrics[0]) == {f"{k}/{a}" for k in ("acc", "acc_E", "lr") for a in
                              ("EMO", "MobileNetV2", "MobileNetV3-S", "ViT", "EMO-MHSA", "EMO-FFN", "EMO-IRB")}
    assert metrics[0] == metrics[1]
