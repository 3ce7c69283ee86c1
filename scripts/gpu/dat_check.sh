#!/usr/bin/env bash
# GPU check of the DAT series (< 3 minutes on one H100): nccl sanity, PGD-10 DAT training-step throughput of PreActResNet-18
# at batch 256, and a short 2-worker torchrun job on the GPU(s) with exact all-reduce and with the QSGD quantizer.
# Run from the repository root:  bash scripts/gpu/dat_check.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
OUT="${OUT:-/tmp/dat_gpu_check}"; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true

echo "== 1. nccl: one-process group, all_reduce"
python - <<'PY'
import os, torch, torch.distributed as dist
os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT="29561")
dist.init_process_group("nccl", rank=0, world_size=1)
t = torch.arange(4.0, device="cuda"); dist.all_reduce(t); torch.cuda.synchronize()
print("nccl all_reduce ok:", t.tolist(), "| nccl version", torch.cuda.nccl.version())
dist.destroy_process_group()
PY

echo "== 2. PGD-10 DAT training step, PreActResNet-18, batch 256, fp32"
python - <<'PY'
import time, torch
from visionlab_nb.dat.models import PreActResNet18
from visionlab_nb.dat.objectives import make_objective, objective_step
from visionlab_nb.dat.lamb import Lamb
torch.backends.cudnn.benchmark = True
m = PreActResNet18().cuda(); opt = Lamb(m.parameters(), lr=0.01, weight_decay=1e-4)
obj = make_objective("dat-pgd", eps=8/255, step_size=2/255, steps=10)
x = torch.rand(256, 3, 32, 32, device="cuda"); y = torch.randint(0, 10, (256,), device="cuda")
for _ in range(3): objective_step(m, obj, x, y, opt)
torch.cuda.synchronize(); t = time.perf_counter(); n = 10
for _ in range(n): objective_step(m, obj, x, y, opt)
torch.cuda.synchronize(); dt = (time.perf_counter() - t) / n
print(f"PGD-10 DAT step: {dt*1000:.1f} ms/step, {256/dt:,.0f} images/s on {torch.cuda.get_device_name()}")
PY

echo "== 3. torchrun, 2 workers on the GPU(s): exact all-reduce, QSGD, DDP PowerSGD: 8 steps of PreActResNet-18 (random CIFAR-shaped data)"
python - <<PY
import torch, json
from visionlab_nb.dat.distributed import TrainConfig, save_data_file, launch_local
g = torch.Generator().manual_seed(0)
x = torch.rand(4096, 3, 32, 32, generator=g); y = torch.randint(0, 10, (4096,), generator=g)
f = save_data_file("$OUT/data.pt", x, y, x[:512], y[:512], as_uint8=True)
base = dict(data_file=f, model="preact_resnet18", objective="dat-pgd", eps=8/255, step_size=2/255, attack_steps=10,
            batch_size=512, epochs=1, max_steps=8, device="cuda", eval_steps=10, augment=True, checkpoint_every=1)
# PowerSGD's DDP hook over gloo with CUDA tensors (2 workers sharing one GPU) failed on an H200 (gloo "connection reset"):
# it runs only where each worker has its own GPU (nccl).
schemes = ("allreduce", "qsgd") + (("ddp-powersgd",) if torch.cuda.device_count() >= 2 else ())
runs = [TrainConfig(name=s, out_dir=f"$OUT/{s}", scheme=s, **base) for s in schemes]
for r in launch_local(runs, nproc=2, run_dir="$OUT/job", timeout=400):
    print(f"{r['name']:13s} device {r['device']}: {r['time_per_epoch_s']:.2f} s for {r['steps']} steps of global batch 512 "
          f"({r['steps']*512/r['time_per_epoch_s']:,.0f} img/s), payload {r['payload_bytes_per_step']:,.0f} B/step/worker, "
          f"ranks identical {r['ranks_identical']}, clean {r['clean_acc']:.3f} robust {r['robust_acc']:.3f}")
PY
grep -iE "nccl|gloo|backend" "$OUT/job/torchrun.log" | head -5 || true
echo "dat_check done"
