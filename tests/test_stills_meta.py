"""What a still image says besides its pixels, through ``esrgan-video in out`` (stills.upscale_image): the EXIF
orientation applied (the output upright, its EXIF saying 1), the ICC profile, EXIF block, DPI and XMP/text kept
where the output format holds them (a notice where it does not), animated PNG/WebP refused as a still (and
upscaled whole as a video), truncated files refused, 16-bit written to an 8-bit format said.

The photos are crops of scikit-image's ``chelsea()`` and ``astronaut()``; PIL writes the inputs (as cameras and
editors do) and reads the outputs back, an implementation independent of ``video.image_meta``. The model is the
tiny near-identity ×2 RRDBNet: its output box-averaged back to the input size is close to the input, which says
which way the picture was turned.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from esrgan_video.testing import run_cli
from esrgan_video.video.image_meta import read_meta
from esrgan_video.video.images import read_image

pytestmark = pytest.mark.usefixtures("torch_one_thread")

Image = pytest.importorskip("PIL.Image")
ImageCms = pytest.importorskip("PIL.ImageCms")
ImageOps = pytest.importorskip("PIL.ImageOps")


@pytest.fixture(scope="module")
def model(near_identity_file) -> Path:
    return near_identity_file(2)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    import skimage.data

    return np.ascontiguousarray(skimage.data.chelsea()[50:98, 100:164])  # 48×64, not square: turns show


@pytest.fixture(scope="module")
def icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _exif(orientation: int = 1, **tags) -> Image.Exif:
    ex = Image.Exif()
    ex[0x010F] = "TestCam"  # Make
    ex[0x0112] = orientation
    for k, v in tags.items():
        ex[int(k[1:], 16)] = v
    return ex


def _upscale(capfd, src, dst, model, *args):
    return run_cli(capfd, src, dst, "--model", model, "-y", *args)


def _shrunk(path: Path) -> np.ndarray:
    """The output box-averaged by 2 (back to the input's size), as float."""
    rgb = read_image(path)[0].astype(np.float64)
    h, w = rgb.shape[0] // 2, rgb.shape[1] // 2
    return rgb[:2 * h, :2 * w].reshape(h, 2, w, 2, -1).mean(axis=(1, 3))


@pytest.mark.parametrize("ext", ["jpg", "png", "tif", "webp"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_as_pil_applies_it(tmp_path, photo, ext, orientation):
    """read_image turns the picture as PIL's exif_transpose does (lossless inputs: exactly; JPEG: the decoders'
    IDCTs differ by a code or so)."""
    src = tmp_path / f"o.{ext}"
    extra = {"lossless": True} if ext == "webp" else {"quality": 95} if ext == "jpg" else {}
    Image.fromarray(photo).save(src, exif=_exif(orientation).tobytes(), **extra)
    want = np.asarray(ImageOps.exif_transpose(Image.open(src)).convert("RGB")).astype(int)
    got = read_image(src)[0].astype(int)
    assert got.shape == want.shape
    if ext == "jpg":
        assert np.abs(got - want).mean() < 1.5
    else:
        assert np.array_equal(got, want)


@pytest.mark.parametrize("out_ext", ["png", "jpg", "webp"])
def test_a_turned_jpeg_comes_out_upright_with_its_exif(tmp_path, photo, model, capfd, out_ext):
    """Orientation 6 (a phone held upright): the output is the turned picture, 2× its size, and its EXIF says 1
    (a viewer must not turn it again) and keeps the camera's Make, the new pixel size and no stale thumbnail."""
    src, dst = tmp_path / "phone.jpg", tmp_path / f"up.{out_ext}"
    ex = _exif(6)
    ex.get_ifd(0x8769)[0xA002] = 64  # PixelXDimension, PixelYDimension: the stored size
    ex.get_ifd(0x8769)[0xA003] = 48
    Image.fromarray(photo).save(src, exif=ex.tobytes(), quality=95)
    p = _upscale(capfd, src, dst, model, "-q")
    assert p.returncode == 0, p.stderr
    out = Image.open(dst)
    assert out.size == (96, 128)  # 48×64 turned, ×2
    oex = out.getexif()
    assert oex[0x0112] == 1 and oex[0x010F] == "TestCam"
    assert oex.get_ifd(0x8769).get(0xA002) == 96 and oex.get_ifd(0x8769).get(0xA003) == 128
    upright = np.asarray(ImageOps.exif_transpose(Image.open(src)).convert("RGB")).astype(np.float64)
    err = np.abs(_shrunk(dst) - upright).mean()
    assert err < 8, err  # the other turns are 40+ codes off
    assert np.abs(_shrunk(dst) - upright[::-1, ::-1]).mean() > 3 * err


@pytest.mark.parametrize("src_ext", ["png", "jpg", "webp", "tif"])
@pytest.mark.parametrize("out_ext", ["png", "jpg", "webp", "tif"])
def test_the_icc_profile_is_kept(tmp_path, photo, icc, model, capfd, src_ext, out_ext):
    src, dst = tmp_path / f"in.{src_ext}", tmp_path / f"out.{out_ext}"
    Image.fromarray(photo).save(src, icc_profile=icc)
    p = _upscale(capfd, src, dst, model)
    assert p.returncode == 0, p.stderr
    assert "ICC" not in p.stderr
    assert Image.open(dst).info.get("icc_profile") == icc
    assert read_image(dst)[0].shape == (96, 128, 3)  # FFmpeg reads what was written


def test_a_large_icc_profile_spans_jpeg_segments(tmp_path, photo, icc, model, capfd):
    """A profile over one APP2 segment's 65 519 bytes (LUT-based printer profiles are) is split and joined."""
    big = icc + bytes(range(256)) * 400  # 102 988 bytes: two segments
    src, dst = tmp_path / "in.png", tmp_path / "out.jpg"
    Image.fromarray(photo).save(src, icc_profile=big)
    p = _upscale(capfd, src, dst, model, "-q")
    assert p.returncode == 0, p.stderr
    assert Image.open(dst).info.get("icc_profile") == big
    assert read_meta(dst.read_bytes()).icc == big


def test_a_sixteen_bit_tiff_keeps_its_profile_and_depth(tmp_path, icc, model, capfd):
    """A photographer's 16-bit TIFF in a wide-gamut profile: profile and 16 bits kept, in TIFF and PNG."""
    import skimage.data
    import tifffile

    rgb = skimage.data.astronaut()[100:132, 150:190].astype(np.uint16) * 257
    src = tmp_path / "edit.tif"
    tifffile.imwrite(src, rgb, iccprofile=icc, photometric="rgb")
    for ext in (".tif", ".png"):
        dst = tmp_path / f"up{ext}"
        p = _upscale(capfd, src, dst, model)
        assert p.returncode == 0, p.stderr
        assert p.stderr.strip().splitlines() == [f"esrgan-video: wrote {dst}"]
        assert read_meta(dst.read_bytes()).icc == icc
        out, _, bits = read_image(dst)
        assert bits == 16 and out.shape == (64, 80, 3)
    assert tifffile.TiffFile(tmp_path / "up.tif").pages[0].tags[34675].value == icc
    assert np.array_equal(tifffile.imread(tmp_path / "up.tif"), read_image(tmp_path / "up.tif")[0])


@pytest.mark.parametrize("out_ext, lost", [("tif", "the EXIF data"),
                                           ("bmp", "the ICC colour profile and the EXIF data")])
def test_a_format_without_a_profile_says_so(tmp_path, photo, icc, model, capfd, out_ext, lost):
    src, dst = tmp_path / "in.jpg", tmp_path / f"out.{out_ext}"
    Image.fromarray(photo).save(src, icc_profile=icc, exif=_exif(1).tobytes())
    p = _upscale(capfd, src, dst, model)
    assert p.returncode == 0, p.stderr
    assert f"{dst}: this format does not keep {lost} of in.jpg" in p.stderr


@pytest.mark.parametrize("src_ext", ["png", "jpg", "tif", "bmp"])
@pytest.mark.parametrize("out_ext", ["png", "jpg", "tif", "bmp"])
def test_dpi_is_kept(tmp_path, photo, model, capfd, src_ext, out_ext):
    """The DPI number stays (as GIMP's and ImageMagick's resize keep it): the print grows with the pixels."""
    src, dst = tmp_path / f"in.{src_ext}", tmp_path / f"out.{out_ext}"
    Image.fromarray(photo).save(src, dpi=(300, 300))
    p = _upscale(capfd, src, dst, model, "-q")
    assert p.returncode == 0, p.stderr
    assert np.allclose(Image.open(dst).info["dpi"], 300, atol=0.01)


def test_png_pixels_are_square_without_dpi(tmp_path, photo, model, capfd):
    """FFmpeg's PNG encoder writes pHYs 0:1 (meaningless); the output says 1:1."""
    src, dst = tmp_path / "in.png", tmp_path / "out.png"
    Image.fromarray(photo).save(src)
    assert _upscale(capfd, src, dst, model, "-q").returncode == 0
    assert Image.open(dst).info.get("aspect") == (1, 1)


def test_text_and_xmp_are_kept_in_the_same_format(tmp_path, photo, model, capfd):
    from PIL import PngImagePlugin

    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:Description tiff:Orientation="6" xmp:Rating="5"/></x:xmpmeta>'
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "drawn by hand")
    info.add_itxt("XML:com.adobe.xmp", xmp.decode())
    src, dst = tmp_path / "art.png", tmp_path / "out.png"
    Image.fromarray(photo).save(src, pnginfo=info, exif=_exif(6).tobytes())
    p = _upscale(capfd, src, dst, model, "-q")
    assert p.returncode == 0, p.stderr
    out = Image.open(dst)
    assert out.info["Comment"] == "drawn by hand"
    assert 'tiff:Orientation="1"' in out.info["XML:com.adobe.xmp"]  # upright, as its EXIF now says
    assert 'xmp:Rating="5"' in out.info["XML:com.adobe.xmp"]
    # JPEG → JPEG: the XMP segment
    jpg, jout = tmp_path / "photo.jpg", tmp_path / "out.jpg"
    buf = io.BytesIO()
    Image.fromarray(photo).save(buf, "JPEG", quality=95, xmp=xmp)
    jpg.write_bytes(buf.getvalue())
    p = _upscale(capfd, jpg, jout, model, "-q")
    assert p.returncode == 0, p.stderr
    assert b'xmp:Rating="5"' in Image.open(jout).info["xmp"]
    p = _upscale(capfd, jpg, tmp_path / "other.png", model)  # another format: said
    assert "does not keep the XMP/text metadata of photo.jpg" in p.stderr


@pytest.mark.parametrize("ext", ["png", "webp"])
def test_an_animated_image_is_refused_as_a_still_and_upscaled_as_a_video(tmp_path, photo, model, capfd, ext):
    frames = [Image.fromarray(np.roll(photo, 8 * k, axis=1)) for k in range(3)]
    src = tmp_path / f"anim.{ext}"
    frames[0].save(src, save_all=True, append_images=frames[1:], duration=100, loop=0,
                   **({"lossless": True} if ext == "webp" else {}))
    dst = tmp_path / "out.png"  # a still (an APNG is written to .apng)
    p = _upscale(capfd, src, dst, model)
    assert p.returncode == 3
    lines = p.stderr.strip().splitlines()
    assert lines == [f"esrgan-video: error: {src}: an animated image (3 frames); a still output would keep only the "
                     "first: write it as a video (.apng, .webp, .webm, .mkv, …) to upscale every frame"]
    assert sorted(f.name for f in tmp_path.iterdir()) == [src.name]
    for video in (tmp_path / "out.apng", tmp_path / "out_x2.webp"):  # WebP holds an animation: a video output
        p = _upscale(capfd, src, video, model, "-q")
        assert p.returncode == 0, p.stderr
        assert Image.open(video).n_frames == 3


@pytest.mark.parametrize("ext", ["webp", "gif", "tif", "bmp"])
@pytest.mark.parametrize("keep", [0.5, 0.97])
def test_a_truncated_image_is_refused(tmp_path, photo, model, capfd, ext, keep):
    """FFmpeg's GIF decoder would give the picture with its lost end garbled, and say nothing. (A PNG or JPEG cut
    short is written, with a damage notice: test_a_cut_png_or_jpeg_is_written_and_its_damage_said.)"""
    whole = io.BytesIO()
    Image.fromarray(photo).save(whole, {"jpg": "JPEG", "png": "PNG", "webp": "WEBP", "gif": "GIF", "tif": "TIFF",
                                        "bmp": "BMP"}[ext])
    data = whole.getvalue()
    src = tmp_path / f"cut.{ext}"
    src.write_bytes(data[:int(len(data) * keep)])
    p = _upscale(capfd, src, tmp_path / "out.png", model)
    assert p.returncode == 3
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"esrgan-video: error: {src}: ")
    assert "truncated" in lines[0] or "not a readable image" in lines[0]
    assert sorted(f.name for f in tmp_path.iterdir()) == [src.name]


def _cut_files(photo, ext):
    """(whole bytes, [(name, bytes, rows of 48 whose data is all there)]) of ``photo`` saved as ``ext``: without its
    end marker only, cut mid-picture, and cut before any picture data."""
    whole = io.BytesIO()
    Image.fromarray(photo).save(whole, "JPEG" if ext == "jpg" else "PNG", **({"quality": 95} if ext == "jpg" else {}))
    data = whole.getvalue()
    if ext == "jpg":
        sos = data.find(b"\xff\xda")
        return data, [("no_end", data[:-2], 48), ("half", data[:sos + (len(data) - sos) // 2], None),
                      ("head", data[:sos + 20], 0)]
    iend = data.rfind(b"IEND") - 4
    idat = data.find(b"IDAT") + 4
    return data, [("no_end", data[:iend], 48), ("half", data[:idat + (iend - idat) // 2], None),
                  ("head", data[:idat + 2], 0)]


@pytest.mark.parametrize("ext", ["jpg", "png"])
def test_a_cut_png_or_jpeg_is_written_and_its_damage_said(tmp_path, photo, model, capfd, ext):
    """A JPEG without its end-of-image marker or a PNG without IEND, every pixel there, was refused as truncated;
    damage is said, not hidden, and the user still gets the output: one notice naming the file and what it lost,
    exit 9 (the damaged video's), the output written from the pixels the file holds. Cut mid-picture, the notice says
    from which row (and what share) the picture did not decode; where no row decodes it is refused in one line, exit
    3, before the model loads, with nothing written."""
    whole, cuts = _cut_files(photo, ext)
    (tmp_path / f"whole.{ext}").write_bytes(whole)
    assert _upscale(capfd, tmp_path / f"whole.{ext}", tmp_path / "ref.png", model, "-q").returncode == 0
    reference = np.asarray(Image.open(tmp_path / "ref.png")).astype(int)
    what = {"jpg": "the JPEG ends before its end-of-image marker (truncated?)",
            "png": "the PNG ends before its IEND chunk (truncated?)"}[ext]
    for name, data, rows in cuts:
        src, dst = tmp_path / f"{name}.{ext}", tmp_path / f"{name}_out.png"
        src.write_bytes(data)
        p = _upscale(capfd, src, dst, model if rows != 0 else tmp_path / "no-such-model.pth")
        lines = [ln for ln in p.stderr.strip().splitlines() if not ln.startswith("esrgan-video: wrote")]
        assert "Traceback" not in p.stderr, p.stderr
        if rows == 0:
            assert p.returncode == 3 and lines == [f"esrgan-video: error: {src}: {what}; no row of the picture "
                                                   "decodes"], p.stderr
            assert not dst.exists()
            continue
        assert p.returncode == 9, p.stderr
        assert len(lines) == 1, p.stderr
        out = np.asarray(Image.open(dst)).astype(int)
        if rows == 48:
            assert lines == [f"esrgan-video: {src}: {what}; every pixel decoded, the output is kept"]
            assert np.array_equal(out, reference)
            continue
        got = int(lines[0].split("the rows from ")[1].split(" ")[0]) - 1
        assert 0 < got < 48 and lines[0] == (f"esrgan-video: {src}: {what}; the rows from {got + 1} of 48 "
                                             f"({100 * (48 - got) / 48:.0f} %) did not decode, the output is kept")
        # the rows said to be there are the whole file's (away from the last one, which the model sees beside the
        # lost ones): x2, so 2 output rows each
        top = max(0, got - 4) * 2
        assert top > 0 and np.abs(out[:top] - reference[:top]).max() <= 1


def test_sixteen_bits_into_an_eight_bit_format_is_said(tmp_path, model, capfd):
    import skimage.data

    from esrgan_video.video.images import write_image

    rgb = skimage.data.astronaut()[100:132, 150:190].astype(np.uint16) * 257
    src = tmp_path / "deep.png"
    write_image(src, rgb, None, 16)
    for ext, said in ((".jpg", True), (".webp", True), (".bmp", True), (".png", False), (".tif", False)):
        p = _upscale(capfd, src, tmp_path / f"out{ext}", model)
        assert p.returncode == 0, p.stderr
        assert ("the 16-bit image is rounded to 8" in p.stderr) == said, (ext, p.stderr)


def test_a_gif_still_is_upscaled_as_an_image_with_its_transparency(tmp_path, photo, model, capfd):
    """A one-frame GIF to an image's extension is a still (it went to the video pipeline, which refused .png as a
    container for libx264); an animated GIF to an image is refused as APNG/WebP are, and to a video is a video."""
    q = Image.fromarray(photo).quantize(31)
    idx = np.asarray(q) + 1
    idx[:, :16] = 0  # the left quarter see-through: palette entry 0
    pal = Image.fromarray(idx.astype(np.uint8), "P")
    pal.putpalette([0, 0, 0] + q.getpalette()[:93])
    src = tmp_path / "icon.gif"
    pal.save(src, transparency=0)
    p = _upscale(capfd, src, tmp_path / "icon.png", model, "-q")
    assert p.returncode == 0, p.stderr
    rgb, alpha, _ = read_image(tmp_path / "icon.png")
    assert rgb.shape == (96, 128, 3)
    assert alpha is not None and alpha[:, :30].max() < 16 and alpha[:, 34:].min() > 240
    frames = [Image.fromarray(np.roll(photo, 8 * k, axis=1)) for k in range(3)]
    anim = tmp_path / "anim.gif"
    frames[0].save(anim, save_all=True, append_images=frames[1:], duration=100, loop=0)
    p = _upscale(capfd, anim, tmp_path / "anim.png", model)
    assert p.returncode == 3 and "an animated image (3 frames)" in p.stderr
    for video in ("anim.apng", "anim.webp"):  # README: animated GIF to .apng/.webp is a video
        p = _upscale(capfd, anim, tmp_path / video, model, "-q")
        assert p.returncode == 0, p.stderr
        assert Image.open(tmp_path / video).n_frames == 3
    p = _upscale(capfd, src, tmp_path / "icon.webp", model, "-q")  # a one-frame GIF to WebP: a still
    assert p.returncode == 0, p.stderr
    assert read_image(tmp_path / "icon.webp")[1] is not None


def _as_space(icc: bytes, space: bytes) -> bytes:
    """``icc`` with its header's data colour space set to ``space`` (no CMYK or grey profile ships here; the
    colour space is what decides whether a profile fits the samples written)."""
    return icc[:16] + space + icc[20:]


def test_a_profile_that_does_not_fit_the_samples_is_left_out(tmp_path, photo, icc, model, capfd):
    """A CMYK JPEG's profile on the RGB FFmpeg decodes it to, or a grey picture's profile on the R=G=B a JPEG gets,
    would be misread by viewers (or refused: libpng rejects a mismatched iCCP): left out, with a notice."""
    cmyk_icc = _as_space(icc, b"CMYK")
    src = tmp_path / "print.jpg"
    Image.fromarray(photo).convert("CMYK").save(src, icc_profile=cmyk_icc, quality=95)
    dst = tmp_path / "print.png"
    p = _upscale(capfd, src, dst, model)
    assert p.returncode == 0, p.stderr
    assert "icc_profile" not in Image.open(dst).info
    assert f"{dst}: this format does not keep the CMYK ICC colour profile (the samples are RGB) of print.jpg" \
        in p.stderr
    grey_icc = _as_space(icc, b"GRAY")
    g = tmp_path / "scan.png"
    Image.fromarray(photo[..., 1]).save(g, icc_profile=grey_icc)
    p = _upscale(capfd, g, tmp_path / "scan_x2.png", model)  # grey stays grey: the profile fits
    assert p.returncode == 0, p.stderr
    assert Image.open(tmp_path / "scan_x2.png").mode == "L"
    assert Image.open(tmp_path / "scan_x2.png").info.get("icc_profile") == grey_icc
    assert "ICC" not in p.stderr
    p = _upscale(capfd, g, tmp_path / "scan_x2.jpg", model)  # R=G=B: it does not
    assert p.returncode == 0, p.stderr
    assert "icc_profile" not in Image.open(tmp_path / "scan_x2.jpg").info
    assert "the GRAY ICC colour profile (the samples are RGB)" in p.stderr


@pytest.mark.parametrize("ext", ["tga", "ppm", "avif"])
def test_an_image_of_another_format_to_an_image_is_a_still(tmp_path, photo, model, capfd, ext):
    """A TGA, PPM or AVIF (FFmpeg reads them as images; AVIF through its MP4 demuxer) to .png went to the video
    pipeline, which refused .png as a container for libx264; it is a still now, turned the right way up (TGA's
    rows are stored bottom-up)."""
    from PIL import features

    if ext == "avif" and not features.check("avif"):
        pytest.skip("this PIL writes no AVIF")
    src, dst = tmp_path / f"in.{ext}", tmp_path / "out.png"
    Image.fromarray(photo).save(src, **({"quality": 95} if ext == "avif" else {}))
    p = _upscale(capfd, src, dst, model, "-q")
    assert p.returncode == 0, p.stderr
    assert np.abs(_shrunk(dst) - photo).mean() < 8


def test_a_video_to_an_image_still_goes_to_the_video_pipeline(tmp_path, model, capfd):
    import media

    src = media.make_clip(tmp_path / "clip.mp4", frames=3)
    p = _upscale(capfd, src, tmp_path / "out.png", model)
    assert p.returncode == 6
    assert "out.png: a .png file holds one picture, not a video of 3 frames" in p.stderr  # the video face says it


def test_linear_light_is_refused(tmp_path, photo, model, capfd):
    """OpenEXR's scene-linear floats read as 16-bit codes would come out dark (and above 1.0, clipped)."""
    import av

    src = tmp_path / "render.exr"
    with av.open(str(src), "w", format="image2") as c:
        s = c.add_stream("exr", rate=1)
        s.width, s.height, s.pix_fmt = photo.shape[1], photo.shape[0], "gbrpf32le"
        for packet in s.encode(av.VideoFrame.from_ndarray(photo, format="rgb24").reformat(format="gbrpf32le")):
            c.mux(packet)
        for packet in s.encode(None):
            c.mux(packet)
    p = _upscale(capfd, src, tmp_path / "out.png", model)
    assert p.returncode == 3
    assert p.stderr.strip().splitlines() == [
        f"esrgan-video: error: {src}: OpenEXR holds linear (HDR) light, which the models are not trained on; "
        "convert it to a 16-bit PNG or TIFF in sRGB first"]
    assert sorted(f.name for f in tmp_path.iterdir()) == [src.name]


def test_an_exif_block_that_cannot_be_followed_is_not_kept(tmp_path, photo):
    """EXIF saying orientation 6 whose Exif IFD points past its end: kept as it was, a viewer would turn the
    upright output again; it is left out instead."""
    import struct

    from esrgan_video.video.image_meta import ImageMeta
    from esrgan_video.video.images import write_image

    exif = (b"II*\0" + struct.pack("<IH", 8, 2) + struct.pack("<HHIHH", 274, 3, 1, 6, 0)
            + struct.pack("<HHII", 0x8769, 4, 1, 9999) + b"\0\0\0\0")
    for ext in (".png", ".jpg", ".webp"):
        write_image(tmp_path / f"o{ext}", photo, None, 8, ImageMeta(exif=exif, orientation=6))
        assert read_meta((tmp_path / f"o{ext}").read_bytes()).exif is None
        assert Image.open(tmp_path / f"o{ext}").getexif().get(0x0112) is None


def test_a_damaged_png_profile_does_not_hide_the_orientation(photo):
    """A PNG whose iCCP does not inflate: the profile is left out, the EXIF orientation and the rest still read."""
    import zlib

    ex = _exif(6)
    buf = io.BytesIO()
    Image.fromarray(photo).save(buf, "PNG", exif=ex.tobytes())
    data = buf.getvalue()
    body = b"x\0\0not deflate"
    chunk = len(body).to_bytes(4, "big") + b"iCCP" + body + zlib.crc32(b"iCCP" + body).to_bytes(4, "big")
    meta = read_meta(data[:33] + chunk + data[33:])  # after IHDR
    assert meta.icc is None and meta.orientation == 6 and meta.truncated is None


def test_png_colour_chunks_are_kept_png_to_png(tmp_path, photo, model, capfd):
    """gAMA and cHRM (an old Mac PNG's gamma 1.8 and its primaries) are copied into a PNG output as they are;
    another format cannot hold them: a notice."""
    import struct

    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add(b"gAMA", struct.pack(">I", 55556))  # 1 / 1.8
    info.add(b"cHRM", struct.pack(">8I", 31270, 32900, 64000, 33000, 30000, 60000, 15000, 6000))
    src, dst = tmp_path / "mac.png", tmp_path / "out.png"
    Image.fromarray(photo).save(src, pnginfo=info)
    p = _upscale(capfd, src, dst, model)
    assert p.returncode == 0, p.stderr
    assert p.stderr.strip().splitlines() == [f"esrgan-video: wrote {dst}"]
    want = read_meta(src.read_bytes()).png_colour
    assert [c[4:8] for c in want] == [b"gAMA", b"cHRM"]
    assert read_meta(dst.read_bytes()).png_colour == want
    assert Image.open(dst).info.get("gamma") == pytest.approx(0.55556)
    p = _upscale(capfd, src, tmp_path / "out.jpg", model)
    assert "does not keep the PNG colour chunks (gAMA/cHRM) of mac.png" in p.stderr


def test_an_animated_png_with_a_profile_is_a_video_not_a_crash(tmp_path, photo, icc, model, capfd):
    """The video reader's probe read the first frame's side data; the PNG decoder's ICC profile carries a metadata
    dictionary that PyAV 19 frees twice: the process died (exit 139, no message)."""
    import subprocess
    import sys

    frames = [Image.fromarray(np.roll(photo, 8 * k, axis=1)) for k in range(3)]
    src = tmp_path / "anim.png"
    frames[0].save(src, save_all=True, append_images=frames[1:], duration=100, loop=0, icc_profile=icc)
    dst = tmp_path / "out.apng"
    p = subprocess.run([sys.executable, "-m", "esrgan_video", src, dst, "--model", model, "-q"],
                       capture_output=True, text=True, timeout=300)  # its own process: a crash must not be ours
    assert p.returncode == 0, p.stderr
    assert Image.open(dst).n_frames == 3


def test_block_spans_cover_the_picture_once_with_their_pads():
    from esrgan_video.stills import _blocks, _spans

    for length, core, pad in ((1500, 416, 48), (1500, 1414, 48), (1000, 1000, 48), (1001, 1000, 48), (97, 10, 48),
                              (300, 64, 0)):
        spans = _spans(length, core, pad)
        assert len({b - a for a, b, _, _ in spans}) == 1  # one backend shape
        assert len(spans) == -(-length // core)
        cores = [(y0, y1) for _, _, y0, y1 in spans]
        assert cores[0][0] == 0 and cores[-1][1] == length and all(p[1] == n[0] for p, n in zip(cores, cores[1:]))
        assert cores[-1][1] - cores[-1][0] > (cores[0][1] - cores[0][0]) / 2  # no sliver at the end
        for a, b, y0, y1 in spans:
            assert 0 <= a <= y0 < y1 <= b <= length
            assert y0 - a >= min(pad, y0) and b - y1 >= min(pad, length - y1)  # the pad wherever the picture has it
    assert _spans(1500, 1414, 48) == [(0, 846, 0, 750), (654, 1500, 750, 1500)]  # not 1414 + a sliver of 86
    assert _blocks(100, 100, 4, 48, limit=160_000) == [((0, 100, 0, 100), (0, 100, 0, 100))]
    assert len(_blocks(101, 100, 4, 48, limit=160_000)) == 2


def test_a_huge_still_in_blocks_is_the_same_picture(tmp_path, model, capfd, monkeypatch):
    """A still over BLOCK_OUTPUT_PIXELS goes through in blocks (bounded memory); the tiny model's reach is under
    the pad, so the blocks give exactly the picture the whole-frame run gives, alpha too."""
    import skimage.data

    import esrgan_video.stills as stills
    from esrgan_video.video.images import write_image

    rgb = np.ascontiguousarray(skimage.data.astronaut()[40:240, 60:300])  # 200×240, ×2: 192 000 output pixels
    alpha = np.tile(np.linspace(0, 255, 240).round().astype(np.uint8), (200, 1))
    src = tmp_path / "in.png"
    write_image(src, rgb, alpha, 8)
    p = _upscale(capfd, src, tmp_path / "whole.png", model, "-q", "--tile", "64")
    assert p.returncode == 0, p.stderr
    monkeypatch.setattr(stills, "BLOCK_OUTPUT_PIXELS", 40_000)  # 100-pixel blocks: 2 × 3 of them
    assert len(stills._blocks(200, 240, 2, 48)) == 6
    p = _upscale(capfd, src, tmp_path / "blocks.png", model, "-q", "--tile", "64")
    assert p.returncode == 0, p.stderr
    whole, blocks = read_image(tmp_path / "whole.png"), read_image(tmp_path / "blocks.png")
    assert np.array_equal(whole[0], blocks[0]) and np.array_equal(whole[1], blocks[1])


def test_a_still_into_a_webp_has_its_header_read_once(tmp_path, photo, model, capfd, monkeypatch):
    """Into a WebP (which holds an animation) the command reads the still's header to know whether it is animated
    (stills.probe_still_job); upscale_image is given that header, not a second read of the file, and uses it: the
    EXIF orientation it says is applied."""
    import esrgan_video.stills as stills

    reads, real = [], stills.image_meta
    monkeypatch.setattr(stills, "image_meta", lambda path: reads.append(str(path)) or real(path))
    src = tmp_path / "turned.png"
    Image.fromarray(photo).save(src, exif=_exif(6))  # 6: turn 90° clockwise to view
    dst = tmp_path / "out.webp"
    p = _upscale(capfd, src, dst, model, "-q")
    assert p.returncode == 0, p.stderr
    assert reads == [str(src)]
    assert Image.open(dst).size == (2 * photo.shape[0], 2 * photo.shape[1])  # upright: 96 wide, 128 high
