"""Packed 8-bit RGB in and out (#14.9): bgr0, rgb0, 0rgb, 0bgr, bgra, rgba, argb, abgr, bit-exact.

Files are made with PyAV (FFV1 stores 8-bit RGB only as bgr0/bgra; the other orders come as rawvideo in NUT,
as capture and intermediate files carry them). The model is the exact nearest ×4 one (``near_identity_model``
with ``noise=0``), so a correct pipeline gives each source pixel back as a 4×4 block, code for code, and any
swapped channel, lost alpha or rounding shows as a mismatch.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import torch

import media
from esrgan_video.cli.main import main
from esrgan_video.frames import color
from esrgan_video.frames.pixel_formats import pixel_format
from esrgan_video.pipeline import upscale_video
from esrgan_video.testing import near_identity_model
from esrgan_video.upscaler import Upscaler
from esrgan_video.testing import save_near_identity

FFV1_RGB = ["bgr0", "bgra"]
OTHER_ORDERS = ["rgb0", "0rgb", "0bgr", "rgba", "argb", "abgr"]


@pytest.fixture(scope="module")
def exact4():
    with Upscaler(near_identity_model(4, noise=0.0), device="cpu") as up:
        yield up


def _source(tmp_path: Path, pix_fmt: str) -> Path:
    if pix_fmt in FFV1_RGB:
        return media.make_clip(tmp_path / f"{pix_fmt}.mkv", codec="ffv1", pix_fmt=pix_fmt, size=(16, 12), frames=3)
    return media.make_clip(tmp_path / f"{pix_fmt}.nut", codec="rawvideo", pix_fmt=pix_fmt, size=(16, 12), frames=3,
                           format="nut")


def _rgba_frames(path: Path) -> tuple[str, list[np.ndarray]]:
    """Every frame as H×W×4 RGBA uint8 (alpha 255 where the format has none): a pure shuffle in swscale."""
    with av.open(str(path)) as c:
        frames = list(c.decode(video=0))
    name = frames[0].format.name
    out = []
    for f in frames:
        arr = f.to_ndarray(format="rgba")
        if not pixel_format(name).alpha:
            arr[..., 3] = 255  # the padding byte is not alpha
        out.append(arr)
    return name, out


def _nearest4(a: np.ndarray) -> np.ndarray:
    return a.repeat(4, axis=0).repeat(4, axis=1)


@pytest.mark.parametrize("pix_fmt", list(pixel_format(n).name for n in FFV1_RGB + OTHER_ORDERS))
def test_colour_code_round_trip_is_exact(pix_fmt):
    """Packed planes → RGB → the same packed planes, every colour and alpha code (padding becomes 255)."""
    fmt = pixel_format(pix_fmt)
    rng = np.random.default_rng(1)
    plane = torch.from_numpy(rng.integers(0, 256, (5, 7, 4), dtype=np.uint8))
    spec = color.ColorSpec().resolved(7, 5, fmt)
    rgb = color.planes_to_rgb([plane], fmt, spec)
    alpha = color.alpha_to_float(plane, fmt) if fmt.alpha else None
    (back,) = color.rgb_to_planes(rgb, fmt, spec, alpha=alpha)
    for i, letter in enumerate(fmt.planes[0]):
        expect = torch.full_like(plane[..., i], 255) if letter == "X" else plane[..., i]
        assert torch.equal(back[..., i], expect), (pix_fmt, letter)
    # the letters mean what they say: R from the 'R' byte
    assert torch.equal((rgb[0, 0] * 255).round().to(torch.uint8), plane[..., fmt.planes[0].index("R")])


@pytest.mark.parametrize("pix_fmt", FFV1_RGB + OTHER_ORDERS)
def test_pipeline_upscales_packed_rgb_bit_exactly_into_ffv1(tmp_path, exact4, pix_fmt):
    src = _source(tmp_path, pix_fmt)
    in_name, fin = _rgba_frames(src)
    assert in_name == pix_fmt
    dst = tmp_path / "out.mkv"
    r = upscale_video(src, dst, upscaler=exact4, codec="ffv1")
    assert r.frames == 3
    out_name, fout = _rgba_frames(dst)
    assert out_name == ("bgra" if pixel_format(pix_fmt).alpha else "bgr0")  # FFV1's 8-bit RGB, alpha kept
    assert not any("cannot encode" in n for n in r.notices)
    for a, b in zip(fin, fout):
        np.testing.assert_array_equal(b, _nearest4(a))


def test_planar_8_bit_rgb_into_ffv1_is_written_as_bgr0(tmp_path, exact4):
    """8-bit gbrp in: FFV1's 8-bit RGB (bgr0), not 10-bit planar."""
    src = media.make_clip(tmp_path / "g.nut", codec="rawvideo", pix_fmt="gbrp", size=(16, 12), frames=2, format="nut")
    _, fin = _rgba_frames(src)
    r = upscale_video(src, tmp_path / "o.mkv", upscaler=exact4, codec="ffv1")
    name, fout = _rgba_frames(tmp_path / "o.mkv")
    assert name == "bgr0" and r.frames == 2
    for a, b in zip(fin, fout):
        np.testing.assert_array_equal(b, _nearest4(a))


def test_yuv_source_to_rgba_on_request(tmp_path, exact4):
    """--pix-fmt bgra on a YUV source: RGB written packed with an opaque alpha."""
    src = media.make_clip(tmp_path / "y.mkv", codec="ffv1", pix_fmt="yuv444p", size=(16, 12), frames=2, matrix=1)
    upscale_video(src, tmp_path / "o.mkv", upscaler=exact4, codec="ffv1", pix_fmt="bgra")
    name, fout = _rgba_frames(tmp_path / "o.mkv")
    assert name == "bgra" and all((f[..., 3] == 255).all() for f in fout)
    with av.open(str(tmp_path / "o.mkv")) as c:
        cc = c.streams.video[0].codec_context
        assert (cc.colorspace, cc.color_range) == (0, 2)  # RGB output: identity matrix, full range


@pytest.mark.parametrize("pix_fmt", ["0rgb", "bgra"])
def test_cli_round_trip(tmp_path, capfd, pix_fmt):
    model = tmp_path / "exact4.safetensors"
    save_near_identity(model, 4, noise=0.0)
    src = _source(tmp_path, pix_fmt)
    _, fin = _rgba_frames(src)
    dst = tmp_path / "cli.mkv"
    code = main([str(src), str(dst), "--model", str(model), "--codec", "ffv1", "--device", "cpu", "-q"])
    err = capfd.readouterr().err
    assert code == 0, err
    name, fout = _rgba_frames(dst)
    assert name == ("bgra" if pix_fmt == "bgra" else "bgr0")
    for a, b in zip(fin, fout):
        np.testing.assert_array_equal(b, _nearest4(a))
