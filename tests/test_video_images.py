"""video.images: still-image I/O through PyAV, round trips checked sample for sample."""

from __future__ import annotations

import numpy as np
import pytest

from esrgan_video.errors import InputError, OutputError
from esrgan_video.video.images import IMAGE_EXTENSIONS, read_image, write_image

import media


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
    with pytest.raises(OutputError, match=r"x\.jpg: this format cannot keep the alpha channel; use one that does "
                                          r"\(\.bmp, \.png, \.tif, \.tiff, \.webp\)"):
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


def _png_header(path) -> tuple[int, int]:
    """(bit depth, colour type) from a PNG's IHDR: colour type 0 grey, 2 RGB, 4 grey + alpha, 6 RGBA."""
    data = open(path, "rb").read(26)
    assert data[12:16] == b"IHDR"
    return data[24], data[25]


@pytest.mark.parametrize("ext,deep,with_alpha,pil_mode", [
    (".png", False, False, "L"), (".png", True, False, "I;16"), (".png", False, True, "LA"), (".png", True, True, None),
    (".tif", False, False, "L"), (".tiff", True, False, "I;16"), (".tif", False, True, "LA"), (".tif", True, True, None),
    (".bmp", False, False, "L")])
def test_grey_round_trips_as_grey(tmp_path, ext, deep, with_alpha, pil_mode):
    """H×W samples are written as grey (PNG colour type 0/4, TIFF BlackIsZero, BMP's grey palette), at the depth
    given, and read back sample for sample with keep_grey; without it they read as R=G=B. Another reader (PIL,
    tifffile) sees a grey image too (PIL has no 16-bit grey + alpha: tifffile checks that TIFF)."""
    from PIL import Image

    rgb, alpha = _picture(deep=deep, seed=3)
    grey, alpha = rgb[..., 0].copy(), (alpha if with_alpha else None)
    dst = tmp_path / f"g{ext}"
    write_image(dst, grey, alpha, 16 if deep else 8)
    got, got_alpha, bits = read_image(dst, keep_grey=True)
    assert bits == (16 if deep else 8) and got.dtype == grey.dtype
    np.testing.assert_array_equal(got, grey)
    np.testing.assert_array_equal(got_alpha, alpha)
    as_rgb, _, _ = read_image(dst)
    assert as_rgb.shape == grey.shape + (3,) and all(np.array_equal(as_rgb[..., i], grey) for i in range(3))
    if ext == ".png":
        assert _png_header(dst) == (16 if deep else 8, 4 if with_alpha else 0)
    if pil_mode is not None:
        with Image.open(dst) as im:
            assert im.mode == pil_mode
            np.testing.assert_array_equal(np.asarray(im.getchannel(0) if with_alpha else im), grey)
    elif ext in (".tif", ".tiff"):
        import tifffile

        with tifffile.TiffFile(dst) as t:
            page = t.pages[0]
            assert (page.photometric, page.samplesperpixel, page.bitspersample) == (1, 2, 16)  # BlackIsZero + alpha
            np.testing.assert_array_equal(page.asarray(), np.stack([grey, alpha], axis=2))
    assert [p.name for p in tmp_path.iterdir()] == [dst.name]


@pytest.mark.parametrize("ext,with_alpha", [(".jpg", False), (".webp", False), (".webp", True), (".bmp", True)])
def test_grey_is_written_as_rgb_where_the_format_has_no_grey(tmp_path, ext, with_alpha):
    """JPEG (FFmpeg's JPEG encoder takes no grey format), WebP, and BMP with alpha: grey samples are written as
    R=G=B, the same file as the RGB samples would give."""
    from esrgan_video.video.images import holds_grey

    rgb, alpha = _picture(seed=4)
    grey, alpha = rgb[..., 0].copy(), (alpha if with_alpha else None)
    assert not holds_grey(tmp_path / f"x{ext}", alpha=with_alpha)
    write_image(tmp_path / f"g{ext}", grey, alpha, 8)
    write_image(tmp_path / f"c{ext}", np.repeat(grey[..., None], 3, axis=2), alpha, 8)
    assert (tmp_path / f"g{ext}").read_bytes() == (tmp_path / f"c{ext}").read_bytes()
    got, got_alpha, _ = read_image(tmp_path / f"g{ext}", keep_grey=True)
    assert got.shape == grey.shape + (3,) and (got_alpha is not None) == with_alpha


def test_grey_inputs_from_another_writer_read_as_grey(tmp_path):
    """keep_grey on files PIL writes: PNG L, I;16 and LA, grey JPEG, grey TIFF, and a grey BMP (an 8-bit palette
    of greys, which FFmpeg decodes as pal8) give one channel, the samples PIL reads; RGB and colour-palette files
    give RGB even when every pixel is grey in an RGB file (the colour type decides, not the content)."""
    from PIL import Image

    rng = np.random.default_rng(5)
    g8 = rng.integers(0, 256, (12, 16), dtype=np.uint8)
    g16 = rng.integers(0, 65536, (12, 16), dtype=np.uint16)
    a8 = rng.integers(0, 256, (12, 16), dtype=np.uint8)
    Image.fromarray(g8).save(tmp_path / "l.png")
    Image.fromarray(g16).save(tmp_path / "i16.png")
    Image.merge("LA", [Image.fromarray(g8), Image.fromarray(a8)]).save(tmp_path / "la.png")
    Image.fromarray(g8).save(tmp_path / "l.jpg", quality=95)
    Image.fromarray(g8).save(tmp_path / "l.tif")
    Image.fromarray(g16).save(tmp_path / "i16.tif")
    Image.fromarray(g8).save(tmp_path / "l.bmp")
    Image.fromarray(np.repeat(g8[..., None], 3, axis=2)).save(tmp_path / "rgb_grey.png")
    Image.fromarray(_picture(12, 16, seed=6)[0]).convert("P", palette=Image.Palette.ADAPTIVE).save(tmp_path / "p.png")
    for name, want, want_alpha in [("l.png", g8, None), ("i16.png", g16, None), ("la.png", g8, a8),
                                   ("l.tif", g8, None), ("i16.tif", g16, None), ("l.bmp", g8, None)]:
        got, alpha, bits = read_image(tmp_path / name, keep_grey=True)
        assert bits == (16 if want.dtype == np.uint16 else 8), name
        np.testing.assert_array_equal(got, want, err_msg=name)
        np.testing.assert_array_equal(alpha, want_alpha, err_msg=name)
    got, alpha, bits = read_image(tmp_path / "l.jpg", keep_grey=True)
    with Image.open(tmp_path / "l.jpg") as im:
        assert im.mode == "L" and alpha is None and bits == 8 and got.shape == (12, 16)
        assert np.abs(got.astype(int) - np.asarray(im)).max() <= 1  # FFmpeg's IDCT is not libjpeg's
    np.testing.assert_array_equal(np.repeat(got[..., None], 3, axis=2), read_image(tmp_path / "l.jpg")[0])
    for name in ("rgb_grey.png", "p.png"):
        assert read_image(tmp_path / name, keep_grey=True)[0].shape == (12, 16, 3), name


def test_lossy_formats_are_written_near_their_best(tmp_path):
    """A real photo (scikit-image's astronaut, 256×256): JPEG 39.6 dB, WebP at quality 95 38.5 dB (libwebp's
    default 75, written before, 34.4 dB: it threw away much of what the model made)."""
    import skimage.data

    from esrgan_video.quality import psnr

    rgb = np.ascontiguousarray(skimage.data.astronaut()[:256, :256])
    for ext, floor in ((".jpg", 39.0), (".webp", 38.0)):
        write_image(tmp_path / f"a{ext}", rgb, None, 8)
        back = read_image(tmp_path / f"a{ext}")[0]
        assert psnr(back.astype(np.float32) / 255, rgb.astype(np.float32) / 255) > floor, ext


def test_bmp_alpha_is_declared_so_other_readers_see_it(tmp_path):
    """FFmpeg's BMP encoder puts BGRA in a 40-byte header, where the fourth byte is 'reserved': PIL (and Windows,
    most editors) read it opaque. The header is a BITMAPV4HEADER with an alpha mask now; FFmpeg reads it back."""
    Image = pytest.importorskip("PIL.Image")
    rgb, alpha = _picture()
    write_image(tmp_path / "a.bmp", rgb, alpha, 8)
    im = Image.open(tmp_path / "a.bmp")
    assert im.mode == "RGBA"
    assert np.array_equal(np.asarray(im)[..., :3], rgb) and np.array_equal(np.asarray(im)[..., 3], alpha)
    back, back_alpha, _ = read_image(tmp_path / "a.bmp")
    assert np.array_equal(back, rgb) and np.array_equal(back_alpha, alpha)


def test_a_lossless_webp_without_alpha_reads_without_alpha(tmp_path):
    """FFmpeg decodes a lossless WebP as ARGB whether or not it has alpha: one without (PIL's RGB, cwebp's from a
    JPEG) read with an opaque alpha channel, so it came out as RGBA and could not be written to a JPEG at all."""
    Image = pytest.importorskip("PIL.Image")
    rgb, alpha = _picture(33, 47)
    Image.fromarray(rgb).save(tmp_path / "rgb.webp", lossless=True)
    back, back_alpha, bits = read_image(tmp_path / "rgb.webp")
    assert back_alpha is None and bits == 8 and np.array_equal(back, rgb)
    write_image(tmp_path / "out.jpg", back, back_alpha, 8)  # OutputError before: 'cannot keep the alpha channel'
    Image.fromarray(np.dstack([rgb, alpha | 1])).save(tmp_path / "rgba.webp", lossless=True)
    assert np.array_equal(read_image(tmp_path / "rgba.webp")[1], alpha | 1)  # a real alpha is kept


@pytest.mark.parametrize("with_alpha", [False, True])
def test_a_lossless_webp_is_written_lossless(tmp_path, with_alpha):
    """A lossless WebP (VP8L, as PIL and cwebp -lossless write it) gives a lossless WebP back, sample for sample (its
    alpha too; no alpha flag when it has none): it was written lossy, 4:2:0 at quality 95, which a lossless source's
    user does not expect. A lossy WebP, and any other source, is still written at quality 95."""
    Image = pytest.importorskip("PIL.Image")
    from esrgan_video.video.images import image_meta

    rgb, alpha = _picture(33, 47)
    alpha = alpha | 1  # libwebp may change the colour under fully transparent pixels (unseen; cwebp without -exact)
    src = tmp_path / "in.webp"
    Image.fromarray(np.dstack([rgb, alpha]) if with_alpha else rgb).save(src, lossless=True)
    meta = image_meta(src)
    assert meta.lossless
    write_image(tmp_path / "out.webp", *read_image(src, meta=meta), meta)
    out = (tmp_path / "out.webp").read_bytes()
    assert b"VP8L" in out[:64] and b"VP8 " not in out
    back, back_alpha, bits = read_image(tmp_path / "out.webp")
    assert bits == 8 and np.array_equal(back, rgb)
    assert (back_alpha is None) != with_alpha and (not with_alpha or np.array_equal(back_alpha, alpha))
    assert Image.open(tmp_path / "out.webp").mode == ("RGBA" if with_alpha else "RGB")
    Image.fromarray(rgb).save(tmp_path / "lossy.webp", quality=90)
    meta = image_meta(tmp_path / "lossy.webp")
    assert not meta.lossless
    write_image(tmp_path / "again.webp", *read_image(tmp_path / "lossy.webp"), meta)
    assert b"VP8 " in (tmp_path / "again.webp").read_bytes()[:64]


def test_a_cut_still_is_read_from_disk_once(tmp_path):
    """A still's upscale asks image_meta, then readable_bytes, of a PNG cut short: the bytes the first read serve
    the second; a file changed in between is read again (and then gives its own rows)."""
    from esrgan_video.video.images import image_meta, readable_bytes

    write_image(tmp_path / "whole.png", *_picture(h=48, w=64), 8)
    whole = (tmp_path / "whole.png").read_bytes()
    src = tmp_path / "cut.png"
    src.write_bytes(whole[:len(whole) // 2])
    with media.counting_opens(src) as opens:
        meta = image_meta(src)
        assert meta.truncated and opens[0] == 1
        once = readable_bytes(src, meta)
        assert opens[0] == 1 and 0 < once[1] < 48
        assert readable_bytes(src, meta) == once and opens[0] == 2  # given up: a second asking reads
        meta = image_meta(src)
        src.write_bytes(whole[:len(whole) * 3 // 4])  # changed since image_meta read it
        opens[0] = 0
        more = readable_bytes(src, meta)
        assert opens[0] == 1 and once[1] < more[1] < 48
