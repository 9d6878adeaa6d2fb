"""--download without torchvision: a small archive built here, served on 127.0.0.1 (never the network)."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import socket
import sys
import tarfile
import threading
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from contdepth.data import DataError, load_cifar, write_fake_cifar
from contdepth.data.download import download
from contdepth.data.specs import spec
from tools.offline import prepare

CIFAR10 = spec("cifar10")


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # no request lines in the test output
        pass


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(url of a small CIFAR-10 archive, its md5, the fake data it holds) from a local HTTP server."""
    root = tmp_path_factory.mktemp("served")
    source = root / "source"
    write_fake_cifar(source, "cifar10", train=30, test=10, seed=4)
    archive = root / "www" / CIFAR10.archive
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(source / CIFAR10.folder, arcname=CIFAR10.folder)
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    handler = functools.partial(_Quiet, directory=str(archive.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/{CIFAR10.archive}", md5, load_cifar("cifar10", source)
    finally:
        server.shutdown()
        server.server_close()


def _dead_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (the connection is refused: an offline machine)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/{CIFAR10.archive}"


def test_download_checks_md5_and_unpacks_into_the_standard_layout(served, tmp_path, capsys):
    url, md5, expected = served
    folder = download(CIFAR10, tmp_path, url=url, md5=md5, progress=True)
    assert folder == tmp_path / CIFAR10.folder
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([CIFAR10.archive, CIFAR10.folder])  # no leftovers
    data = load_cifar("cifar10", tmp_path)
    assert torch.equal(data.train.images, expected.train.images) and torch.equal(data.test.labels, expected.test.labels)
    assert "cifar-10-python.tar.gz" in capsys.readouterr().err  # the progress bar


def test_a_wrong_checksum_leaves_nothing(served, tmp_path):
    url, md5, _ = served
    with pytest.raises(DataError, match=f"has md5 {md5}, expected 0+"):
        download(CIFAR10, tmp_path, url=url, md5="0" * 32, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_offline_is_one_line_saying_what_was_tried_and_how_to_supply_the_file(tmp_path):
    url = _dead_url()
    with pytest.raises(DataError) as err:
        download(CIFAR10, tmp_path, url=url, progress=False)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("could not download CIFAR-10")
    assert url in msg and CIFAR10.url in msg and CIFAR10.md5 in msg and "tar xzf" in msg
    assert list(tmp_path.iterdir()) == []  # no partial file left


def test_an_archive_put_there_by_hand_is_checked_and_unpacked_offline(served, tmp_path):
    url, md5, expected = served
    download(CIFAR10, tmp_path / "first", url=url, md5=md5, progress=False)
    (tmp_path / "data").mkdir()
    (tmp_path / "first" / CIFAR10.archive).rename(tmp_path / "data" / CIFAR10.archive)
    (tmp_path / "data" / CIFAR10.folder).mkdir()  # an incomplete earlier copy is replaced whole
    download(CIFAR10, tmp_path / "data", url=_dead_url(), md5=md5, progress=False)
    assert torch.equal(load_cifar("cifar10", tmp_path / "data").test.images, expected.test.images)
    with pytest.raises(DataError, match="has md5 .* delete it"):
        download(CIFAR10, tmp_path / "data", url=_dead_url(), md5="1" * 32, progress=False)


def test_an_archive_reaching_outside_its_folder_is_refused(tmp_path):
    archive = tmp_path / "data" / CIFAR10.archive
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("../escaped")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    with pytest.raises(DataError, match="not the CIFAR-10 archive"):
        download(CIFAR10, archive.parent, md5=md5, progress=False)
    assert not (tmp_path / "escaped").exists()
    assert sorted(p.name for p in archive.parent.iterdir()) == [CIFAR10.archive]


def test_download_needs_no_torchvision(served, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torchvision", None)  # makes `import torchvision` fail
    url, md5, _ = served
    assert (download(CIFAR10, tmp_path, url=url, md5=md5, progress=False) / "test_batch").is_file()


def test_an_offline_machine_unpacks_the_official_archive_it_carries(served, tmp_path, monkeypatch):
    url, md5, expected = served
    carry = tmp_path / "carry"
    download(CIFAR10, carry, url=url, md5=md5, progress=False)  # leaves the archive in carry/
    monkeypatch.setattr(prepare, "spec", lambda name: replace(spec(name), md5=md5))
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[1]))  # the unpacking child imports contdepth
    data = tmp_path / "data"
    proc = prepare.start_decoding(data, carry, tmp_path / "unpack.log")
    assert proc is not None and proc.wait(timeout=60) == 0, (tmp_path / "unpack.log").read_text()
    assert prepare.data_ready(data) and prepare.start_decoding(data, carry, tmp_path / "again.log") is None
    got = load_cifar("cifar10", data)
    assert torch.equal(got.train.images, expected.train.images) and torch.equal(got.test.labels, expected.test.labels)
    with pytest.raises(FileNotFoundError, match="holds neither cifar-10-python.tar.gz nor a .npz copy"):
        prepare.start_decoding(tmp_path / "elsewhere", tmp_path / "empty", tmp_path / "x.log")
