"Science tests of the doorping series (the module notebooks carry more, under each definition)."
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from visionlab_nb.doorping.models import ConvNet
from visionlab_nb.doorping.distill import layer_distance, match_distance, DSA
from visionlab_nb.doorping.backdoor import (Standardizer, trigger_mask, patch_trigger, stamp, poison, poison_indices,
                                            update_trigger, asr)
from visionlab_nb.doorping.defenses import neural_cleanse, fit_strip, strip_metrics, fine_prune, anomaly_index
from visionlab_nb.doorping.overview import CLAIMS, PROFILES
from visionlab_nb.core.claims import check_decide

torch.set_num_threads(1)

def test_trigger_changes_only_its_mask():
    m = trigger_mask((3, 32, 32), size=2, margin=1)
    x = torch.rand(4, 3, 32, 32)
    xt = stamp(x, patch_trigger((3, 32, 32), 1.0), m)
    assert not (xt != x)[:, m == 0].any()
    assert torch.equal(xt[:, :, 29:31, 29:31], torch.ones(4, 3, 2, 2))

def test_match_distance_zero_and_hand_computed():
    g = [torch.randn(4, 2, 3, 3), torch.randn(4), torch.randn(3, 5)]
    assert abs(float(match_distance(g, g))) < 1e-5
    a, b = torch.tensor([[1., 0.], [1., 1.]]), torch.tensor([[0., 1.], [2., 2.]])
    assert abs(float(layer_distance(a, b)) - 1.0) < 1e-5             # 1 - cos 90° + 1 - cos 0°
    assert float(layer_distance(torch.ones(5), -torch.ones(5))) == 0.0   # biases ignored

def test_dsa_is_siamese():
    torch.manual_seed(0); x = torch.randn(3, 1, 8, 8)
    for op in DSA.OPS:
        r, s = DSA(op)(x, x.clone())
        assert torch.allclose(r, s, atol=1e-6)

def test_doorping_update_raises_selected_neuron():
    torch.manual_seed(0)
    net = ConvNet(num_classes=10, in_chans=1, img_size=8, width=16, depth=2, hidden=32)
    with torch.no_grad(): net.hidden.bias.fill_(0.3)
    m = trigger_mask((1, 8, 8), 2)
    t0 = stamp(torch.zeros(1, 8, 8), torch.rand(1, 8, 8), m)
    t1, info = update_trigger(net, t0, m, steps=100)
    assert info.neurons == [int(net.hidden.weight.abs().sum(1).argmax())]
    assert info.act_after > info.act_before and info.steps > 0
    assert not (t1 != t0)[m == 0].any()

def test_asr_counts_non_target_images_only():
    class Const(nn.Module):
        def forward(self, x): return F.one_hot(torch.zeros(len(x), dtype=torch.long), 10).float()
    y = torch.arange(10).repeat(3); x = torch.zeros(30, 1, 8, 8); m = trigger_mask((1, 8, 8), 2)
    assert asr(Const(), x, y, patch_trigger((1, 8, 8)), m, 0) == 1.0
    class TrueLabel(nn.Module):                          # predicts the label written in pixel (0, 0)
        def forward(self, x): return F.one_hot(x[:, 0, 0, 0].long(), 10).float()
    x[:, 0, 0, 0] = y.float()
    assert asr(TrueLabel(), x, y, patch_trigger((1, 8, 8)), m, 0) == 0.0
    assert abs(asr(TrueLabel(), x, y, patch_trigger((1, 8, 8)), m, 0, include_target=True) - 0.1) < 1e-6

def test_anomaly_index():
    idx = anomaly_index(torch.tensor([1., 10., 11., 9., 10., 12., 8.]))
    assert int(idx.argmax()) == 0 and idx[0] > 2

@pytest.fixture(scope="module")
def planted():
    "A toy ConvNet on 8x8 digits with a planted BadNets backdoor (10 % poisoned, target 0)."
    from visionlab_nb.core.data import load_tensors
    torch.manual_seed(0)
    xtr, ytr = load_tensors("digits", True); xte, yte = load_tensors("digits", False)
    st = Standardizer.fit(xtr); xtr, xte = st(xtr), st(xte)
    mask, pat = trigger_mask((1, 8, 8), 2), patch_trigger((1, 8, 8), 1.0, st)
    xp, yp = poison(xtr, ytr, poison_indices(len(ytr), 0.1, 0), pat, mask, 0)
    net = ConvNet(num_classes=10, in_chans=1, img_size=8, width=32, depth=2, hidden=64)
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    for _ in range(15):
        for i in torch.randperm(len(yp)).split(64):
            opt.zero_grad(); F.cross_entropy(net(xp[i]), yp[i]).backward(); opt.step()
    return net.eval(), st, mask, pat, (xte[:200], yte[:200]), (xte[200:], yte[200:])

def test_defenses_find_planted_trigger(planted):
    net, st, mask, pat, (xd, yd), (xe, ye) = planted
    base = asr(net, xe, ye, pat, mask, 0)
    assert base > 0.9
    lo, hi = st(torch.zeros(1, 1, 1)).flatten(), st(torch.ones(1, 1, 1)).flatten()
    nc = neural_cleanse(net, xd, 10, lo, hi, steps=100)
    assert nc.suspect == 0 and 0 in nc.flagged
    sm = strip_metrics(fit_strip(net, xd, 0.05, std=st), xe, ye, pat, mask, 0)
    assert sm["detected"] > 0.5
    fp = fine_prune(net, xd, yd)
    assert asr(fp.net, xe, ye, pat, mask, 0) < base - 0.1

def test_claims_decide_all_outcomes():
    for c in CLAIMS: check_decide(c)

def test_paper_profile_needs_real_data():
    from visionlab_nb.doorping.experiment import load_data
    with pytest.raises(FileNotFoundError, match="data_root"):
        load_data(PROFILES["paper"].dataset, "")
