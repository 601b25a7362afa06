"""Colour exactness across the faces' paths (frames/color.py, video/planes.py), on real files made with PyAV.

* An untagged grey picture: one rule (``ColorSpec.resolved``) decides its matrix and range, the one the still path
  uses (BT.709 luma, full range), so the same grey picture as a PNG and as a one-frame video gives the same pixels
  (within the one code a still's 16-bit intermediate can round differently).
* A palette (``pal8``) clip whose palette gains a see-through entry in a later frame is read as ``rgba`` (every
  frame's palette counts, not only the first's) and its output keeps that alpha.
* End to end with an exact nearest x4 model (``near_identity`` noise 0), FFV1 in and out: a 4:4:4, RGB or grey
  picture comes back within 1 code of the input (16-bit: 3, where R, G or B clips at 0 or 1), a 4:2:0 one's luma
  likewise on average, and the BT.601/709/2020 tags and both ranges are kept.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from esrgan_video.frames.color import MATRIX_KR_KB, ColorSpec, Matrix
from esrgan_video.frames.pixel_formats import PADDING, pixel_format, plane_layouts
from esrgan_video.stills import GREY_WEIGHTS
from esrgan_video.testing import run_cli
from esrgan_video.video.planes import copy_planes
from esrgan_video.video.reader import open_input

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _grey_picture() -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(data.camera()[100:148, 200:264])  # 64 x 48, SD: the mpv rule would say BT.601


@pytest.mark.parametrize("name", ["gray", "gray10le", "gray16le"])
@pytest.mark.parametrize("size", [(64, 48), (720, 576), (1920, 1080)])
def test_untagged_grey_resolves_to_the_still_paths_luma(name, size):
    spec = ColorSpec().resolved(*size, pixel_format(name))
    assert spec.matrix == Matrix.BT709 and spec.full_range is True
    kr, kb = MATRIX_KR_KB[spec.matrix]
    assert (kr, 1 - kr - kb, kb) == pytest.approx(GREY_WEIGHTS, abs=1e-12)
    # a tag is kept
    assert ColorSpec(matrix=6, full_range=False).resolved(*size, pixel_format(name)).matrix == Matrix.SMPTE170M


def test_grey_still_and_one_frame_grey_video_give_the_same_pixels(tmp_path, near_identity_file, capfd):
    """An untagged grey PNG and the same picture as an untagged one-frame gray FFV1 file, upscaled by a model whose
    R, G and B differ (so the luma weights matter): the same grey output (it was BT.601 luma for SD video)."""
    img = _grey_picture()
    model = near_identity_file(2, noise=0.6, seed=3)
    png, mkv = tmp_path / "g.png", tmp_path / "g.mkv"
    Image.fromarray(img).save(png)
    with av.open(str(mkv), "w") as c:
        s = c.add_stream("ffv1", rate=25)
        s.width, s.height, s.pix_fmt = img.shape[1], img.shape[0], "gray"
        c.mux(s.encode(av.VideoFrame.from_ndarray(img, format="gray")))
        c.mux(s.encode())
    for src, dst, extra in ((png, tmp_path / "o.png", ()), (mkv, tmp_path / "o.mkv", ("--codec", "ffv1"))):
        p = run_cli(capfd, src, dst, "--model", model, "--device", "cpu", "-q", *extra)
        assert p.returncode == 0, p.stderr
    still = np.asarray(Image.open(tmp_path / "o.png"))
    with av.open(str(tmp_path / "o.mkv")) as c:
        frame = next(c.decode(video=0))
        assert frame.format.name == "gray"
        video = frame.to_ndarray()
    assert still.shape == video.shape == (96, 128)
    diff = np.abs(still.astype(int) - video)
    assert diff.max() <= 1 and (diff != 0).mean() < 0.02, (diff.max(), (diff != 0).mean())


PW, PH, PN = 16, 8, 3


def _pal8_palette(k: int) -> np.ndarray:
    """Frame ``k``'s palette (B, G, R, A): opaque, except in the last frame, where entries 0 and 1 are see-through."""
    pal = np.zeros((256, 4), np.uint8)
    pal[:, 0], pal[:, 1], pal[:, 2], pal[:, 3] = np.arange(256), 255 - np.arange(256), 77, 255
    if k == PN - 1:
        pal[0, 3], pal[1, 3] = 0, 128
    return pal


def _pal8_index(k: int) -> np.ndarray:
    """Entries 0..3 in 2 x 2 blocks (a x2 near-identity model averages each block)."""
    block = ((np.arange(PW * PH // 4).reshape(PH // 2, PW // 2) + k) % 4).astype(np.uint8)
    return np.repeat(np.repeat(block, 2, 0), 2, 1)


def _pal8_clip(path: Path, codec: str) -> Path:
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=25)
        s.width, s.height, s.pix_fmt = PW, PH, "pal8"
        for k in range(PN):
            f = av.VideoFrame(PW, PH, "pal8")
            np.frombuffer(f.planes[0], np.uint8).reshape(PH, -1)[:, :PW] = _pal8_index(k)
            np.frombuffer(f.planes[1], np.uint8).reshape(256, 4)[...] = _pal8_palette(k)
            c.mux(s.encode(f))
        c.mux(s.encode())
    with av.open(str(path)) as c:  # the file holds what it is meant to: an opaque first palette, a clear last one
        alphas = [np.frombuffer(f.planes[1], np.uint8).reshape(256, 4)[:2, 3].tolist() for f in c.decode(video=0)]
    assert alphas == [[255, 255]] * (PN - 1) + [[0, 128]]
    return path


@pytest.mark.parametrize("codec,ext", [("png", "mov"), ("rawvideo", "nut")])
def test_pal8_palette_gaining_alpha_in_a_later_frame_is_read_as_rgba(tmp_path, codec, ext):
    with open_input(_pal8_clip(tmp_path / f"pal.{ext}", codec)) as inp:
        assert (inp.info.pix_fmt, inp.info.source_pix_fmt) == ("rgba", "pal8")
        frames = [f.planes[0] for f in inp.frames()]
    assert len(frames) == PN
    for k, plane in enumerate(frames):
        assert np.array_equal(plane, _pal8_palette(k)[:, [2, 1, 0, 3]][_pal8_index(k)])
    assert frames[-1][..., 3].min() == 0 and (frames[0][..., 3] == 255).all()


def test_pal8_alpha_of_a_later_frame_reaches_the_output(tmp_path, near_identity_file, capfd):
    src = _pal8_clip(tmp_path / "pal.mov", "png")
    dst = tmp_path / "out.mkv"
    p = run_cli(capfd, src, dst, "--model", near_identity_file(2), "--device", "cpu", "--codec", "ffv1", "-q")
    assert p.returncode == 0, p.stderr
    with av.open(str(dst)) as c:
        frames = [f.to_ndarray(format="rgba") for f in c.decode(video=0)]
    assert len(frames) == PN
    assert frames[0][..., 3].min() >= 253  # opaque, as the near-identity model passes it
    want = np.repeat(np.repeat(_pal8_palette(PN - 1)[:, 3][_pal8_index(PN - 1)], 2, 0), 2, 1)
    assert np.abs(frames[-1][..., 3].astype(int) - want).max() <= 8  # the model's noise; was 255 (opaque)


_TAGS = {6: (6, 6, 6), 1: (1, 1, 1), 9: (9, 9, 14)}  # matrix: (colorspace, primaries, transfer) as a file has them


def _components(frame: av.VideoFrame) -> tuple[object, dict[str, np.ndarray]]:
    fmt = pixel_format(frame.format.name)
    planes = copy_planes(frame, plane_layouts(fmt.name, frame.width, frame.height))
    out = {}
    for names, p in zip(fmt.planes, planes):
        p = p.astype(np.int64) >> fmt.shift
        for i, name in enumerate(names):
            if name != PADDING:
                out[name] = p if len(names) == 1 else p[..., i]
    return fmt, out


@pytest.mark.parametrize("pix_fmt,matrix,full,most", [
    ("yuv444p10le", 6, False, 1), ("yuv444p10le", 1, True, 1), ("yuv444p10le", 9, False, 1),
    ("yuv444p10le", 9, True, 1), ("yuv444p", 1, False, 1), ("yuva444p16le", 6, True, 3), ("yuv420p", 9, True, None),
    ("gbrp10le", 0, True, 0), ("gray12le", 1, True, 0),
])
def test_identity_model_gives_the_input_back_with_its_tags(tmp_path, pix_fmt, matrix, full, most):
    """The picture (a crop of skimage's astronaut) converted by swscale, tagged, FFV1; upscaled x4 by an exact
    nearest model; each output component against the input's, nearest-upscaled."""
    from skimage import data

    from esrgan_video import upscale_video
    from esrgan_video.testing import save_near_identity

    w, h = 32, 24
    rgb = np.ascontiguousarray(data.astronaut()[180:180 + 4 * h:4, 160:160 + 4 * w:4])
    fmt = pixel_format(pix_fmt)
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
    if fmt.family == "yuv":
        frame = frame.reformat(format=pix_fmt, dst_colorspace={6: "SMPTE170M", 1: "ITU709", 9: "BT2020"}[matrix],
                               dst_color_range="JPEG" if full else "MPEG")
    else:
        frame = frame.reformat(format=pix_fmt)
    colorspace, primaries, trc = _TAGS.get(matrix, (0, 1, 13))
    src = tmp_path / "in.mkv"
    with av.open(str(src), "w") as c:
        s = c.add_stream("ffv1", rate=25)
        s.width, s.height, s.pix_fmt = w, h, pix_fmt
        ctx = s.codec_context
        ctx.colorspace, ctx.color_primaries, ctx.color_trc, ctx.color_range = colorspace, primaries, trc, 2 if full else 1
        frame.colorspace, frame.color_primaries, frame.color_trc = colorspace, primaries, trc
        frame.color_range = 2 if full else 1
        c.mux(s.encode(frame))
        c.mux(s.encode())
    model = save_near_identity(tmp_path / "nearest.safetensors", 4, noise=0.0)
    dst = tmp_path / "out.mkv"
    upscale_video(src, dst, model=str(model), device="cpu", codec="ffv1")
    with av.open(str(src)) as c:
        fin = next(c.decode(video=0))
    with av.open(str(dst)) as c:
        fout = next(c.decode(video=0))
    assert fout.format.name == pix_fmt and (fout.width, fout.height) == (4 * w, 4 * h)
    tags = (fin.colorspace, fin.color_primaries, fin.color_trc, fin.color_range)
    assert tags == (colorspace, primaries, trc, 2 if full else 1)  # the file holds what it is meant to
    assert (fout.colorspace, fout.color_primaries, fout.color_trc, fout.color_range) == tags
    _, cin = _components(fin)
    _, cout = _components(fout)
    assert set(cin) == set(cout)
    for name, out in cout.items():
        a = cin[name]
        up = np.repeat(np.repeat(a, out.shape[0] // a.shape[0], 0), out.shape[1] // a.shape[1], 1)
        err = np.abs(out - up)
        if most is not None:
            assert err.max() <= most, (name, err.max())
        elif name in "YA":  # 4:2:0: the luma moves only where re-sited chroma makes R, G or B clip
            assert err.mean() < 0.1, (name, err.mean())
        else:  # chroma re-interpolated at its siting, not a nearest copy: no scale, no offset
            assert err.mean() < 1.5 and abs((out - up).mean()) < 0.5, (name, err.mean(), (out - up).mean())
