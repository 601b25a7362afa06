"""video.images: still-image I/O through PyAV, round trips checked sample for sample."""

from __future__ import annotations

import numpy as np
import pytest

from esrgan_video.errors import InputError, OutputError
from esrgan_video.video.images import IMAGE_EXTENSIONS, read_image, write_image


def _picture(h=12, w=20, deep=False, seed=0):
    rng = np.random.default_rng(seed)
    hi = 65536 if deep else 256
    dtype = np.uint16 if deep else np.uint8
    return rng.integers(0, hi, (h, w, 3), dtype=dtype), rng.integers(0, hi, (h, w), dtype=dtype)


@pytest.mark.parametrize("ext,deep,with_alpha", [(".png", False, True), (".png", True, True), (".tif", True, True),
                                                  (".tiff", False, True), (".bmp", False, True), (".bmp", False, False)])
def test_lossless_formats_round_trip_exactly(tmp_path, ext, deep, with_alpha):
    """(An RGB BMP without alpha could not be written at all: the table said rgb24, which FFmpeg's BMP encoder
    does not take; it takes bgr24.)"""
    rgb, alpha = _picture(deep=deep)
    alpha = alpha if with_alpha else None
    dst = tmp_path / f"p{ext}"
    write_image(dst, rgb, alpha, 16 if deep else 8)
    got_rgb, got_alpha, bits = read_image(dst)
    assert bits == (16 if deep else 8)
    np.testing.assert_array_equal(got_rgb, rgb)
    np.testing.assert_array_equal(got_alpha, alpha)
    assert [p.name for p in tmp_path.iterdir()] == [dst.name]  # no temporary file left


def test_deep_samples_are_rounded_where_the_format_is_8_bit(tmp_path):
    rgb, alpha = _picture(deep=True)
    write_image(tmp_path / "p.bmp", rgb, alpha, 16)  # BMP: lossless, 8 bits only
    got, got_alpha, bits = read_image(tmp_path / "p.bmp")
    assert bits == 8
    np.testing.assert_array_equal(got, ((rgb.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8))
    np.testing.assert_array_equal(got_alpha, ((alpha.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8))


def test_refusals_name_the_file(tmp_path):
    rgb, alpha = _picture()
    with pytest.raises(OutputError, match=r"x\.gif: unsupported image extension; use one of .*\.png"):
        write_image(tmp_path / "x.gif", rgb, None, 8)
    with pytest.raises(OutputError, match=r"x\.jpg: this format cannot keep the alpha channel"):
        write_image(tmp_path / "x.jpg", rgb, alpha, 8)
    assert not list(tmp_path.iterdir())
    with pytest.raises(InputError, match="no such file"):
        read_image(tmp_path / "missing.png")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        read_image(tmp_path / "empty.png")
    (tmp_path / "text.png").write_text("not a picture\n" * 10)
    with pytest.raises(InputError, match="not a readable image"):
        read_image(tmp_path / "text.png")
    assert ".png" in IMAGE_EXTENSIONS and ".jpeg" in IMAGE_EXTENSIONS


def test_an_unwritable_target_is_an_output_error(tmp_path):
    """A folder that cannot take the file (here a file in the folder's place): OutputError naming the target, no
    temporary file left (preview and stills print it in one line)."""
    rgb, _ = _picture()
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(OutputError, match=r"file/x\.png: cannot be written"):
        write_image(tmp_path / "file" / "x.png", rgb, None, 8)
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


def test_palette_transparency_is_kept_and_jpeg_gets_no_alpha(tmp_path):
    """A palette PNG with a transparent entry (tRNS) reads with its alpha (the pixel format does not declare it:
    it is in the palette); an opaque palette reads without; an Adobe CMYK JPEG — which FFmpeg decodes to RGB plus
    an opaque fourth plane — reads as RGB, with no alpha invented."""
    from PIL import Image

    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
    pal = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    index = np.asarray(pal)
    pal.save(tmp_path / "t.png", transparency=int(index[0, 0]))
    pal.save(tmp_path / "o.png")
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "c.jpg")
    want_rgb = np.asarray(pal.convert("RGB"))
    got, alpha, bits = read_image(tmp_path / "t.png")
    assert bits == 8 and np.array_equal(got, want_rgb)
    assert alpha is not None and np.array_equal(alpha == 0, index == index[0, 0]) and set(np.unique(alpha)) == {0, 255}
    got, alpha, _ = read_image(tmp_path / "o.png")
    assert alpha is None and np.array_equal(got, want_rgb)
    got, alpha, _ = read_image(tmp_path / "c.jpg")
    assert alpha is None and got.shape == (12, 16, 3)
