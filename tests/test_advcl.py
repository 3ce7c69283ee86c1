"""Science tests of the AdvCL series (views, multi-view NT-Xent, pseudo heads, multi-BN, adversarial views, finetuning)."""
import torch
import torch.nn.functional as F
from visionlab_nb.advcl.views import split_frequencies, high_frequency, freq_mask, four_views
from visionlab_nb.advcl.losses import (positive_mask, multiview_ntxent, PseudoHeads, pseudo_ce, ToyEncoder,
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


def test_adversarial_views_in_eps_ball_and_range():
    from visionlab_nb.advcl.pretrain import adversarial_views
    torch.manual_seed(0)
    net = ContrastiveNet(ToyEncoder(width=4, feat_dim=16), proj_dim=8, ks=(2, 10))
    xo = torch.rand(4, 3, 32, 32)
    xo[0] = 0.0; xo[1] = 1.0                       # images at the range's edges
    pseudo = torch.stack([torch.randint(0, 2, (4,)), torch.randint(0, 10, (4,))], 1)
    with torch.no_grad(): clean_z = [net(xo, "normal")[0]]
    eps = 8 / 255
    x_cl, x_ce = adversarial_views(net, xo, clean_z, pseudo, eps=eps, steps=3, generator=torch.Generator().manual_seed(0))
    for xa in (x_cl, x_ce):
        assert xa.shape == xo.shape
        assert (xa - xo).abs().max() <= eps + 1e-6
        assert xa.min() >= 0 and xa.max() <= 1
    assert not torch.allclose(x_cl, x_ce)
    x_only, none = adversarial_views(net, xo, clean_z, None, eps=eps, steps=2)
    assert none is None and (x_only - xo).abs().max() <= eps + 1e-6


def test_kmeans_pseudo_labels():
    from visionlab_nb.advcl.pretrain import kmeans_pseudo_labels
    g = torch.Generator().manual_seed(0)
    feats = (torch.randn(3, 8, generator=g) * 5).repeat_interleave(10, 0) + 0.05 * torch.randn(30, 8, generator=g)
    pl = kmeans_pseudo_labels(feats, (2, 3, 5))
    assert pl.shape == (30, 3) and pl.dtype == torch.long
    for j, k in enumerate((2, 3, 5)): assert pl[:, j].min() >= 0 and pl[:, j].max() < k and pl[:, j].unique().numel() == k
    assert all(pl[i * 10:(i + 1) * 10, 1].unique().numel() == 1 for i in range(3))


def test_finetune_schemes_and_evaluation():
    from visionlab_nb.advcl.finetune import finetune, evaluate, trades_adv, trades_loss, Classifier
    torch.manual_seed(0)
    enc = ToyEncoder(width=4, feat_dim=16)
    x, y = torch.rand(24, 3, 32, 32), torch.randint(0, 3, (24,))
    w0, rm0 = enc.conv1.weight.clone(), enc.bn1.bns["pgd"].running_mean.clone()
    for scheme in ("SLF", "ALF", "AFF"):
        m, hist = finetune(enc, x, y, scheme, n_classes=3, epochs=3, batch_size=12, attack_steps=2, lr=0.05, max_steps=3)
        assert hist == []
        assert torch.equal(m.encoder.conv1.weight, w0) == (scheme != "AFF")
        assert torch.equal(m.encoder.bn1.bns["pgd"].running_mean, rm0) == (scheme != "AFF")   # frozen encoder in eval mode
    assert torch.equal(enc.conv1.weight, w0)
    clf = Classifier(enc, 3)
    xa = trades_adv(clf, x, steps=2)
    assert (xa - x).abs().max() <= 8 / 255 + 1e-6 and xa.min() >= 0 and xa.max() <= 1
    assert torch.isfinite(trades_loss(clf, x, xa, y))
    r = evaluate(m, x, y, pgd_steps=3, n_classes=3)
    assert set(r) == {"clean", "pgd", "apgd_ce"} and r["pgd"] <= r["clean"] and r["apgd_ce"] <= r["clean"]


def test_hfc_radius_follows_the_profile(monkeypatch):
    "The profile's hfc_r32 reaches the high-frequency view, scaled with the image side (r = 8 at 32x32 -> 4 at 16x16)."
    import dataclasses
    from visionlab_nb.advcl import pretrain as pre
    from visionlab_nb.advcl.overview import PROFILES
    from visionlab_nb.advcl.experiment import pretrain_arm
    seen = []
    real = pre.high_frequency
    monkeypatch.setattr(pre, "high_frequency", lambda x, r=None: (seen.append(r), real(x, r))[1])
    P = dataclasses.replace(PROFILES["smoke"], size=16, max_steps=1)
    x = torch.rand(32, 3, 16, 16)
    pretrain_arm("advcl-nopseudo", P, x, None, 0)
    pretrain_arm("advcl-nopseudo", dataclasses.replace(P, hfc_r32=4.0), x, None, 0)
    assert seen == [4.0, 2.0]


def test_toy_feature_scale_and_branch_of_simclr():
    "The toy encoder's feature is BN-normalised (order 1), and SimCLR is finetuned through its trained 'normal' branch."
    from visionlab_nb.advcl.experiment import VARIANTS
    enc = ToyEncoder(width=4, feat_dim=16, size=16).train()
    f = enc(torch.rand(64, 3, 16, 16) * 100)
    assert f.mean() < 2 and f.std() < 2
    assert not VARIANTS["simclr"][0] and all(VARIANTS[a][0] for a in ("acl", "advcl", "advcl-nohfc", "advcl-nopseudo"))
