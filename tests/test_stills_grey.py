"""Grey still images stay grey (stills.upscale_image through the command): a grey PNG (8 or 16 bits, with or without
alpha), grey JPEG or grey TIFF comes out grey at the same depth, with its alpha, where the output format holds grey;
the grey is the BT.709 luma of what the RGB path gives for the same picture as R=G=B. Formats without grey (JPEG,
WebP, BMP with alpha) get what they got before, and RGB inputs are untouched.

The pictures are a crop of scikit-image's ``camera()`` (a real grey photo); the model is the tiny near-identity
RRDBNet of the other command tests (its random trunk mixes the channels a little, so R=G=B in is not quite R=G=B
out), and once the real ``realesr-animevideov3``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from esrgan_video.stills import GREY_WEIGHTS
from esrgan_video.testing import run_cli
from esrgan_video.video.images import read_image, write_image

pytestmark = pytest.mark.usefixtures("torch_one_thread")

# |grey out - BT.709 luma of the RGB path's output| at most, in codes of the output's depth, by bits. 8 bits: the RGB
# path rounds each channel (its luma is off by up to 0.5), the grey path rounds the luma of a 16-bit result once, so
# 1 code bounds it; measured 0.93 (near-identity) and 0.94 (realesr-animevideov3) on these crops. 16 bits: both
# paths have the same 16-bit RGB, the grey is its luma rounded once: 0.5 (measured 0.5, plus float64's error in the
# reference luma).
TOLERANCE = {8: 1.0, 16: 0.5 + 1e-6}


@pytest.fixture(scope="module")
def tiny_model(near_identity_file) -> Path:
    return near_identity_file(4)


@pytest.fixture(scope="module")
def camera() -> np.ndarray:
    import skimage.data

    return np.ascontiguousarray(skimage.data.camera()[90:138, 200:264])  # 48×64: the coat, the tripod, the sky


def _alpha(shape) -> np.ndarray:
    h, w = shape
    return np.tile(np.linspace(0, 255, w).round().astype(np.uint8), (h, 1))  # a ramp: clear to opaque


def _sixteen(grey8: np.ndarray) -> np.ndarray:
    """Real 16-bit samples: the photo × 257 plus a fine ramp, so the low byte carries information too."""
    h, w = grey8.shape
    return grey8.astype(np.uint16) * 257 + (np.arange(h * w).reshape(h, w) % 251).astype(np.uint16)


def _luma(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float64) @ np.array(GREY_WEIGHTS)


def _png_header(path) -> tuple[int, int]:
    """(bit depth, colour type) of a PNG: colour type 0 grey, 2 RGB, 4 grey + alpha, 6 RGBA."""
    data = Path(path).read_bytes()[:26]
    return data[24], data[25]


def _upscale(capfd, src, dst, model, *args) -> None:
    p = run_cli(capfd, src, dst, "--model", model, "-q", *args)
    assert p.returncode == 0, p.stderr


def _cases(camera: np.ndarray, folder: Path) -> dict[str, tuple[Path, Path, bool, int, str | None]]:
    """name → (grey input, the same picture as an R=G=B RGB(A) PNG, has alpha, bits, PIL's mode of the input)."""
    from PIL import Image

    g16 = _sixteen(camera)
    a8 = _alpha(camera.shape)
    a16 = a8.astype(np.uint16) * 257
    out = {}
    Image.fromarray(camera).save(folder / "l.png")
    Image.fromarray(g16).save(folder / "i16.png")
    Image.merge("LA", [Image.fromarray(camera), Image.fromarray(a8)]).save(folder / "la.png")
    write_image(folder / "la16.png", g16, a16, 16)  # PIL writes no 16-bit grey + alpha
    Image.fromarray(camera).save(folder / "l.jpg", quality=92)
    Image.fromarray(g16).save(folder / "i16.tif")
    for name, mode, grey, alpha, bits in [("l.png", "L", camera, None, 8), ("i16.png", "I;16", g16, None, 16),
                                          ("la.png", "LA", camera, a8, 8), ("la16.png", None, g16, a16, 16),
                                          ("l.jpg", "L", None, None, 8), ("i16.tif", "I;16", g16, None, 16)]:
        if grey is None:  # the JPEG: what it decodes to
            grey = read_image(folder / name, keep_grey=True)[0]
        rgb_twin = folder / f"rgb_{name.replace('.', '_')}.png"
        write_image(rgb_twin, np.repeat(grey[..., None], 3, axis=2), alpha, bits)
        out[name] = (folder / name, rgb_twin, alpha is not None, bits, mode)
    return out


@pytest.mark.parametrize("name,ext", [("l.png", ".png"), ("i16.png", ".png"), ("la.png", ".png"), ("la16.png", ".png"),
                                      ("l.jpg", ".png"), ("i16.tif", ".tif"), ("la.png", ".tiff"), ("l.png", ".bmp")])
def test_grey_stills_come_out_grey(tmp_path, capfd, camera, tiny_model, name, ext):
    """Same colour type and depth out as in (PIL sees the same mode), 4× the size, alpha kept; the grey within
    TOLERANCE of the BT.709 luma of the RGB path's output for the same picture, the alpha within 1 code of its
    alpha (8 bits: rounded once more, from the 16-bit result; measured 0)."""
    from PIL import Image

    src, rgb_twin, has_alpha, bits, mode = _cases(camera, tmp_path)[name]
    dst, ref = tmp_path / f"out{ext}", tmp_path / "ref.png"
    _upscale(capfd, src, dst, tiny_model)
    _upscale(capfd, rgb_twin, ref, tiny_model)
    grey, alpha, got_bits = read_image(dst, keep_grey=True)
    assert grey.shape == (48 * 4, 64 * 4) and got_bits == (8 if ext == ".bmp" else bits)
    assert grey.dtype == (np.uint16 if got_bits == 16 else np.uint8) and (alpha is not None) == has_alpha
    if ext == ".png":
        assert _png_header(dst) == (bits, 4 if has_alpha else 0)
    if mode is not None and not (ext == ".bmp" or name == "l.jpg"):
        with Image.open(dst) as im:
            assert im.mode == mode
    if name == "l.jpg":
        with Image.open(dst) as im:
            assert im.mode == "L"
    rgb, ref_alpha, _ = read_image(ref)
    if ext == ".bmp":
        rgb = (rgb.astype(np.uint32) * 255 + 32767) // 65535 if bits == 16 else rgb
    assert np.abs(grey - _luma(rgb)).max() <= TOLERANCE[got_bits]
    if has_alpha:
        assert np.abs(alpha.astype(int) - ref_alpha.astype(int)).max() <= 1


def test_grey_still_with_a_scale_and_a_fit(tmp_path, capfd, camera, tiny_model):
    """--scale 2 (the model's ×4 resized) and --size/--fit pad reach the grey path as the RGB one."""
    cases = _cases(camera, tmp_path)
    src, rgb_twin, _, _, _ = cases["l.png"]
    for args, shape in [(("--scale", "2"), (96, 128)), (("--size", "128x128", "--fit", "pad"), (128, 128))]:
        _upscale(capfd, src, tmp_path / "g.png", tiny_model, "-y", *args)
        _upscale(capfd, rgb_twin, tmp_path / "c.png", tiny_model, "-y", *args)
        grey = read_image(tmp_path / "g.png", keep_grey=True)[0]
        assert grey.shape == shape and _png_header(tmp_path / "g.png") == (8, 0)
        assert np.abs(grey - _luma(read_image(tmp_path / "c.png")[0])).max() <= TOLERANCE[8]


@pytest.mark.parametrize("name,ext", [("l.png", ".jpg"), ("l.jpg", ".jpg"), ("l.png", ".webp"), ("la.png", ".webp"),
                                      ("la.png", ".bmp"), ("i16.png", ".jpg")])
def test_grey_into_a_format_without_grey_is_neutral_rgb(tmp_path, capfd, camera, tiny_model, name, ext):
    """JPEG (FFmpeg's JPEG encoder takes no grey format), WebP and BMP with alpha: the grey a PNG would get, in all
    three channels (R=G=B, no colour fringes from the model), its alpha kept; a notice says so."""
    src, _, has_alpha, _, _ = _cases(camera, tmp_path)[name]
    p = run_cli(capfd, src, tmp_path / f"g{ext}", "--model", tiny_model)
    assert p.returncode == 0, p.stderr
    assert (f"g{ext}: this format has no grey{' with alpha' if has_alpha else ''}; the grey image is written as RGB "
            "with equal channels (.png and .tiff keep it grey)") in p.stderr
    deep = name == "i16.png"
    as_png = tmp_path / ("want.tiff" if deep else "want.png")
    _upscale(capfd, src, as_png, tiny_model)
    want, want_alpha, _ = read_image(as_png, keep_grey=True)
    # byte for byte the file that grey (and alpha) written as R=G=B gives
    write_image(tmp_path / f"want{ext}", np.repeat(want[..., None], 3, axis=2), want_alpha, 16 if deep else 8)
    assert (tmp_path / f"g{ext}").read_bytes() == (tmp_path / f"want{ext}").read_bytes()
    rgb, alpha, _ = read_image(tmp_path / f"g{ext}")
    spread = rgb.max(axis=2).astype(int) - rgb.min(axis=2).astype(int)
    assert np.percentile(spread, 99) <= 2  # JPEG/WebP's 4:2:0 chroma and quantisation: a code or two, no colour
    assert (alpha is None) == (not has_alpha)


@pytest.mark.parametrize("deep,with_alpha", [(False, False), (True, False), (False, True)])
def test_rgb_stills_are_unchanged(tmp_path, capfd, tiny_model, sample_photo, deep, with_alpha):
    """An RGB(A) input (a real photo, and one whose pixels are all grey: the colour type decides) takes the path it
    took before: the packed RGB(A) plane of its own depth through the frame transform, written as RGB(A)."""
    from esrgan_video.frames.sizing import resize_rgb
    from esrgan_video.options import ModelOptions, RuntimeOptions
    from esrgan_video.stills import _upscale as transform
    from esrgan_video.upscaler import Upscaler

    photo = sample_photo[100:148, 180:244]
    for i, rgb in enumerate([photo, np.repeat(photo[..., 1:2], 3, axis=2)]):
        rgb = rgb.astype(np.uint16) * 257 + 11 if deep else rgb
        alpha = _alpha(rgb.shape[:2]) if with_alpha else None
        src = tmp_path / f"in{i}.png"
        write_image(src, rgb, alpha, 16 if deep else 8)
        _upscale(capfd, src, tmp_path / f"out{i}.png", tiny_model)
        assert _png_header(tmp_path / f"out{i}.png") == (16 if deep else 8, 6 if with_alpha else 2)
        with Upscaler(ModelOptions(model=str(tiny_model)), RuntimeOptions()) as up:
            want, want_alpha = transform(up, rgb, alpha, (64, 48), (256, 192), resize=resize_rgb)
        got, got_alpha, _ = read_image(tmp_path / f"out{i}.png")
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(got_alpha, want_alpha)


def test_grey_still_through_a_real_model(tmp_path, capfd, camera):
    """realesr-animevideov3 (registry weights): its RGB output of an R=G=B photo differs between channels (up to
    47 8-bit codes on the whole camera(), 22 on this crop); the grey is still within TOLERANCE of its luma, at 8 and
    16 bits."""
    cases = _cases(camera, tmp_path)
    for name, bits in (("l.png", 8), ("i16.png", 16)):
        src, rgb_twin, _, _, _ = cases[name]
        _upscale(capfd, src, tmp_path / "g.png", "realesr-animevideov3", "-y")
        _upscale(capfd, rgb_twin, tmp_path / "c.png", "realesr-animevideov3", "-y")
        grey = read_image(tmp_path / "g.png", keep_grey=True)[0]
        rgb = read_image(tmp_path / "c.png")[0].astype(int)
        assert grey.shape == (192, 256) and _png_header(tmp_path / "g.png") == (bits, 0)
        assert (rgb.max(axis=2) - rgb.min(axis=2)).max() >= 2  # the channels do differ: the luma's weights matter
        assert np.abs(grey - _luma(rgb)).max() <= TOLERANCE[bits]
