"""Every bit of depth survives a one-frame video written to a still image's name (the video path's image2 outputs).

A 10- or 12-bit video's frame into ``x.png`` was written in 8 bits ("png cannot encode 16-bit RGB (rgb48le);
writing rgb24"): FFmpeg's PNG encoder takes 16-bit samples only big-endian (``rgb48be``, ``rgba64be``,
``gray16be``), which the pixel formats did not describe. Now it is a 16-bit PNG (``frames.pixel_formats.BIG_ENDIAN``),
as ``.tif``/``.tiff`` were (``rgb48le``/``rgba64le``), and an ``.apng`` keeps 16 bits too; a 16-bit APNG input is read
(its ``rgb48be`` frames were refused as an unsupported pixel format). ``.jpg`` stays 8-bit with the pixel-format
notice, whose advice now names the still formats that keep the depth. ``--pix-fmt yuv444p`` (``yuv422p``,
``yuv420p``) into ``.jpg`` was refused as "lists pixel format 'yuv444p' but this build's library refuses it": it is
JFIF's full-range YUV, what ``yuvj444p`` writes. A ``--pix-fmt`` the encoder cannot write (``rgb24`` into ``.jpg``) is
refused before the model is looked up: a missing model was reported first (exit 4, not 6).

The pictures are ramps whose every code differs, through the exact ×4 near-identity model (``noise=0``: a nearest
upscale), so each output sample is known: the input's value scaled to 16 bits, not an 8-bit one widened.
"""

from __future__ import annotations

import struct
from pathlib import Path

import av
import numpy as np
import pytest

from esrgan_video.testing import run_cli
from esrgan_video.video.encoder_formats import encoder_opens
from esrgan_video.video.planes import frame_from_planes

pytestmark = pytest.mark.usefixtures("torch_one_thread")

W, H = 64, 16  # a ramp of 64 codes along each row; ×4 gives 256×64


@pytest.fixture(scope="module")
def exact_x4(near_identity_file) -> Path:
    return near_identity_file(4, noise=0.0)


def _ramp_clip(path: Path, pix_fmt: str, *, frames: int = 1) -> tuple[np.ndarray, np.ndarray | None]:
    """A one-frame FFV1 clip of a grey luma ramp (codes 300 + x of 10 bits, × 4 at 12 bits: every code differs
    and none is an 8-bit code widened), neutral chroma and an alpha ramp (codes 5 + 15·x, 10 bits); returns
    (luma, alpha or None) codes."""
    bits = 12 if "12" in pix_fmt else 10
    luma = np.tile((300 + np.arange(W)) << (bits - 10), (H, 1)).astype(np.uint16)
    alpha = np.tile(5 + 15 * np.arange(W), (H, 1)).astype(np.uint16) << (bits - 10)
    planes = [luma]
    if pix_fmt.startswith("yuv"):
        planes += [np.full((H, W), 1 << (bits - 1), np.uint16)] * 2
    if "yuva" in pix_fmt:
        planes.append(alpha)
    with av.open(str(path), "w") as c:
        s = c.add_stream("ffv1", rate=25)
        s.width, s.height, s.pix_fmt = W, H, pix_fmt
        for i in range(frames):
            frame = frame_from_planes(planes, pix_fmt, W, H)
            frame.pts = i
            c.mux(s.encode(frame))
        c.mux(s.encode(None))
    return luma, alpha if "yuva" in pix_fmt else None


def _expected(luma: np.ndarray, bits: int, *, full: bool = False) -> np.ndarray:
    """The 16-bit grey of limited-range luma codes (``full``: full-range grey codes), upscaled ×4 (nearest)."""
    lo, span = (0, (1 << bits) - 1) if full else (16 << (bits - 8), 219 << (bits - 8))
    value = np.round((luma.astype(np.float64) - lo) / span * 65535)
    return np.repeat(np.repeat(value, 4, axis=0), 4, axis=1)


def _png_header(path: Path) -> tuple[int, int]:
    """(bit depth, colour type) from a PNG's IHDR."""
    data = path.read_bytes()
    assert data[12:16] == b"IHDR"
    return struct.unpack(">BB", data[24:26])


def _decoded(path: Path, fmt: str) -> tuple[str, str, np.ndarray]:
    with av.open(str(path)) as c:
        st = c.streams.video[0]
        frame = next(c.decode(video=0))
        return st.codec_context.name, frame.format.name, frame.to_ndarray(format=fmt)


@pytest.mark.parametrize("src_fmt", ["yuv444p10le", "yuv444p12le", "yuva444p10le"])
@pytest.mark.parametrize("out", ["one.png", "one.tif"])
def test_a_deep_frame_into_a_png_or_tiff_keeps_16_bits(tmp_path, capfd, exact_x4, src_fmt, out):
    luma, alpha = _ramp_clip(tmp_path / "deep.mkv", src_fmt)
    bits = 12 if "12" in src_fmt else 10
    p = run_cli(capfd, tmp_path / "deep.mkv", tmp_path / out, "--model", exact_x4)
    assert p.returncode == 0, p.stderr
    assert "cannot encode" not in p.stderr, p.stderr  # no "writing rgb24 instead"
    codec, fmt, got = _decoded(tmp_path / out, "rgba64le" if alpha is not None else "rgb48le")
    want_fmt = {(".png", False): "rgb48be", (".png", True): "rgba64be",
                (".tif", False): "rgb48le", (".tif", True): "rgba64le"}[Path(out).suffix, alpha is not None]
    assert (codec, fmt) == ({".png": "png", ".tif": "tiff"}[Path(out).suffix], want_fmt)
    if out.endswith(".png"):
        assert _png_header(tmp_path / out) == (16, 6 if alpha is not None else 2)
    grey = _expected(luma, bits)
    for c in range(3):  # each sample the input's code scaled to 16 bits (float32's rounding aside)
        assert np.abs(got[..., c] - grey).max() <= 1, (c, np.abs(got[..., c] - grey).max())
    if alpha is not None:
        a = np.repeat(np.repeat(np.round(alpha / ((1 << bits) - 1) * 65535), 4, axis=0), 4, axis=1)
        assert np.abs(got[..., 3] - a).max() <= 1
    row = got[0, :, 1]
    assert len(np.unique(row)) == W and np.count_nonzero(row % 257) > W * 4 * 0.9  # not 8-bit codes widened
    assert len(np.unique((row.astype(np.uint32) * 255 + 32767) // 65535)) < W  # which 8 bits would merge
    if out.endswith(".tif"):  # another reader gives the same samples
        iio = pytest.importorskip("imageio.v3")
        assert np.array_equal(iio.imread(tmp_path / out), got)


def test_a_deep_grey_frame_into_a_png_is_16_bit_grey(tmp_path, capfd, exact_x4):
    luma, _ = _ramp_clip(tmp_path / "grey.mkv", "gray10le")
    p = run_cli(capfd, tmp_path / "grey.mkv", tmp_path / "grey.png", "--model", exact_x4)
    assert p.returncode == 0, p.stderr
    codec, fmt, got = _decoded(tmp_path / "grey.png", "gray16le")
    assert (codec, fmt) == ("png", "gray16be") and _png_header(tmp_path / "grey.png") == (16, 0)
    assert np.abs(got - _expected(luma, 10, full=True)).max() <= 1  # grey read as full range: its codes as they are
    from PIL import Image  # PIL reads a 16-bit grey PNG as 16 bits: the same samples

    assert np.array_equal(np.asarray(Image.open(tmp_path / "grey.png")).astype(np.uint16), got)


def test_a_deep_video_into_an_apng_keeps_16_bits(tmp_path, capfd, exact_x4):
    luma, _ = _ramp_clip(tmp_path / "deep.mkv", "yuv444p10le", frames=2)
    p = run_cli(capfd, tmp_path / "deep.mkv", tmp_path / "deep.apng", "--model", exact_x4)
    assert p.returncode == 0, p.stderr
    with av.open(str(tmp_path / "deep.apng")) as c:
        frames = [f.to_ndarray(format="rgb48le") for f in c.decode(video=0)]
        assert c.streams.video[0].codec_context.pix_fmt == "rgb48be"
    assert len(frames) == 2 and all(np.abs(f[..., 1] - _expected(luma, 10)).max() <= 1 for f in frames)


def test_a_16_bit_apng_is_read_and_written_with_its_16_bits(tmp_path, capfd, exact_x4):
    """FFmpeg's PNG decoder gives a 16-bit picture as rgb48be, which the reader refused ("unsupported pixel format
    'rgb48be'"): it is read as rgb48le, its bytes swapped, and the video (two frames: one would be a PNG still, the
    stills path's) into .apng comes out the same samples ×4 (the exact model), low bits and all."""
    rng = np.random.default_rng(7)
    pictures = rng.integers(0, 65536, (2, H, W, 3), dtype=np.uint16)
    with av.open(str(tmp_path / "deep.apng"), "w", format="apng") as c:
        s = c.add_stream("apng", rate=1)
        s.width, s.height, s.pix_fmt = W, H, "rgb48be"
        for i, picture in enumerate(pictures):
            frame = av.VideoFrame.from_ndarray(picture, format="rgb48le").reformat(format="rgb48be")
            frame.pts = i
            c.mux(s.encode(frame))
        c.mux(s.encode(None))
    p = run_cli(capfd, tmp_path / "deep.apng", tmp_path / "out.apng", "--model", exact_x4)
    assert p.returncode == 0, p.stderr
    with av.open(str(tmp_path / "out.apng")) as c:
        assert c.streams.video[0].codec_context.pix_fmt == "rgb48be"
        got = [f.to_ndarray(format="rgb48le").astype(np.int64) for f in c.decode(video=0)]
    assert len(got) == 2
    for frame, picture in zip(got, pictures):
        assert np.abs(frame - np.repeat(np.repeat(picture.astype(np.int64), 4, axis=0), 4, axis=1)).max() <= 1


def test_a_deep_frame_into_a_jpeg_is_8_bit_and_says_what_keeps_it(tmp_path, capfd, exact_x4):
    _ramp_clip(tmp_path / "deep.mkv", "yuv444p10le")
    p = run_cli(capfd, tmp_path / "deep.mkv", tmp_path / "one.jpg", "--model", exact_x4)
    assert p.returncode == 0, p.stderr
    # in the user's terms (was "mjpeg cannot encode 10-bit YUV 4:4:4 (yuv444p10le); writing yuv444p ...")
    assert (f"{tmp_path / 'one.jpg'}: JPEG holds 8 bits per channel; the 10-bit video's frame is rounded to 8 (.png "
            "and .tiff keep its 10 bits, in 16-bit samples)") in p.stderr, p.stderr
    assert "mjpeg cannot" not in p.stderr and "yuv444p" not in p.stderr
    codec, fmt, _ = _decoded(tmp_path / "one.jpg", "rgb24")
    assert (codec, fmt) == ("mjpeg", "yuvj444p")


def test_a_deep_frame_into_a_webp_is_8_bit_and_says_what_keeps_it(tmp_path, capfd, exact_x4):
    _ramp_clip(tmp_path / "deep.mkv", "yuv444p10le")
    p = run_cli(capfd, tmp_path / "deep.mkv", tmp_path / "one.webp", "--model", exact_x4)
    assert p.returncode == 0, p.stderr
    # was "libwebp_anim cannot encode 10-bit YUV 4:4:4 (yuv444p10le) ...", pointing to .mkv: not a still format
    assert (f"{tmp_path / 'one.webp'}: WebP holds 8 bits per channel; the 10-bit video's frame is rounded to 8 (.png "
            "and .tiff keep its 10 bits, in 16-bit samples)") in p.stderr, p.stderr
    assert "cannot encode" not in p.stderr and ".mkv" not in p.stderr
    assert (tmp_path / "one.webp").stat().st_size > 0


def test_a_deep_video_into_an_animated_webp_names_what_keeps_a_video(tmp_path, capfd, exact_x4):
    with av.open(str(tmp_path / "deep.mkv"), "w") as c:  # three different frames (libwebp merges equal ones)
        s = c.add_stream("ffv1", rate=25)
        s.width, s.height, s.pix_fmt = W, H, "yuv444p10le"
        for i in range(3):
            planes = [np.full((H, W), 300 + 200 * i, np.uint16)] + [np.full((H, W), 512, np.uint16)] * 2
            frame = frame_from_planes(planes, "yuv444p10le", W, H)
            frame.pts = i
            c.mux(s.encode(frame))
        c.mux(s.encode(None))
    p = run_cli(capfd, tmp_path / "deep.mkv", tmp_path / "anim.webp", "--model", exact_x4)
    assert p.returncode == 0, p.stderr
    # .png and .tiff hold one picture: they do not keep a video
    assert (f"{tmp_path / 'anim.webp'}: WebP holds 8 bits per channel; the 10-bit video is rounded to 8 (.apng, or "
            ".mkv with --codec ffv1, keeps its 10 bits)") in p.stderr, p.stderr
    assert (tmp_path / "anim.webp").read_bytes().count(b"ANMF") == 3  # three frames (FFmpeg decodes only the first)


@pytest.mark.parametrize("pix_fmt", ["yuv444p", "yuv422p", "yuv420p"])
def test_pix_fmt_yuv_into_a_jpeg_is_jfif_full_range(tmp_path, capfd, near_identity_file, pix_fmt):
    """``--pix-fmt yuv444p`` into .jpg was refused ("this build's library refuses it": the encoder was probed on
    limited range, which FFmpeg's JPEG encoder refuses); it is the full-range YUV every JPEG is written in."""
    from media import make_clip
    from PIL import Image

    assert encoder_opens("mjpeg", pix_fmt)
    make_clip(tmp_path / "one.mkv", frames=1)
    model = near_identity_file(2)
    for name, more in [("ref.png", []), ("one.jpg", ["--pix-fmt", pix_fmt])]:
        p = run_cli(capfd, tmp_path / "one.mkv", tmp_path / name, "--model", model, *more)
        assert p.returncode == 0, p.stderr
    with av.open(str(tmp_path / "one.jpg")) as c:
        frame = next(c.decode(video=0))
        assert (frame.format.name, frame.color_range) == (pix_fmt.replace("yuv", "yuvj"), 2)
    diff = (np.asarray(Image.open(tmp_path / "one.jpg").convert("RGB")).astype(int)
            - np.asarray(Image.open(tmp_path / "ref.png").convert("RGB")).astype(int))
    assert np.abs(diff).mean() < 2.5, np.abs(diff).mean()  # the colour the PNG holds, within JPEG's loss


@pytest.mark.parametrize("out, pix_fmt, says", [
    ("one.jpg", "rgb24", "encoder mjpeg cannot write pixel format 'rgb24'; it accepts: yuvj420p, yuvj422p, "
                         "yuvj444p, yuv420p, yuv422p, yuv444p"),
    ("one.png", "yuv420p", "encoder png cannot write pixel format 'yuv420p'; it accepts: rgb24, rgba, rgb48be, "
                           "rgba64be, gray, gray16be"),
])
def test_a_pix_fmt_the_encoder_refuses_is_said_before_the_model_is_looked_up(tmp_path, capfd, out, pix_fmt, says):
    from media import make_clip

    make_clip(tmp_path / "one.mkv", frames=1)
    p = run_cli(capfd, tmp_path / "one.mkv", tmp_path / out, "--model", tmp_path / "no-such-model.pth",
                "--pix-fmt", pix_fmt)
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert p.returncode == 6 and lines == [f"esrgan-video: error: {says}"], p.stderr
    assert sorted(f.name for f in tmp_path.iterdir()) == ["one.mkv"]


def test_the_big_endian_formats_are_written_swapped_and_read_as_their_twins():
    """What the PNG encoder takes, described without changing any other choice: a big-endian format's planes are
    native uint16 and a frame built from them holds big-endian bytes; a decoder's is read as its little-endian twin;
    a family's 16-bit relative (``same_family``) and a raw video's choices stay little-endian."""
    from esrgan_video.frames.pixel_formats import SUPPORTED_PIX_FMTS, pixel_format, read_format
    from esrgan_video.video.planes import read_planes

    be = pixel_format("rgb48be")
    assert (be.family, be.bits, be.big_endian, be.numpy_dtype) == ("rgb", 16, True, np.dtype(">u2"))
    assert pixel_format("rgb24").same_family(bits=16).name == "rgb48le"
    assert be.same_family(alpha=True).name == "rgba64be" and be.same_family(bits=8).name == "rgb24"
    assert "rgb48be" not in SUPPORTED_PIX_FMTS and "rgb48le" in SUPPORTED_PIX_FMTS
    assert [read_format(n) for n in ("rgb48be", "rgba64be", "gray16be")] == ["rgb48le", "rgba64le", "gray16le"]
    samples = (np.arange(4 * 3 * 3).reshape(3, 4, 3) * 4099).astype(np.uint16)
    frame = frame_from_planes([samples], "rgb48be", 4, 3)
    assert np.array_equal(frame.to_ndarray(format="rgb48le"), samples)  # swscale's reading of the bytes
    assert bytes(frame.planes[0])[:2] == samples[0, 0, 0].astype(">u2").tobytes()
    (back,) = read_planes(frame, "rgb48le", pixel_format("rgb48le").plane_layouts(4, 3))
    assert back.dtype == np.dtype("<u2") and np.array_equal(back, samples)
