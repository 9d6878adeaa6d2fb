"""``collect``: a study's outputs packed into at most N files of at most M MiB, all at the top of one folder.

Priority: the study's own log and the status files (:data:`FIRST_CLAIM`), then text (results, metrics,
configs, summaries, calibration) and plots, then logs, then fp16 weights of the chosen finished runs. A
log keeps its end when it is larger than a file, or than the room left (it is cut, never dropped, while
a few KiB are left). Whatever does not fit is listed in ``collect.txt`` as left out. Archives are
``.tar.gz``; each stays under the limit because its uncompressed size (tar headers and padding counted)
does, with room for gzip's worst case.
"""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

MANIFEST = "collect.txt"
ARCHIVE = "contdepth-{:d}.tar.gz"
TEXT_SUFFIXES = (".json", ".jsonl", ".md", ".txt", ".csv", ".xml")
LOG_SUFFIXES = (".log",)
PLOT_SUFFIXES = (".png", ".svg", ".pdf")
GZIP_SLACK = 64 * 1024  # gzip adds at most ~5 bytes per 16 KiB stored block plus a header; far below this
TAR_END = 2 * 512 + 10240  # end-of-archive blocks and tarfile's record padding
#: Files of the work folder packed before any other: the first things to read when a study went wrong.
FIRST_CLAIM = ("logs/reproduce.log", "state.json", "plan.txt")
MIN_TAIL = 4096  # bytes: a log cut to less than this is left out instead


@dataclass
class Item:
    """A file to pack: its bytes come from ``path`` (or ``data``), stored as ``name``."""

    name: str
    path: Path | None = None
    data: bytes | None = None
    kind: str = "text"
    note: str = ""

    @property
    def size(self) -> int:
        if self.data is not None:
            return len(self.data)
        assert self.path is not None
        return self.path.stat().st_size

    @property
    def tar_size(self) -> int:
        return 512 + -(-self.size // 512) * 512


@dataclass
class Packing:
    archives: list[tuple[Path, list[Item]]] = field(default_factory=list)
    left_out: list[tuple[Item, str]] = field(default_factory=list)


def tail_bytes(data: bytes, limit: int) -> bytes:
    """The last ``limit`` bytes of ``data`` from a line start, under a line saying what was cut."""
    end = data[max(0, len(data) - limit + 200) :]
    cut = end.find(b"\n") + 1
    return f"[... first {len(data) - len(end) + cut} bytes cut ...]\n".encode() + end[cut:]


def gather(
    work: Path, study_out: Path | None, weights: Sequence[Path], first: Sequence[str] = FIRST_CLAIM
) -> list[Item]:
    """The files to collect, in priority order: ``first`` (names under ``work``), text and plots, logs,
    then ``weights``."""
    roots = [work] + ([study_out] if study_out is not None and not _inside(study_out, work) else [])
    text, plots, logs = [], [], []
    seen: set[Path] = set()
    for root in roots:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            real = path.resolve()
            if real in seen or path.suffix == ".tmp" or _inside(path, work / "weights"):
                continue
            seen.add(real)
            name = member_name(path, work, study_out)
            # text and logs are read now: a file the study is still writing keeps the size it was planned with
            if path.suffix in LOG_SUFFIXES:
                logs.append(Item(name, path, data=path.read_bytes(), kind="log"))
            elif path.suffix in PLOT_SUFFIXES:
                plots.append(Item(name, path, kind="plot"))
            elif path.suffix in TEXT_SUFFIXES:
                text.append(Item(name, path, data=path.read_bytes(), kind="text"))
    items = text + plots + logs
    claimed = [item for name in first for item in items if item.name == name]
    rest = [item for item in items if item not in claimed]
    return claimed + rest + [Item("weights/" + w.name, w, kind="weights") for w in weights]


def member_name(path: Path, work: Path, study_out: Path | None) -> str:
    """The name of ``path`` (in the work folder or the study folder) in the archives: relative to the work
    folder, or under the study folder's name when the study is elsewhere."""
    if study_out is not None and not path.is_relative_to(work):
        return f"{study_out.name}/{path.relative_to(study_out).as_posix()}"
    return path.relative_to(work).as_posix()


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def _cut(item: Item, limit: int) -> Item:
    """``item`` (a log or text) cut to its last ``limit`` bytes, noted as such."""
    whole = item.data if item.data is not None else item.path.read_bytes()  # type: ignore[union-attr]
    note = f"end only (of {item.size} bytes)"
    return Item(item.name, item.path, data=tail_bytes(whole, limit), kind=item.kind, note=note)


def plan(items: Iterable[Item], max_files: int, capacity: int) -> tuple[list[list[Item]], list[tuple[Item, str]]]:
    """First-fit of ``items`` (in order) into at most ``max_files`` bins of ``capacity`` tar bytes.

    A log larger than a bin keeps its end, and so does a log that fits in no bin once all are open (cut to
    the room the emptiest one has left); any other file that does not fit is left out.
    """
    bins: list[list[Item]] = []
    used: list[int] = []
    left: list[tuple[Item, str]] = []
    room = capacity - TAR_END
    for item in items:
        if item.tar_size > room:
            if item.kind in ("log", "text"):
                item = _cut(item, room - 1024)
            else:
                left.append((item, f"{item.size / 2**20:.1f} MiB, more than one file may hold"))
                continue
        for i, u in enumerate(used):
            if u + item.tar_size <= room:
                bins[i].append(item)
                used[i] += item.tar_size
                break
        else:
            if len(bins) < max_files:
                bins.append([item])
                used.append(item.tar_size)
                continue
            emptiest = min(range(len(used)), key=used.__getitem__, default=-1)
            limit = (room - used[emptiest] - 512) // 512 * 512 if used else 0  # data beside a tar header
            if item.kind == "log" and limit >= MIN_TAIL:
                item = _cut(item, limit)
                bins[emptiest].append(item)
                used[emptiest] += item.tar_size
            else:
                left.append((item, f"no room left in {max_files} files"))
    return bins, left


def write_archive(path: Path, items: Sequence[Item]) -> None:
    """Write ``path`` through a temporary file beside it (removed when the write fails: a full disk, say)."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with tarfile.open(tmp, "w:gz", compresslevel=6) as tar:
            for item in items:
                if item.data is not None:
                    info = tarfile.TarInfo(item.name)
                    info.size = len(item.data)
                    info.mtime = int(os.path.getmtime(item.path)) if item.path else 0
                    tar.addfile(info, io.BytesIO(item.data))
                elif item.path is not None:
                    tar.add(item.path, arcname=item.name, recursive=False)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def pack(
    items: Sequence[Item], dest: Path, *, max_files: int = 8, max_bytes: int = 15 * 2**20, header: str = ""
) -> Packing:
    """Write ``items`` into ``dest/contdepth-N.tar.gz`` plus ``dest/collect.txt``: at most ``max_files``
    files in all, each at most ``max_bytes``, none in a subfolder. Earlier packings in ``dest`` are replaced."""
    if max_files < 2:
        raise ValueError(f"max_files must be at least 2 (one archive and {MANIFEST}), got {max_files}")
    dest.mkdir(parents=True, exist_ok=True)
    for old in dest.glob("contdepth-*.tar.gz"):
        old.unlink()
    bins, left = plan(items, max_files - 1, max_bytes - GZIP_SLACK)
    result = Packing(left_out=left)
    for i, members in enumerate(bins, 1):
        path = dest / ARCHIVE.format(i)
        write_archive(path, members)
        if path.stat().st_size > max_bytes:  # cannot happen by construction; never hand back an oversize file
            raise RuntimeError(f"{path} is {path.stat().st_size} bytes, over the {max_bytes} limit")
        result.archives.append((path, members))
    (dest / MANIFEST).write_text(manifest(result, header))
    return result


def manifest(result: Packing, header: str) -> str:
    lines = [header.rstrip(), ""] if header else []
    lines.append('unpack: for f in contdepth-*.tar.gz; do tar -xzf "$f"; done')
    for path, members in result.archives:
        lines.append(f"\n{path.name} ({path.stat().st_size / 2**20:.2f} MiB, {len(members)} files):")
        lines += [f"  {m.name}" + (f"  [{m.note}]" if m.note else "") for m in members]
    if result.left_out:
        lines.append("\nleft out:")
        lines += [f"  {item.name}: {why}" for item, why in result.left_out]
    return "\n".join(lines) + "\n"
