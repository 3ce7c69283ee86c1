"The real-dataset loaders, on small files written in each dataset's published on-disk format."
import pickle
import pytest, torch
from visionlab_nb.core.data import load_tensors, load_dataset, DATASETS

from visionlab_nb.core.fake_data import write_fake_cifar, write_fake

SIZES = {"cifar10": (20 * 5, 20), "cifar100": (20, 20), "stl10": (6, 6), "svhn": (7, 7), "mnist": (9, 9), "fashion_mnist": (9, 9)}
WRITERS = {k: (lambda root, k=k: write_fake(k, root, n=SIZES[k][1]), *SIZES[k]) for k in SIZES}

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
    write_fake_cifar(tmp_path)
    raw = pickle.load(open(tmp_path / "cifar-10-batches-py" / "test_batch", "rb"))
    x, y = load_tensors("cifar10", train=False, data_root=str(tmp_path))
    assert torch.equal((x[0] * 255).round().to(torch.uint8).flatten(), torch.from_numpy(raw["data"][0]))  # CHW planes
    assert y.tolist() == raw["labels"]

def test_missing_dataset_says_where(tmp_path):
    with pytest.raises(FileNotFoundError, match="download=True"): load_tensors("cifar10", data_root=str(tmp_path))
    with pytest.raises(ValueError, match="valid: shapes, digits"): load_tensors("imagenet")
