"""Capture and palette formats on input (frames.pixel_formats.READ_AS): packed 4:2:2 (``uyvy422`` — 2vuy MOV,
UYVY AVI; ``yuyv422`` — YUY2 AVI) is read as planar ``yuv422p`` and a palette (``pal8``: 8-bit AVI/QuickTime,
paletted PNG) as ``rgb24`` (``rgba`` when an entry it shows is see-through), exactly: the planes equal those of
the same pictures stored as yuv422p / rgb24, and so does the CLI's output. Files made by PyAV (rawvideo)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from esrgan_video.frames.pixel_formats import is_supported, read_format
from esrgan_video.testing import run_cli
from esrgan_video.video.reader import open_input

W, H, N = 18, 10, 3
_ORDER = {"uyvy422": (1, 0, 3, 2), "yuyv422": (0, 1, 2, 3)}  # where Y0, U, Y1, V lie in each 4 bytes


def _yuv422(k: int) -> list[np.ndarray]:
    rng = np.random.default_rng(k)
    return [rng.integers(0, 256, (H, W), np.uint8), rng.integers(0, 256, (H, W // 2), np.uint8),
            rng.integers(0, 256, (H, W // 2), np.uint8)]


def _rows(plane, rows: int, row_bytes: int) -> np.ndarray:
    return np.frombuffer(plane, np.uint8).reshape(rows, plane.line_size)[:, :row_bytes]


def _frame(fmt: str, k: int, palette: np.ndarray | None = None) -> av.VideoFrame:
    """Frame ``k`` in ``fmt``, its bytes written here (no swscale): the same pictures in every format."""
    f = av.VideoFrame(W, H, fmt)
    if fmt == "yuv422p":
        for plane, a in zip(f.planes, _yuv422(k)):
            _rows(plane, H, a.shape[1])[...] = a
    elif fmt in _ORDER:
        y, u, v = _yuv422(k)
        quads = np.empty((H, W // 2, 4), np.uint8)
        for slot, a in zip(_ORDER[fmt], (y[:, 0::2], u, y[:, 1::2], v)):
            quads[..., slot] = a
        _rows(f.planes[0], H, 2 * W)[...] = quads.reshape(H, 2 * W)
    elif fmt == "pal8":
        _rows(f.planes[0], H, W)[...] = _index(k)
        np.frombuffer(f.planes[1], np.uint8).reshape(256, 4)[...] = palette  # B, G, R, A
    else:  # rgb24 / rgba: the palette looked up
        rgba = palette[:, [2, 1, 0, 3]][_index(k)]
        _rows(f.planes[0], H, W * len(fmt.rstrip("24")))[...] = rgba[..., :3 if fmt == "rgb24" else 4].reshape(H, -1)
    return f


def _index(k: int) -> np.ndarray:
    return np.random.default_rng(100 + k).integers(0, 256, (H, W), np.uint8)


def _palette(see_through: bool) -> np.ndarray:
    pal = np.random.default_rng(7).integers(0, 256, (256, 4), np.uint8)
    pal[:, 3] = 255
    if see_through:
        pal[::3, 3] = np.arange(0, 256, 3, dtype=np.uint8)
    return pal


def _write(path: Path, fmt: str, palette: np.ndarray | None = None, codec: str = "rawvideo") -> Path:
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=25)
        s.width, s.height, s.pix_fmt = W, H, fmt
        for k in range(N):
            c.mux(s.encode(_frame(fmt, k, palette)))
        c.mux(s.encode())
    with av.open(str(path)) as c:  # the file holds what it is meant to
        assert c.streams.video[0].codec_context.pix_fmt == fmt
    return path


def _read(path: Path):
    with open_input(path) as inp:
        return inp.info, [f.planes for f in inp.frames()]


def test_read_format_rule():
    assert read_format("uyvy422") == read_format("yuyv422") == "yuv422p"
    assert read_format("pal8") == "rgb24" and read_format("pal8", see_through=True) == "rgba"
    assert read_format("yuv420p") == "yuv420p" and read_format("bayer_rggb8") is None
    assert not is_supported("uyvy422") and not is_supported("pal8")  # read as others, never written


@pytest.mark.parametrize("fmt,ext", [("uyvy422", "mov"), ("uyvy422", "avi"), ("yuyv422", "avi"),
                                     ("yuyv422", "mov")])
def test_packed_422_reads_as_the_yuv422p_planes(tmp_path, fmt, ext):
    info, frames = _read(_write(tmp_path / f"cap.{ext}", fmt))
    assert (info.pix_fmt, info.source_pix_fmt) == ("yuv422p", fmt)
    assert len(frames) == N
    for k, planes in enumerate(frames):
        assert [p.shape for p in planes] == [(H, W), (H, W // 2), (H, W // 2)]
        assert all(np.array_equal(a, b) for a, b in zip(planes, _yuv422(k)))


@pytest.mark.parametrize("see", [False, True])
def test_palette_reads_as_rgb_with_its_alpha(tmp_path, see):
    pal = _palette(see)  # QuickTime's raw palette is opaque; a paletted PNG's keeps its alpha (tRNS)
    info, frames = _read(_write(tmp_path / "pal.mov", "pal8", pal, "png" if see else "rawvideo"))
    want = "rgba" if see else "rgb24"
    assert (info.pix_fmt, info.source_pix_fmt) == (want, "pal8")
    _, ref = _read(_write(tmp_path / f"ref_{want}.mov", want, pal))
    assert len(frames) == len(ref) == N
    for k, (planes, r) in enumerate(zip(frames, ref)):
        assert planes[0].shape == (H, W, len(want.rstrip("24")))
        assert np.array_equal(planes[0], r[0])
        assert np.array_equal(planes[0][..., :3], pal[:, [2, 1, 0]][_index(k)])


def _output_frames(path: Path) -> list[tuple[str, list[bytes]]]:
    with av.open(str(path)) as c:
        return [(f.format.name, [bytes(p) for p in f.planes]) for f in c.decode(video=0)]


@pytest.mark.parametrize("fmt,ref,ext", [("uyvy422", "yuv422p", "avi"), ("yuyv422", "yuv422p", "avi"),
                                         ("pal8", "rgb24", "mov")])
def test_cli_output_equals_the_planar_sources(tmp_path, near_identity_file, capfd, fmt, ref, ext):
    """The upscaled file of a capture is bit-identical to the one of the same pictures stored as yuv422p/rgb24."""
    model = near_identity_file(2)
    pal = _palette(False)
    outs = []
    for name in (fmt, ref):
        src = _write(tmp_path / f"{name}.{ext}", name, pal)
        dst = tmp_path / f"{name}_out.mkv"
        p = run_cli(capfd, src, dst, "--model", model, "--device", "cpu", "--codec", "ffv1", "-q")
        assert p.returncode == 0, p.stderr
        outs.append(_output_frames(dst))
    assert len(outs[0]) == N and outs[0] == outs[1]


@pytest.mark.parametrize("fmt", ["uyvy422", "yuyv422"])
def test_packed_422_of_an_odd_width_matches_swscale(tmp_path, fmt):
    """17 pixels a row: the last pair has one luma sample; its chroma is read too (ceil-divided, as FFmpeg does)."""
    w = 17
    path = tmp_path / f"odd.{fmt}.avi"
    with av.open(str(path), "w") as c:
        s = c.add_stream("rawvideo", rate=25)
        s.width, s.height, s.pix_fmt = w, H, fmt
        f = av.VideoFrame(w, H, fmt)
        data = np.frombuffer(f.planes[0], np.uint8)
        data[...] = np.random.default_rng(5).integers(0, 256, data.size, np.uint8)
        c.mux(s.encode(f))
        c.mux(s.encode())
    with av.open(str(path)) as c:
        ref = next(c.decode(video=0)).reformat(format="yuv422p")  # swscale's unpacking is a plain copy
    info, frames = _read(path)
    assert (info.width, info.pix_fmt) == (w, "yuv422p")
    want = [_rows(p, *a.shape) for p, a in zip(ref.planes, frames[0])]
    assert [a.shape for a in frames[0]] == [(H, w), (H, 9), (H, 9)]
    assert all(np.array_equal(a, b) for a, b in zip(frames[0], want))
