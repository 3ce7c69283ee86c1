"CMT's own science: the nuScenes metric against a brute-force reference and nuscenes-devkit, geometry, masking, rendering."
import math
import numpy as np
import pytest
import torch

from visionlab_nb.cmt.metric import detection_metrics, accumulate, calc_ap, calc_tp, TP_METRICS
from visionlab_nb.cmt.scenes import SceneConfig, make_cameras, make_scene, project, box_pixel_check
from visionlab_nb.cmt.model import CMTConfig, depth_bins, ray_points, modal_mask

CLASSES = ("car", "truck", "bus")

def random_case(seed, n=25, K=3, fp=2):
    "Random ground truth, and predictions = jittered ground truth (some dropped) plus false positives."
    rng = np.random.default_rng(seed)
    gts, preds = [], []
    for _ in range(n):
        m = int(rng.integers(0, 5))
        b = np.concatenate([rng.uniform(-15, 15, (m, 2)), rng.uniform(-1, 0, (m, 1)), rng.uniform(0.5, 5, (m, 3)),
                            rng.uniform(-np.pi, np.pi, (m, 1)), rng.normal(0, 3, (m, 2))], 1)
        lab, att = rng.integers(0, K, m), rng.integers(-1, 2, m)
        gts.append(dict(boxes=b, labels=lab, attrs=att))
        keep = rng.random(m) < 0.8
        pb = b[keep].copy(); k = len(pb)
        pb[:, :2] += rng.normal(0, 1.0, (k, 2)); pb[:, 3:6] *= rng.uniform(0.7, 1.3, (k, 3)); pb[:, 6] += rng.normal(0, 0.5, k)
        pb[:, 7:9] += rng.normal(0, 1, (k, 2))
        plab = np.where(rng.random(k) < 0.85, lab[keep], rng.integers(0, K, k))
        f = np.concatenate([rng.uniform(-15, 15, (fp, 2)), rng.uniform(-1, 0, (fp, 1)), rng.uniform(0.5, 5, (fp, 3)),
                            rng.uniform(-np.pi, np.pi, (fp, 1)), rng.normal(0, 3, (fp, 2))], 1)
        preds.append(dict(boxes=np.concatenate([pb, f]), labels=np.concatenate([plab, rng.integers(0, K, fp)]),
                          scores=rng.random(k + fp), attrs=rng.integers(0, 2, k + fp)))
    return gts, preds

# --- brute-force reference: the nuScenes definitions written out with loops, no shared code ---
def _interp(x, xp, fp, right):
    "np.interp(x, xp, fp, right=right) for increasing xp, as an explicit loop."
    out = []
    for v in x:
        if v < xp[0]: out.append(fp[0]); continue
        if v > xp[-1]: out.append(right); continue
        for k in range(len(xp) - 1, -1, -1):                       # the last k with xp[k] <= v (np.interp's rule)
            if xp[k] <= v: break
        if k == len(xp) - 1 or xp[k] == v: out.append(fp[k]); continue
        t = (v - xp[k]) / (xp[k + 1] - xp[k]); out.append(fp[k] + t * (fp[k + 1] - fp[k]))
    return np.array(out, float)

def brute_force(gts, preds, K, ths=(0.5, 1, 2, 4)):
    aps, tps = [], {k: [] for k in ("ate", "ase", "aoe", "ave", "aae")}
    for c in range(K):
        npos = sum(int(np.sum(g["labels"] == c)) for g in gts)
        per_th = {}
        for th in ths:
            cand = sorted([(p["scores"][j], i, j) for i, p in enumerate(preds) for j in range(len(p["labels"])) if p["labels"][j] == c],
                          key=lambda t: -t[0])
            used, flags, errs = set(), [], []
            for s, i, j in cand:
                best, bi = math.inf, -1
                for gi in range(len(gts[i]["labels"])):
                    if gts[i]["labels"][gi] != c or (i, gi) in used: continue
                    d = math.dist(gts[i]["boxes"][gi][:2], preds[i]["boxes"][j][:2])
                    if d < best: best, bi = d, gi
                if best < th:
                    used.add((i, bi)); flags.append(1); g, p = gts[i]["boxes"][bi], preds[i]["boxes"][j]
                    inter = np.prod([min(a, b) for a, b in zip(g[3:6], p[3:6])])
                    yd = abs((g[6] - p[6] + math.pi) % (2 * math.pi) - math.pi)
                    ga = gts[i]["attrs"][bi]
                    errs.append((s, best, 1 - inter / (np.prod(g[3:6]) + np.prod(p[3:6]) - inter), yd,
                                 math.dist(g[7:9], p[7:9]), math.nan if ga < 0 else float(ga != preds[i]["attrs"][j])))
                else: flags.append(0)
            if npos == 0 or not errs:
                per_th[th] = (0.0, None); continue
            tp = np.cumsum(flags); prec = tp / np.arange(1, len(flags) + 1); rec = tp / npos
            r = np.linspace(0, 1, 101)
            P = _interp(r, rec, prec, 0.0); C = _interp(r, rec, [t[0] for t in cand], 0.0)
            ap = sum(max(0.0, P[k] - 0.1) for k in range(11, 101)) / 90 / 0.9
            per_th[th] = (ap, (C, errs))
        aps.append(np.mean([v[0] for v in per_th.values()]))
        _, data = per_th[2]
        for n, col in zip(tps, range(1, 6)):
            if data is None: tps[n].append(1.0); continue
            C, errs = data
            e = np.array([t[col] for t in errs], float)
            if np.isnan(e).all(): run = np.ones(len(e))
            else: run = np.array([np.nanmean(e[:k + 1]) if (~np.isnan(e[:k + 1])).any() else 0.0 for k in range(len(e))])
            conf = [t[0] for t in errs]
            curve = _interp(C[::-1], conf[::-1], run[::-1], run[0])[::-1]
            last = max([k for k in range(101) if C[k] != 0], default=0)
            tps[n].append(1.0 if last < 11 else float(np.mean(curve[11:last + 1])))
    mtp = {n: float(np.nanmean(v)) for n, v in tps.items()}
    mAP = float(np.mean(aps))
    return dict(mAP=mAP, **mtp, NDS=(5 * mAP + sum(1 - min(1, v) for v in mtp.values())) / 10)

@pytest.mark.parametrize("seed", range(6))
def test_metric_matches_brute_force(seed):
    gts, preds = random_case(seed)
    ours, ref = detection_metrics(gts, preds, CLASSES), brute_force(gts, preds, 3)
    for a, b in (("mAP", "mAP"), ("mATE", "ate"), ("mASE", "ase"), ("mAOE", "aoe"), ("mAVE", "ave"), ("mAAE", "aae"), ("NDS", "NDS")):
        assert ours[a] == pytest.approx(ref[b], abs=1e-9), a
    assert 0.05 < ours["mAP"] < 0.95                                 # a non-trivial case

def test_perfect_predictions_score_one():
    gts, _ = random_case(11)
    perfect = [dict(boxes=g["boxes"].copy(), labels=g["labels"].copy(), scores=np.linspace(1, 0.5, len(g["labels"])),
                    attrs=np.maximum(g["attrs"], 0)) for g in gts]
    r = detection_metrics(gts, perfect, CLASSES)
    assert r["mAP"] == pytest.approx(1.0) and r["NDS"] == pytest.approx(1.0)

def _evalboxes(items, is_gt):
    from nuscenes.eval.common.data_classes import EvalBoxes
    from nuscenes.eval.detection.data_classes import DetectionBox
    eb = EvalBoxes()
    for i, it in enumerate(items):
        boxes = []
        for j in range(len(it["labels"])):
            b = it["boxes"][j]; a = int(it["attrs"][j])
            boxes.append(DetectionBox(sample_token=f"s{i}", translation=tuple(b[:3]), size=tuple(b[3:6]),
                                      rotation=(math.cos(b[6] / 2), 0.0, 0.0, math.sin(b[6] / 2)), velocity=tuple(b[7:9]),
                                      detection_name=CLASSES[it["labels"][j]],
                                      detection_score=-1.0 if is_gt else float(it["scores"][j]),
                                      attribute_name="" if a < 0 else ("vehicle.moving", "vehicle.stopped")[a]))
        eb.add_boxes(f"s{i}", boxes)
    return eb

@pytest.mark.parametrize("seed", range(3))
def test_metric_matches_nuscenes_devkit(seed):
    pytest.importorskip("nuscenes")
    from nuscenes.eval.detection.algo import accumulate as nu_acc, calc_ap as nu_ap, calc_tp as nu_tp
    from nuscenes.eval.common.utils import center_distance
    gts, preds = random_case(100 + seed)
    G, Pd = _evalboxes(gts, True), _evalboxes(preds, False)
    for c, name in enumerate(CLASSES):
        for th in (0.5, 1.0, 2.0, 4.0):
            md_nu, md = nu_acc(G, Pd, name, center_distance, th), accumulate(gts, preds, c, th)
            np.testing.assert_allclose(md["precision"], md_nu.precision, atol=1e-9)
            np.testing.assert_allclose(md["confidence"], md_nu.confidence, atol=1e-9)
            assert calc_ap(md) == pytest.approx(nu_ap(md_nu, 0.1, 0.1), abs=1e-9)
            for k in TP_METRICS:
                np.testing.assert_allclose(md[k], getattr(md_nu, k), atol=1e-6, err_msg=f"{name} {th} {k}")
                assert calc_tp(md, k) == pytest.approx(nu_tp(md_nu, 0.1, k), abs=1e-6)

def test_nds_matches_nuscenes_devkit():
    pytest.importorskip("nuscenes")
    from nuscenes.eval.detection.algo import accumulate as nu_acc, calc_ap as nu_ap, calc_tp as nu_tp
    from nuscenes.eval.detection.data_classes import DetectionConfig, DetectionMetrics
    from nuscenes.eval.detection.constants import DETECTION_NAMES
    from nuscenes.eval.common.utils import center_distance
    gts, preds = random_case(7, n=40)
    G, Pd = _evalboxes(gts, True), _evalboxes(preds, False)
    names = CLASSES + tuple(n for n in DETECTION_NAMES if n not in CLASSES)   # all ten; only the first three occur
    cfg = DetectionConfig(class_range={c: 50 for c in names}, dist_fcn="center_distance", dist_ths=[0.5, 1.0, 2.0, 4.0],
                          dist_th_tp=2.0, min_recall=0.1, min_precision=0.1, max_boxes_per_sample=500, mean_ap_weight=5)
    dm = DetectionMetrics(cfg)
    for name in names:
        for th in cfg.dist_ths: dm.add_label_ap(name, th, nu_ap(nu_acc(G, Pd, name, center_distance, th), 0.1, 0.1))
        md = nu_acc(G, Pd, name, center_distance, 2.0)
        for k in TP_METRICS:   # the exclusions of DetectionEval.evaluate
            skip = (name == "traffic_cone" and k in ("attr_err", "vel_err", "orient_err")) or (name == "barrier" and k in ("attr_err", "vel_err"))
            dm.add_label_tp(name, k, np.nan if skip else nu_tp(md, 0.1, k))
    ours = detection_metrics(gts, preds, names)
    assert ours["mAP"] == pytest.approx(dm.mean_ap, abs=1e-9)
    for k, n in (("trans_err", "mATE"), ("scale_err", "mASE"), ("orient_err", "mAOE"), ("vel_err", "mAVE"), ("attr_err", "mAAE")):
        assert ours[n] == pytest.approx(dm.tp_errors[k], abs=1e-9), n
    assert ours["NDS"] == pytest.approx(dm.nd_score, abs=1e-9)

def test_true_depth_backprojects_within_one_bin():
    cfg = CMTConfig(); cams = make_cameras(SceneConfig())
    bins = depth_bins(cfg).double(); step = float(bins[1] - bins[0])
    rng = np.random.default_rng(0)
    for _ in range(50):
        c = int(rng.integers(4)); a = 2 * np.pi * c / 4 + rng.uniform(-0.6, 0.6)
        x = np.array([np.cos(a), np.sin(a), 0]) * rng.uniform(2, 20) + np.array([0, 0, rng.uniform(-1.4, 1)])
        uv, d = project(x[None], cams["lidar2img"][c])
        inv = torch.linalg.inv(torch.tensor(cams["lidar2img"][c], dtype=torch.float64))
        uvt = torch.tensor(uv[0])
        assert torch.allclose(ray_points(uvt, inv, torch.tensor([d[0]]))[0], torch.tensor(x), atol=1e-8)
        pk = ray_points(uvt, inv, bins)
        unit = float((ray_points(uvt, inv, torch.tensor([d[0] + 1.0]))[0] - torch.tensor(x)).norm())
        k = int((bins - d[0]).abs().argmin())
        assert float((pk[k] - torch.tensor(x)).norm()) <= step * unit + 1e-9

def test_masked_modal_frequencies():
    ki, kp = modal_mask(400_000, torch.Generator().manual_seed(1))
    assert float((~ki).float().mean()) == pytest.approx(0.25, abs=0.003)
    assert float((~kp).float().mean()) == pytest.approx(0.25, abs=0.003)
    assert float((ki & kp).float().mean()) == pytest.approx(0.5, abs=0.003)
    assert not bool((~ki & ~kp).any())

def test_rendered_box_projects_where_geometry_says():
    cfg = SceneConfig(); cams = make_cameras(cfg)
    checks = sum((box_pixel_check(make_scene(3, i), cams) for i in range(15)), [])
    assert len(checks) >= 10 and all(checks)


def test_runs_in_forked_processes_equal_in_process(tmp_path, monkeypatch):
    "Every arm's tuning and test runs spread over two forked processes give the same lrs and metrics as in this process."
    monkeypatch.setenv("VISIONLAB_THREADS", "2")     # two cores for this run, whatever the test worker has: pmap starts two processes
    from visionlab_nb.core.series import Run
    from visionlab_nb.cmt.experiment import load_data, run_arms
    from visionlab_nb.cmt.overview import PROFILES
    metrics = []
    for workers in (1, 2):
        run = Run("cmt", PROFILES, "smoke", {"lr_grid": "0.002,0.004", "workers": workers, "steps": 2}, out_dir=tmp_path / str(workers))
        tuned, _ = run_arms(run, run.P, load_data(run.P))
        metrics.append((run.metrics, {a: t.best for a, t in tuned.items()}))
    assert metrics[0][0] and metrics[0] == metrics[1]
