"The real-dataset loaders, on small files written in each dataset's published on-disk format."
import gzip, pickle, struct
from pathlib import Path
import numpy as np
import pytest, torch
from visionlab_nb.core.data import load_tensors, load_dataset, DATASETS

RNG = np.random.default_rng(0)

def _cifar(root, n=20, hundred=False):
    "CIFAR-10/100 python pickles: data uint8 [N, 3072] (RGB planes), labels, plus the meta file."
    d = Path(root) / ("cifar-100-python" if hundred else "cifar-10-batches-py"); d.mkdir(parents=True)
    key, k = ("fine_labels", 100) if hundred else ("labels", 10)
    names = ["train", "test"] if hundred else [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        with open(d / name, "wb") as f:
            pickle.dump({"data": RNG.integers(0, 256, (n, 3072), dtype=np.uint8), key: RNG.integers(0, k, n).tolist()}, f)
    meta, mkey = ("meta", "fine_label_names") if hundred else ("batches.meta", "label_names")
    with open(d / meta, "wb") as f: pickle.dump({mkey: [f"c{i}" for i in range(k)]}, f)

def _stl10(root, n=6):
    "STL-10 binaries: uint8 images [N, 3, 96, 96] stored column-major, labels 1..10."
    d = Path(root) / "stl10_binary"; d.mkdir(parents=True)
    for split in ("train", "test"):
        (d / f"{split}_X.bin").write_bytes(RNG.integers(0, 256, n * 3 * 96 * 96, dtype=np.uint8).tobytes())
        (d / f"{split}_y.bin").write_bytes(RNG.integers(1, 11, n, dtype=np.uint8).tobytes())
    (d / "class_names.txt").write_text("\n".join(f"c{i}" for i in range(10)))

def _svhn(root, n=7):
    "SVHN .mat files: X [32, 32, 3, N] uint8, y [N, 1] with 10 for the digit 0."
    from scipy.io import savemat
    Path(root).mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        savemat(Path(root) / f"{split}_32x32.mat", {"X": RNG.integers(0, 256, (32, 32, 3, n), dtype=np.uint8),
                                                    "y": np.array([[10]] + [[i % 9 + 1] for i in range(n - 1)], dtype=np.uint8)})

def _idx(path, arr):
    "An IDX file (MNIST's format): magic, dims, big-endian, then the uint8 data."
    arr = np.asarray(arr, dtype=np.uint8)
    path.write_bytes(struct.pack(">HBB", 0, 0x08, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes())

def _mnist(root, folder, n=9):
    d = Path(root) / folder / "raw"; d.mkdir(parents=True)
    for split, m in (("train", n), ("t10k", n - 2)):
        _idx(d / f"{split}-images-idx3-ubyte", RNG.integers(0, 256, (m, 28, 28)))
        _idx(d / f"{split}-labels-idx1-ubyte", RNG.integers(0, 10, m))

WRITERS = {"cifar10": (_cifar, 20 * 5, 20), "cifar100": (lambda r: _cifar(r, hundred=True), 20, 20),
           "stl10": (_stl10, 6, 6), "svhn": (_svhn, 7, 7),
           "mnist": (lambda r: _mnist(r, "MNIST"), 9, 7), "fashion_mnist": (lambda r: _mnist(r, "FashionMNIST"), 9, 7)}

@pytest.mark.parametrize("name", list(WRITERS))
def test_real_loader_reads_the_on_disk_format(tmp_path, name):
    write, n_train, n_test = WRITERS[name]
    write(tmp_path)
    info = DATASETS[name]
    x, y = load_tensors(name, train=True, data_root=str(tmp_path))
    assert x.shape == (n_train, *info.shape) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    assert y.shape == (n_train,) and y.dtype == torch.int64 and 0 <= y.min() and y.max() < info.num_classes
    xt, yt = load_tensors(name, train=False, data_root=str(tmp_path))
    assert xt.shape == (n_test, *info.shape)
    ds = load_dataset(name, train=False, data_root=str(tmp_path))
    assert len(ds) == n_test
    if name == "svhn": assert yt[0] == 0                       # label 10 means the digit 0

def test_real_images_match_the_files(tmp_path):
    _cifar(tmp_path)
    raw = pickle.load(open(tmp_path / "cifar-10-batches-py" / "test_batch", "rb"))
    x, y = load_tensors("cifar10", train=False, data_root=str(tmp_path))
    assert torch.equal((x[0] * 255).round().to(torch.uint8).flatten(), torch.from_numpy(raw["data"][0]))  # CHW planes
    assert y.tolist() == raw["labels"]

def test_missing_dataset_says_where(tmp_path):
    with pytest.raises(FileNotFoundError, match="download=True"): load_tensors("cifar10", data_root=str(tmp_path))
    with pytest.raises(ValueError, match="valid: shapes, digits"): load_tensors("imagenet")
