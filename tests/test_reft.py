"RefT's own science: mask pooling by hand, COCO AP against pycocotools and a NumPy count, the K-shot sampler, the COCO files."
import contextlib, io, itertools
import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from visionlab_nb.reft.data import make_set, kshot, to_coco, coco_api, NOVEL, BASE, ALL, shape_of, texture_of
from visionlab_nb.reft.references import mask_pool, class_centers
from visionlab_nb.reft.evaluate import coco_ap, coco_ap_groups, ap_reference
from visionlab_nb.reft.model import hungarian, match_cost
from visionlab_nb.reft.overview import PROFILES

def _rle(m):
    r = mask_utils.encode(np.asfortranarray(m.astype(np.uint8))); return dict(size=r["size"], counts=r["counts"].decode())

def _dets(ds, masks, scores):
    return [dict(image_id=int(i) + 1, category_id=int(c) + 1, score=float(s), segmentation=_rle(m), bbox=list(mask_utils.toBbox(_rle(m))))
            for i, c, m, s in zip(ds.ann_img, ds.ann_cls, masks, scores)]

def test_mask_pooling_by_hand():
    f = torch.arange(2 * 3 * 3, dtype=torch.float32).reshape(1, 2, 3, 3)          # d=2, 3x3
    m = torch.zeros(1, 3, 3); m[0, 0, 0] = 1; m[0, 2, 1] = 1; m[0, 1, 2] = 0.5     # soft mask at the feature resolution
    want = [(f[0, k, 0, 0] + f[0, k, 2, 1] + 0.5 * f[0, k, 1, 2]) / 2.5 for k in range(2)]
    torch.testing.assert_close(mask_pool(f, m)[0], torch.stack(want))
    v = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])                           # three shots of class 1
    c, ok = class_centers(v, torch.tensor([1, 1, 1]), 2)
    torch.testing.assert_close(c[0, 1], torch.tensor([3.0, 4.0])); assert ok[0].tolist() == [False, True]

def test_ap_perfect_and_shifted_equal_pycocotools(tmp_path):
    ds = make_set(15, 48, ALL, seed=11)
    gt = coco_api(ds); cats = [c + 1 for c in range(16)]
    assert coco_ap(gt, _dets(ds, ds.masks, np.ones(len(ds.masks))), cats)["AP"] == pytest.approx(100.0)
    assert coco_ap(gt, _dets(ds, ds.masks, np.ones(len(ds.masks))), cats, "bbox")["AP"] == pytest.approx(100.0)
    scores = np.random.default_rng(1).uniform(0.1, 1, len(ds.masks))
    shifted = np.roll(ds.masks, (1, 2), axis=(1, 2))
    dets = _dets(ds, shifted, scores)
    with contextlib.redirect_stdout(io.StringIO()):                                   # pycocotools on the written files, directly
        cg = COCO(str(to_coco(ds, tmp_path / "instances.json"))); ev = COCOeval(cg, cg.loadRes(dets), "segm")
        ev.evaluate(); ev.accumulate(); ev.summarize()
    ours = coco_ap(gt, dets, cats)["AP"]
    assert 0 < ours < 100 and ours == pytest.approx(100 * ev.stats[0], abs=1e-9)
    gtm = {}
    for i, c, m in zip(ds.ann_img, ds.ann_cls, ds.masks): gtm.setdefault((int(i), int(c)), []).append(m)
    ref = ap_reference(gtm, [(int(i), int(c), float(s), m) for i, c, m, s in zip(ds.ann_img, ds.ann_cls, shifted, scores)])
    assert ours == pytest.approx(100 * ref, abs=1e-6)
    g = coco_ap_groups(gt, dets, dict(n=[c + 1 for c in NOVEL], b=[c + 1 for c in BASE]))
    assert g["n"] == pytest.approx(coco_ap(gt, dets, [c + 1 for c in NOVEL])["AP"]) and g["b"] == pytest.approx(coco_ap(gt, dets, [c + 1 for c in BASE])["AP"])

@pytest.mark.parametrize("k", [1, 5, 10])
def test_kshot_gives_exactly_k(k):
    pool = make_set(250, 48, ALL, seed=5)
    for seed in range(4):
        for classes in (NOVEL, ALL):
            e = kshot(pool, classes, k, seed)
            counts = np.bincount(pool.ann_cls[np.concatenate([a for _, a in e])], minlength=16)
            assert counts[list(classes)].tolist() == [k] * len(classes) and counts.sum() == k * len(classes)
            assert all((pool.ann_img[a] == i).all() and len(set(pool.ann_cls[a])) == 1 for i, a in e)
    assert [i for i, _ in kshot(pool, NOVEL, k, 0)] != [i for i, _ in kshot(pool, NOVEL, k, 1)]

def test_annotations_load_in_pycocotools(tmp_path):
    ds = make_set(30, 48, ALL, seed=2)
    with contextlib.redirect_stdout(io.StringIO()): c = COCO(str(to_coco(ds, tmp_path / "instances.json")))
    assert len(c.getImgIds()) == 30 and len(c.getAnnIds()) == len(ds.ann_cls) and len(c.getCatIds()) == 16
    for a in c.loadAnns(c.getAnnIds()):
        assert (c.annToMask(a) == ds.masks[a["id"] - 1]).all()
        assert a["area"] == ds.masks[a["id"] - 1].sum()

def test_novel_classes_are_confusable():
    for n in NOVEL:
        assert sum(shape_of(b) == shape_of(n) for b in BASE) == 3 and sum(texture_of(b) == texture_of(n) for b in BASE) == 3

def test_hungarian_is_optimal():
    g = torch.Generator().manual_seed(0)
    logits, masks = torch.randn(5, 4, generator=g), torch.randn(5, 30, generator=g)
    labels, t = torch.tensor([0, 2, 1]), (torch.rand(3, 30, generator=g) > 0.5).float()
    c = match_cost(logits, masks, labels, t).numpy()
    qi, ti = hungarian(logits, masks, labels, t)
    best = min(sum(c[q, j] for j, q in enumerate(p)) for p in itertools.permutations(range(5), 3))
    assert c[qi, ti].sum() == pytest.approx(best, abs=1e-5)

def test_paper_loader_on_fake_coco(tmp_path):
    from visionlab_nb.reft.experiment import fake_paper_data, load_data, VOC_NAMES
    with pytest.raises(FileNotFoundError, match="instances_train2017"): load_data(PROFILES["paper"], str(tmp_path / "none"))
    fake_paper_data(tmp_path)
    d = load_data(PROFILES["paper"], str(tmp_path))
    assert sorted(d.test.classes[c] for c in d.novel_cls) == sorted(VOC_NAMES)
    assert set(d.base.ann_cls.tolist()) <= set(d.base_cls)
    e = kshot(d.pool, d.novel_cls, 10, 0)
    assert len(np.concatenate([a for _, a in e])) == 200
