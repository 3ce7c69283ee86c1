"""Tests of the TinyMIM series: relations, the KL direction, the truncated-teacher zero, head matching, timm equivalence."""
import copy
import pytest
import timm
import torch
import torch.nn.functional as F
from timm.models.vision_transformer import Block

from visionlab_nb.tinymim.vit import plain_vit, tokens_before
from visionlab_nb.tinymim.targets import block_relations, relation_kl, relation_loss, DistillLoss, TARGETS
from visionlab_nb.tinymim.train import distill


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _x(b=3, size=16):
    return torch.randn(b, 3, size, size)


@pytest.mark.parametrize("heads,last_heads", [(2, None), (2, 4), (4, 8)])
def test_relations_are_row_stochastic_bxhxNxN(heads, last_heads):
    m = plain_vit(dim=64, depth=3, heads=heads, last_heads=last_heads).eval()
    x = _x()
    h = last_heads or heads
    for block in (1, 3):
        r_qk, r_vv = block_relations(m, x, block)
        hb = h if block == 3 else heads
        assert r_qk.shape == r_vv.shape == (3, hb, 17, 17)                        # B x h x N x N, N = 16 patches + CLS
        for r in (r_qk, r_vv):
            assert (r >= 0).all()
            torch.testing.assert_close(r.sum(-1), torch.ones(3, hb, 17))


def test_qk_relation_is_timms_attention_map():
    m = plain_vit(dim=64, depth=3, heads=2, last_heads=4).eval()
    x = _x()
    blk = m.blocks[2]
    blk.attn.fused_attn = False                                                   # timm's explicit path keeps the map
    seen = []
    h = blk.attn.attn_drop.register_forward_hook(lambda mod, inp, out: seen.append(out))
    blk(tokens_before(m, x, 3))
    h.remove()
    torch.testing.assert_close(block_relations(m, x, 3)[0], seen[0])


def test_kl_direction_is_teacher_to_student():
    t = torch.softmax(torch.randn(2, 4, 17, 17) * 2, -1)
    s = torch.softmax(torch.randn(2, 4, 17, 17) * 2, -1)
    by_hand = (t * (t.log() - s.log())).sum(-1).mean()                           # KL(T||S) per query row, averaged
    torch.testing.assert_close(relation_kl(t, s), by_hand, rtol=1e-5, atol=1e-6)
    official = F.kl_div(s.log(), t, reduction="none").sum(-1).mean()              # KLDivLoss(log S, T) as the official code
    torch.testing.assert_close(relation_kl(t, s), official, rtol=1e-5, atol=1e-6)
    assert abs(relation_kl(t, s) - relation_kl(s, t)) > 1e-3                     # swapping the arguments changes the loss
    # the student's gradient is the one of KL(T||S): d/d logits_S = softmax(S) - T
    logits = torch.randn(2, 4, 17, 17, requires_grad=True)
    relation_kl(t, logits.softmax(-1)).backward()
    n_rows = 2 * 4 * 17
    torch.testing.assert_close(logits.grad * n_rows, logits.softmax(-1).detach() - t, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("block", [2, 3, 4])
def test_loss_is_zero_for_the_teacher_truncated_at_the_target_block(block):
    teacher = plain_vit(dim=64, depth=4, heads=4).eval()
    student = copy.deepcopy(teacher)
    student.blocks = student.blocks[:block]
    x = _x()
    crit = DistillLoss(student, teacher, "relation", teacher_block=block)
    assert crit(x).abs().item() < 1e-6
    with torch.no_grad(): student.blocks[-1].attn.qkv.weight.add_(0.3 * torch.randn_like(student.blocks[-1].attn.qkv.weight))
    assert crit(x).item() > 1e-3                                                  # and positive once the student differs


def test_head_matching_makes_shapes_agree():
    teacher = plain_vit(dim=64, depth=4, heads=4).eval()
    student = plain_vit(dim=32, depth=2, heads=2).eval()
    x = _x()
    with pytest.raises(RuntimeError):                                             # 2 student heads vs 4 teacher heads
        relation_loss(block_relations(teacher, x, 3), block_relations(student, x, 2))
    matched = plain_vit(dim=32, depth=2, heads=2, last_heads=4)
    assert [b.attn.num_heads for b in matched.blocks] == [2, 4]
    assert block_relations(matched, x, 2)[0].shape == block_relations(teacher, x, 3)[0].shape == (3, 4, 17, 17)
    assert sum(p.numel() for p in matched.parameters()) == sum(p.numel() for p in student.parameters())   # heads are free
    loss = DistillLoss(matched, teacher, "relation", teacher_block=3)(x)
    loss.backward()
    assert matched.blocks[-1].mlp.fc1.weight.grad is None                         # the relation stops at the last attention
    assert matched.blocks[0].attn.qkv.weight.grad.abs().sum() > 0


def test_our_vit_gives_timms_outputs_with_the_same_weights():
    ours = plain_vit(img_size=16, patch=4, dim=64, depth=3, heads=2, num_classes=10).eval()
    ref = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=16, patch_size=4, embed_dim=64, depth=3,
                            num_heads=2, num_classes=10, global_pool="avg", fc_norm=True).eval()
    ref.load_state_dict(ours.state_dict())
    x = _x()
    torch.testing.assert_close(ours(x), ref(x))
    torch.testing.assert_close(ours.forward_features(x), ref.forward_features(x))
    # a last block split into more heads is timm's own Block built with that head count
    wide = plain_vit(img_size=16, patch=4, dim=64, depth=2, heads=2, last_heads=8).eval()
    native = Block(64, 8, qkv_bias=True).eval()
    native.load_state_dict(wide.blocks[-1].state_dict())
    t = tokens_before(wide, x, 2)
    torch.testing.assert_close(wide.blocks[-1](t), native(t))


def test_registered_small_vit_matches_timms_vit_s16():
    ours = timm.create_model("vl_tinymim_vit_small", last_heads=6).eval()          # 6 heads everywhere, as timm's ViT-S
    ref = timm.create_model("vit_small_patch16_224", global_pool="avg", fc_norm=True).eval()
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad(): torch.testing.assert_close(ours(x), ref(x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("target", TARGETS)
def test_precomputed_teacher_targets_give_the_same_training(target):
    teacher = plain_vit(dim=32, depth=3, heads=2).eval()
    s0 = plain_vit(dim=16, depth=2, heads=1, last_heads=2)
    x = torch.rand(48, 3, 16, 16)
    a = distill(copy.deepcopy(s0), teacher, x, target, 2, epochs=1, batch=16, max_steps=3)[1]
    b = distill(copy.deepcopy(s0), teacher, x, target, 2, epochs=1, batch=16, max_steps=3, cache_limit_gb=0)[1]
    assert a == pytest.approx(b, rel=1e-5)


def test_cached_teacher_depends_on_its_seed_only(tmp_path, monkeypatch):
    from visionlab_nb.tinymim.train import cached_teacher
    cfg = dict(img_size=16, patch=4, dim=32, depth=2, heads=2)
    x = torch.rand(32, 3, 16, 16)
    monkeypatch.setenv("VISIONLAB_CACHE", str(tmp_path / "a"))
    torch.manual_seed(1)
    a = cached_teacher(cfg, x, 1, 1e-3, seed=0, max_steps=2)[0]
    monkeypatch.setenv("VISIONLAB_CACHE", str(tmp_path / "b"))
    torch.manual_seed(2)                                                          # another process state, another cache
    b = cached_teacher(cfg, x, 1, 1e-3, seed=0, max_steps=2)[0]
    for (n, p), q in zip(a.state_dict().items(), b.state_dict().values()): torch.testing.assert_close(p, q, msg=n)
