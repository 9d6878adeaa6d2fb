"""CIFAR readers (standard layout, clear errors) and the device-resident loader (augmentation, sharding)."""

import os

import pytest
import torch
import torch.nn.functional as F

from contdepth.data import DataError, DeviceLoader, Split, load_cifar, write_fake_cifar
from contdepth.data.cifar import spec

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


@pytest.fixture(scope="module")
def cifar10_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    write_fake_cifar(root, "cifar10", train=60, test=20, seed=1)
    return root


def test_reads_cifar10_layout(cifar10_dir):
    data = load_cifar("cifar10", cifar10_dir)
    assert data.train.images.shape == (60, 3, 32, 32) and data.train.images.dtype == torch.uint8
    assert data.test.labels.shape == (20,) and data.test.labels.dtype == torch.int64
    assert data.num_classes == 10 and data.classes[0] == "class0"
    assert int(data.train.labels.max()) < 10
    # the folder itself is accepted too
    again = load_cifar("cifar-10", cifar10_dir / "cifar-10-batches-py")
    assert torch.equal(again.train.images, data.train.images)


def test_reads_cifar100_layout(tmp_path):
    write_fake_cifar(tmp_path, "cifar100", train=30, test=10)
    data = load_cifar("cifar100", tmp_path)
    assert len(data.train) == 30 and len(data.test) == 10 and data.num_classes == 100


def test_missing_directory_says_where_and_how(tmp_path, monkeypatch):
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError) as err:
        load_cifar("cifar10", missing)
    msg = str(err.value)
    assert str(missing.resolve()) in msg
    assert "cifar-10-batches-py" in msg and "data_batch_1" in msg and "test_batch" in msg
    assert "--download" in msg and "standard python layout" in msg and "md5 c58f30108f718f92721af3b95e74349a" in msg
    assert "cifar10_from_jpeg.py" not in msg  # the package knows no folder outside the checkout


def test_truncated_batch_file(tmp_path):
    folder = write_fake_cifar(tmp_path, "cifar10", train=50, test=10)
    path = folder / "data_batch_3"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(DataError, match="truncated or corrupt") as err:
        load_cifar("cifar10", tmp_path)
    assert "data_batch_3" in str(err.value)


def test_wrong_layout(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "train.csv").write_text("x")
    with pytest.raises(DataError) as err:
        load_cifar("cifar10", tmp_path)
    msg = str(err.value)
    assert "searched" in msg and "images" in msg and "Expected the standard python layout" in msg


def test_incomplete_folder_and_other_dataset(tmp_path):
    folder = write_fake_cifar(tmp_path, "cifar10", train=50, test=10)
    (folder / "test_batch").unlink()
    with pytest.raises(DataError, match="missing test_batch"):
        load_cifar("cifar10", tmp_path)
    with pytest.raises(DataError, match="CIFAR-10 instead"):
        load_cifar("cifar100", tmp_path)


def test_a_copy_that_differs_from_the_official_files_is_named_once(tmp_path, capsys, monkeypatch):
    """The md5 of each file against the official sums, remembered beside the data (re-hashed only when a file
    changes), one warning line when a file differs, and a fingerprint that tells copies apart."""
    from contdepth.data import integrity

    folder = write_fake_cifar(tmp_path, "cifar10", train=50, test=10)
    sums = {name: integrity.file_md5(folder / name) for name in os.listdir(folder) if not name.startswith(".")}
    monkeypatch.setitem(integrity.OFFICIAL_MD5, "cifar10", sums)  # as if this copy were the official one
    (folder / integrity.CACHE).unlink()  # a folder used for the first time
    hashed = []
    real_md5 = integrity.file_md5
    monkeypatch.setattr(integrity, "file_md5", lambda path: hashed.append(path.name) or real_md5(path))
    first = load_cifar("cifar10", tmp_path).integrity
    assert first.official and len(hashed) == 7 and capsys.readouterr().err == ""
    assert load_cifar("cifar10", tmp_path).integrity.fingerprint == first.fingerprint and len(hashed) == 7
    # random bytes written into the pixel array of one batch: it still reads, but it is not the official file
    path = folder / "data_batch_2"
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2 : len(raw) // 2 + 64] = os.urandom(64)
    path.write_bytes(bytes(raw))
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # written a second later than before
    changed = load_cifar("cifar10", tmp_path).integrity
    err = capsys.readouterr().err
    assert len(hashed) == 8 and not changed.official and changed.differs == ("data_batch_2",)
    assert changed.fingerprint != first.fingerprint
    assert len(err.splitlines()) == 1 and "data_batch_2" in err and "differ from the official" in err
    assert "re-encoded" in err and "data_batch_1" not in err
    load_cifar("cifar10", tmp_path, train=False)  # the verdict is remembered: no second warning
    assert capsys.readouterr().err == "" and len(hashed) == 8
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2 * 10**9))  # hashed again, by a quiet process
    assert load_cifar("cifar10", tmp_path, quiet=True).integrity.differs == ("data_batch_2",)
    assert capsys.readouterr().err == "" and len(hashed) == 9
    # a synthetic set is known as not the official data from the start: read without a warning
    write_fake_cifar(tmp_path / "other", "cifar10", train=20, test=10)
    assert not load_cifar("cifar10", tmp_path / "other").integrity.official and capsys.readouterr().err == ""


def test_unknown_dataset():
    with pytest.raises(ValueError, match="cifar10, cifar100"):
        spec("mnist")


def _split(n=70, seed=0):
    g = torch.Generator().manual_seed(seed)
    return Split(torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g), torch.arange(n) % 10)


def test_spread_samples_a_sorted_split_evenly():
    sorted_split = Split(torch.zeros(100, 3, 32, 32, dtype=torch.uint8), torch.arange(100) // 10)
    assert torch.equal(sorted_split.spread(10).labels, torch.arange(10))
    assert len(sorted_split.spread(None)) == 100 and len(sorted_split.head(7)) == 7


def test_train_batches_drop_last_and_are_seeded():
    loader = DeviceLoader(_split(), 16, train=True, mean=MEAN, std=STD, seed=3)
    first = list(loader)
    assert len(first) == len(loader) == 4  # 70 // 16, the partial batch dropped
    assert all(x.shape == (16, 3, 32, 32) and x.dtype == torch.float32 for x, _ in first)
    second = list(loader)
    assert not torch.equal(first[0][0], second[0][0])  # a new order and new crops each epoch
    replay = list(DeviceLoader(_split(), 16, train=True, mean=MEAN, std=STD, seed=3))
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(first, replay, strict=True))


def test_eval_covers_every_image_once_in_order():
    split = _split(70)
    loader = DeviceLoader(split, 32, train=False, mean=MEAN, std=STD)
    batches = list(loader)
    assert [len(y) for _, y in batches] == [32, 32, 6]
    x = torch.cat([b[0] for b in batches])
    expected = (split.images.float() / 255 - 0.5) / 0.25
    assert torch.allclose(x, expected, atol=1e-5)
    assert torch.equal(torch.cat([b[1] for b in batches]), split.labels)


def test_augmentation_is_a_padded_crop_or_its_mirror():
    split = _split(40)
    loader = DeviceLoader(split, 40, train=True, mean=(0, 0, 0), std=(1 / 255,) * 3, seed=0)
    loader.begin_epoch()
    plan = loader._plan
    x, y = next(loader.batches())
    padded = F.pad(split.images.float(), (4, 4, 4, 4))
    flips = 0
    for i in range(40):
        j = int(plan.order[i])
        assert int(y[i]) == int(split.labels[j])
        window = padded[j, :, plan.dy[i] : plan.dy[i] + 32, plan.dx[i] : plan.dx[i] + 32]
        if plan.flip[i]:
            window = window.flip(-1)
            flips += 1
        assert torch.equal(x[i], window)
    assert 5 < flips < 35
    assert int(plan.dy.min()) >= 0 and int(plan.dy.max()) <= 8


def test_state_replays_an_epoch():
    loader = DeviceLoader(_split(), 16, train=True, mean=MEAN, std=STD, seed=5)
    list(loader)  # epoch 1
    state = loader.get_state()
    epoch2 = list(loader)
    loader.set_state(state)
    loader.begin_epoch()
    tail = list(loader.batches(start=2))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(epoch2[2:], tail, strict=True)) and len(tail) == 2


def test_shards_of_a_global_batch_make_the_whole_batch():
    whole = list(DeviceLoader(_split(), 16, train=True, mean=MEAN, std=STD, seed=7))
    parts = [
        list(DeviceLoader(_split(), 16, train=True, mean=MEAN, std=STD, seed=7, rank=r, world=2)) for r in range(2)
    ]
    for i, (x, _) in enumerate(whole):
        assert torch.equal(torch.cat([parts[0][i][0], parts[1][i][0]]), x)
    evals = [list(DeviceLoader(_split(), 16, train=False, mean=MEAN, std=STD, rank=r, world=2)) for r in range(2)]
    assert sum(len(y) for part in evals for _, y in part) == 70


def test_loader_rejects_bad_sizes():
    with pytest.raises(ValueError, match="fewer than one batch"):
        DeviceLoader(_split(10), 16, train=True, mean=MEAN, std=STD)
    with pytest.raises(ValueError, match="split evenly"):
        DeviceLoader(_split(), 15, train=True, mean=MEAN, std=STD, rank=0, world=2)
