"""Science tests of the AdvCL series (views, multi-view NT-Xent, pseudo heads, multi-BN, adversarial views, finetuning)."""
import os
os.environ.setdefault("OMP_NUM_THREADS", "1")
import torch
import torch.nn.functional as F
import pytest
torch.set_num_threads(1)
from visionlab_nb.advcl.views import split_frequencies, high_frequency, freq_mask, four_views
from visionlab_nb.advcl.losses import (positive_mask, multiview_ntxent, PseudoHeads, pseudo_ce, MultiBN, ToyEncoder,
                                      ContrastiveNet, bn_branch)


def test_high_and_low_pass_sum_to_image():
    x = torch.rand(4, 3, 32, 32)
    low, high = split_frequencies(x)
    assert torch.allclose(low + high, x, atol=1e-5)
    assert torch.allclose(high.mean((-2, -1)), torch.zeros(4, 3), atol=1e-5)
    m = freq_mask(32, 32, 8)
    assert m[16, 16] and m[16, 23] and not m[16, 24] and not m[0, 0]
    x64 = torch.rand(1, 3, 64, 64)
    assert torch.allclose(high_frequency(x64), split_frequencies(x64, 16.0)[1])   # r scales with size
    v = four_views(x)
    assert set(v) == {"t1", "t2", "xo", "xh"} and all(t.shape == x.shape for t in v.values())


def _direct_ntxent(vs, T=0.5, Tb=0.07):
    z = [F.normalize(v, dim=1) for v in vs]
    V, B = len(z), len(z[0])
    tot = 0.0
    for va in range(V):
        for i in range(B):
            a = z[va][i]
            den = sum(torch.exp(a @ z[vb][j] / T) for vb in range(V) for j in range(B) if (vb, j) != (va, i))
            tot += -sum(torch.log(torch.exp(a @ z[vp][i] / T) / den) for vp in range(V) if vp != va) / (V - 1)
    return T / Tb * tot / (V * B)


def test_four_view_ntxent():
    B = 3
    pm = positive_mask(4, B)
    assert (pm.sum(1) == 3).all() and pm.shape == (4 * B, 4 * B)
    for a in range(4 * B):   # positives are exactly the other views of the same image
        assert set(pm[a].nonzero().flatten().tolist()) == {v * B + a % B for v in range(4)} - {a}
    g = torch.Generator().manual_seed(1)
    vs = [torch.randn(B, 5, generator=g) for _ in range(4)]
    assert torch.allclose(multiview_ntxent(vs, 0.5), _direct_ntxent(vs), atol=1e-4)


def test_pseudo_heads_average():
    ph = PseudoHeads(8, (2, 10, 50))
    f, lab = torch.randn(5, 8), torch.stack([torch.randint(0, k, (5,)) for k in (2, 10, 50)], 1)
    lg = ph(f)
    assert torch.allclose(pseudo_ce(lg, lab), torch.stack([F.cross_entropy(l, lab[:, i]) for i, l in enumerate(lg)]).mean())


def test_bn_branches_hold_different_stats():
    torch.manual_seed(0)
    net = ContrastiveNet(ToyEncoder(width=4, feat_dim=16), proj_dim=8, ks=(2,))
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    x = torch.rand(4, 3, 32, 32)
    z1, _ = net(x, "normal"); z2, _ = net(1 - x, "pgd")
    multiview_ntxent([z1, z2]).backward(); opt.step()
    bns = net.encoder.bn1.bns
    assert not torch.allclose(bns["normal"].running_mean, bns["pgd"].running_mean)
    assert not torch.allclose(bns["normal"].weight, bns["pgd"].weight)
    assert torch.equal(bns["pgd_ce"].running_mean, torch.zeros(4))
    with bn_branch(net, "pgd"): assert net.encoder.bn2.branch == "pgd"
    assert net.encoder.bn2.branch == "normal"
