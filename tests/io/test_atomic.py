"""The one atomic writer and output folders: whole files or nothing, also when a write is interrupted."""

from __future__ import annotations

import csv
import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from cameras.io import (
    OutputDir,
    OutputDirError,
    atomic_open,
    check_output_dir,
    temporary_name,
    to_jsonable,
    write_bytes,
    write_csv,
    write_figure,
    write_image,
    write_json,
    write_npy,
    write_text,
)
from cameras.io import atomic as atomic_mod


def _temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(".*") if p.name.endswith(".tmp")]


def test_every_helper_writes_a_whole_file(tmp_path: Path) -> None:
    assert write_bytes(tmp_path / "b.bin", b"\x00\x01").read_bytes() == b"\x00\x01"
    assert write_text(tmp_path / "t.txt", "é\r\nline").read_bytes() == "é\r\nline".encode()  # newlines as given
    doc = {"x": np.float32(0.5), "bad": float("nan"), "inf": -float("inf"), "arr": np.arange(3), "t": (1, 2)}
    assert json.loads(write_json(tmp_path / "j.json", doc).read_text()) == {
        "x": 0.5,
        "bad": None,
        "inf": None,
        "arr": [0, 1, 2],
        "t": [1, 2],
    }
    write_csv(tmp_path / "c.csv", [[1, "a,b"], [2, "c"]], header=["n", "s"])
    with open(tmp_path / "c.csv", newline="") as f:
        assert list(csv.reader(f)) == [["n", "s"], ["1", "a,b"], ["2", "c"]]
    arr = np.random.default_rng(0).random((4, 5)).astype(np.float32)
    np.testing.assert_array_equal(np.load(write_npy(tmp_path / "a.npy", arr)), arr)
    img = np.random.default_rng(1).integers(0, 256, (6, 7, 3), dtype=np.uint8)
    with Image.open(write_image(tmp_path / "i.png", img)) as im:
        assert im.format == "PNG"
        np.testing.assert_array_equal(np.asarray(im), img)
    with Image.open(write_image(tmp_path / "i.jpg", img, quality=90)) as im:
        assert im.format == "JPEG"
    fig = Figure(figsize=(1, 1))
    fig.subplots().plot([0, 1])
    with Image.open(write_figure(tmp_path / "f.png", fig, dpi=50)) as im:
        assert im.size == (50, 50)
    assert write_figure(tmp_path / "f.pdf", fig).read_bytes().startswith(b"%PDF")
    assert _temporaries(tmp_path) == []


def test_to_jsonable_rejects_what_json_cannot_hold() -> None:
    with pytest.raises(TypeError, match="object"):
        to_jsonable({"x": object()})
    import torch

    assert to_jsonable({"t": torch.tensor([1.0, float("nan")])}) == {"t": [1.0, None]}


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_an_error_mid_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path, error: type) -> None:
    dest = tmp_path / "r.json"
    dest.write_text('{"old": true}')
    with pytest.raises(error), atomic_open(dest, "w") as f:
        f.write('{"new": ')
        f.flush()
        assert _temporaries(tmp_path)  # the half file exists only under its temporary name
        raise error("stop")
    assert dest.read_text() == '{"old": true}' and _temporaries(tmp_path) == []
    fresh = tmp_path / "fresh.bin"
    with pytest.raises(error), atomic_open(fresh) as g:
        g.write(b"half")
        raise error("stop")
    assert not fresh.exists() and _temporaries(tmp_path) == []


def test_interrupted_figure_image_and_array_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The library's real writers interrupted inside the third-party save call (Ctrl-C while matplotlib, Pillow or
    numpy is halfway through): the destination keeps its old bytes."""
    for name in ("f.png", "i.png", "a.npy"):
        (tmp_path / name).write_bytes(b"old")

    class Boom(Figure):
        def savefig(self, fname: object, **kw: object) -> None:  # type: ignore[override]
            fname.write(b"\x89PNG half")  # type: ignore[attr-defined]
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_figure(tmp_path / "f.png", Boom())

    def half_save(self: Image.Image, fp: object, *a: object, **k: object) -> None:
        fp.write(b"\x89PNG half")  # type: ignore[attr-defined]
        raise OSError("No space left on device")

    monkeypatch.setattr(Image.Image, "save", half_save)
    with pytest.raises(OSError, match="space"):
        write_image(tmp_path / "i.png", np.zeros((2, 2, 3), np.uint8))

    def half_npy(f: object, arr: object, allow_pickle: bool = False) -> None:
        f.write(b"\x93NUMPY")  # type: ignore[attr-defined]
        raise KeyboardInterrupt

    monkeypatch.setattr(atomic_mod.np, "save", half_npy)
    with pytest.raises(KeyboardInterrupt):
        write_npy(tmp_path / "a.npy", np.zeros(3))
    for name in ("f.png", "i.png", "a.npy"):
        assert (tmp_path / name).read_bytes() == b"old", name
    assert _temporaries(tmp_path) == []


def test_failed_rename_cleans_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_replace(src: object, dst: object) -> None:
        raise PermissionError("denied")

    monkeypatch.setattr(atomic_mod.os, "replace", no_replace)
    with pytest.raises(PermissionError):
        write_text(tmp_path / "x.txt", "data")
    assert list(tmp_path.iterdir()) == []


def test_temporary_names_and_modes(tmp_path: Path) -> None:
    tmp = temporary_name(tmp_path / "out.png")
    assert tmp.parent == tmp_path and tmp.name.startswith(".out.png.") and tmp.name.endswith(".tmp")
    assert temporary_name(tmp_path / "out.png") != tmp
    umask = os.umask(0o022)
    os.umask(umask)
    new = write_text(tmp_path / "new.txt", "x")
    assert stat.S_IMODE(new.stat().st_mode) == 0o666 & ~umask  # as open() would create it
    old = tmp_path / "script.sh"
    old.write_text("#!/bin/sh")
    old.chmod(0o750)
    write_text(old, "#!/bin/sh\necho hi")
    assert stat.S_IMODE(old.stat().st_mode) == 0o750  # an existing file's mode is kept


def test_writer_arguments(tmp_path: Path) -> None:
    nested = tmp_path / "a" / "b" / "c.txt"
    write_text(nested, "x")  # missing folders are created at the write
    assert nested.read_text() == "x"
    with pytest.raises(FileNotFoundError):
        write_text(tmp_path / "nope" / "c.txt", "x", mkdir=False)
    with pytest.raises(IsADirectoryError):
        write_text(tmp_path / "a", "x")
    with pytest.raises(ValueError, match="mode"), atomic_open(tmp_path / "z", "a"):  # type: ignore[call-overload]
        pass


# -------------------------------------------------------------------------------------------------- output folders


def _unwritable(tmp: Path) -> Path:
    if hasattr(os, "geteuid") and os.geteuid() == 0 and Path("/proc/1").is_dir():
        return Path("/proc/1/out")
    locked = tmp / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    return locked / "out"


def test_check_output_dir(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    assert check_output_dir(tmp_path) == tmp_path  # an existing writable folder
    assert check_output_dir(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    assert not (tmp_path / "new").exists()  # checking creates nothing
    for path, match in (
        (tmp_path / "file", "existing file"),
        (tmp_path / "file" / "sub", "lies under the file"),
        (tmp_path / "file" / "a" / "b", "lies under the file"),
        (_unwritable(tmp_path), "not writable"),
        ("", "empty"),
    ):
        with pytest.raises(OutputDirError, match=match):
            check_output_dir(path)
    assert [p.name for p in tmp_path.rglob(".cameras-probe*")] == []  # the writability probe is removed


def test_output_dir_is_created_at_the_first_write_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = OutputDir(tmp_path / "run" / "one")
    assert not (tmp_path / "run").exists()
    with pytest.raises(OutputDirError, match="plain file name"):
        out.write_text("../escape.txt", "x")
    assert not (tmp_path / "run").exists()
    out.write_json("a.json", {"k": 1})
    out.write_csv("b.csv", [[1]], ["n"])
    assert [p.name for p in out.written] == ["a.json", "b.csv"] and (tmp_path / "run" / "one" / "a.json").exists()

    other = OutputDir(tmp_path / "second")

    def full_disk(*args: object, **kwargs: object) -> Path:
        raise OSError("No space left on device")

    monkeypatch.setattr(atomic_mod, "write_npy", full_disk)
    with pytest.raises(OSError):
        other.write_npy("m.npy", np.zeros(2))
    assert not (tmp_path / "second").exists()  # the folder it created for the failed first write is gone


def test_output_dir_adopts_files_written_by_others(tmp_path: Path) -> None:
    """Files another writer put in the folder are listed with the folder's own, in order; anything that is not a
    file in the folder is refused and nothing is listed."""
    out = OutputDir(tmp_path / "run")
    out.write_text("a.txt", "a")
    (out.path / "maps").mkdir()
    fig = out.path / "fig.png"
    fig.write_bytes(b"png")
    index = out.path / "maps" / "index.csv"
    index.write_text("x\n")
    assert out.adopt(fig, str(index)) == [fig, index]
    assert out.written == [out.path / "a.txt", fig, index]
    (tmp_path / "elsewhere.png").write_bytes(b"png")
    for bad in (tmp_path / "elsewhere.png", out.path / "missing.png", out.path / "maps", out.path / ".." / "run.png"):
        with pytest.raises(OutputDirError, match="not a file in"):
            out.adopt(fig, bad)
    assert len(out.written) == 3
