#!/usr/bin/env bash
# GPU check for the EMO series (< 3 minutes on one H100):
#  1. EMO-1M on CUDA gives the same logits as on the CPU (fp32) and the same parameter count, and its deploy form
#     (EMO.fuse(): BN folded, SDPA) gives the eval-mode logits on CUDA too;
#  2. forward and forward+backward time of EMO-1M/2M/5M/6M at 224x224, batch 64 (fp32 and bf16 autocast), against
#     torchvision's MobileNetV2 and MobileNetV3-Large in the same process;
#  3. training-step throughput of the paper-profile model (EMO-1M for 32x32, batch 128, AdamW) and the implied time per
#     CIFAR-10 epoch / for the paper profile's 50 epochs.
# Run from anywhere: bash scripts/gpu/emo_check.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"   # the device has no package index: import from the checkout
python - <<'EOF'
import time, sys
import torch, torch.nn.functional as F
try:
    import timm, torchvision  # noqa: F401
except ImportError as e:
    sys.exit(f"missing dependency: {e} (the EMO modules need timm and torchvision)")
from visionlab_nb.emo.models import emo, EMO, EMO_CONFIGS, small_input, count_params
assert torch.cuda.is_available(), "no CUDA device"
dev = torch.device("cuda")
print("torch", torch.__version__, "timm", timm.__version__, "|", torch.cuda.get_device_name(0), flush=True)
torch.backends.cudnn.benchmark = True

# 1. CPU vs CUDA equivalence (fp32, no TF32)
torch.backends.cuda.matmul.allow_tf32 = False; torch.backends.cudnn.allow_tf32 = False
torch.manual_seed(0)
m = emo("EMO-1M").eval(); x = torch.randn(4, 3, 224, 224)
with torch.no_grad():
    y_cpu = m(x); y_gpu = m.to(dev)(x.to(dev)).cpu()
err = (y_cpu - y_gpu).abs().max().item()
print(f"[1] EMO-1M CPU vs CUDA max |logit diff| = {err:.2e} ({'OK' if err < 1e-3 else 'MISMATCH'}); params {count_params(m)}")
with torch.no_grad():
    y_fused = m.fuse()(x.to(dev)).cpu()
err_f = (y_gpu - y_fused).abs().max().item()
print(f"[1b] EMO-1M fused vs eval on CUDA max |logit diff| = {err_f:.2e} ({'OK' if err_f < 1e-4 else 'MISMATCH'})")
torch.backends.cuda.matmul.allow_tf32 = True; torch.backends.cudnn.allow_tf32 = True

# 2. forward / forward+backward at 224, batch 64
def timeit(fn, warmup=3, iters=10):
    for _ in range(warmup): fn()
    torch.cuda.synchronize(); s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    s.record()
    for _ in range(iters): fn()
    e.record(); torch.cuda.synchronize()
    return s.elapsed_time(e) / iters
models = {n: emo(n) for n in EMO_CONFIGS}
models["MobileNetV2"] = torchvision.models.mobilenet_v2()
models["MobileNetV3-Large"] = torchvision.models.mobilenet_v3_large()
x = torch.randn(64, 3, 224, 224, device=dev); y = torch.randint(0, 1000, (64,), device=dev)
print("[2] batch 64, 224x224, ms per step (fwd = inference, train = fwd+bwd)")
print(f"    {'model':18s} {'fwd fp32':>9s} {'train fp32':>11s} {'fwd bf16':>9s} {'train bf16':>11s}")
for name, m in models.items():
    m = m.to(dev).to(memory_format=torch.channels_last); xc = x.contiguous(memory_format=torch.channels_last)
    row = []
    for amp in (False, True):
        def fwd():
            with torch.no_grad(), torch.autocast("cuda", torch.bfloat16, enabled=amp): m.eval()(xc)
        def train():
            m.train()
            with torch.autocast("cuda", torch.bfloat16, enabled=amp): loss = F.cross_entropy(m(xc), y)
            loss.backward(); m.zero_grad(set_to_none=True)
        row += [timeit(fwd), timeit(train)]
    print(f"    {name:18s} {row[0]:9.1f} {row[1]:11.1f} {row[2]:9.1f} {row[3]:11.1f}", flush=True)
    m.cpu()
    del m; torch.cuda.empty_cache()

# 3. paper-profile training throughput (EMO-1M for 32x32, batch 128, AdamW, bf16 autocast and fp32)
cfg = small_input(EMO_CONFIGS["EMO-1M"], drop_path=0.0)
for amp in (False, True):
    m = EMO(cfg).to(dev).to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(m.parameters(), lr=2e-3, weight_decay=0.05)
    xb = torch.randn(128, 3, 32, 32, device=dev).contiguous(memory_format=torch.channels_last)
    yb = torch.randint(0, 10, (128,), device=dev)
    def step():
        with torch.autocast("cuda", torch.bfloat16, enabled=amp): loss = F.cross_entropy(m(xb), yb, label_smoothing=0.1)
        opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
    ms = timeit(step, warmup=5, iters=50)
    ips = 128 / ms * 1e3
    print(f"[3] EMO-1M/32x32 train step ({'bf16' if amp else 'fp32'}): {ms:.1f} ms/batch of 128 = {ips:.0f} img/s; "
          f"CIFAR-10 epoch ~{50000 / ips:.1f} s, 50 epochs ~{50 * 50000 / ips / 60:.1f} min (x7 arms x seeds in 99_reproduce)", flush=True)
print("done")
EOF
