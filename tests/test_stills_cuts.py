"""Still images cut short, format by format, decided by what FFmpeg's decoder gives of the bytes there
(``video.images.readable_bytes``, ``damage``), the same way for each:

- a picture it gives is upscaled and written, and what it lost is said in one line, exit 9 (never hidden): a GIF
  as far as its data goes ("the rows from R of H did not decode"; it was refused), a progressive JPEG cut between
  or inside its scans — whole but blurred, from the scans there — says so (cut between scans it was written with
  "every pixel decoded": the damage was hidden);
- a picture it cannot give is refused in one line naming the file and how it is cut, exit 3, before the model is
  looked up, nothing written: a WebP, TIFF or BMP cut short (a TIFF or BMP said "not a readable image ([Errno
  1094995529] Invalid data found when processing input: 'avcodec_send_packet()')"), and an interlaced GIF cut before
  its last pass.

The files are real ones (Pillow's encoders, scikit-image's photo), cut with a slice."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import Image

from esrgan_video.testing import run_cli
from esrgan_video.video.images import image_meta, read_image, readable_bytes

pytestmark = pytest.mark.usefixtures("torch_one_thread")

H, W = 48, 64


@pytest.fixture(scope="module")
def model(near_identity_file) -> Path:
    return near_identity_file(2)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return np.ascontiguousarray(skimage.data.astronaut()[::8, ::8][8:8 + H, :W])


def _encoded(photo: np.ndarray, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    Image.fromarray(photo).save(out, fmt, **options)
    return out.getvalue()


def _lines(stderr: str) -> list[str]:
    return [ln for ln in stderr.strip().splitlines() if not ln.startswith("esrgan-video: wrote")]


JPEG_CUT = "the JPEG ends before its end-of-image marker (truncated?)"


def test_a_progressive_jpeg_cut_between_its_scans_is_said_to_be_blurred(tmp_path, photo, model, capfd):
    data = _encoded(photo, "JPEG", progressive=True, quality=90)
    starts = [m.start() for m in re.finditer(rb"\xff\xda", data)]  # each scan's header (0xFFDA is only a marker)
    assert len(starts) == 10  # libjpeg's progressive script for colour
    (tmp_path / "whole.jpg").write_bytes(data)
    whole = read_image(tmp_path / "whole.jpg")[0].astype(int)
    errors = []
    for k in (1, 5, 9):  # cut where scan k + 1 begins: k scans whole
        src, dst = tmp_path / f"scans{k}.jpg", tmp_path / f"scans{k}.png"
        src.write_bytes(data[:starts[k]])
        p = run_cli(capfd, src, dst, "--model", model)
        first = "the first scan is" if k == 1 else f"the first {k} scans are"
        assert p.returncode == 9 and _lines(p.stderr) == [
            f"esrgan-video: {src}: {JPEG_CUT}; a progressive JPEG of which only {first} whole: the whole picture is "
            "at reduced detail (blurred), the output is kept"], p.stderr
        assert dst.exists()
        meta = image_meta(src)
        errors.append(np.abs(read_image(src, meta=meta, cut=readable_bytes(src, meta).data)[0] - whole).mean())
    assert errors[0] > errors[1] > errors[2] > 1  # what FFmpeg gives: blurred throughout, less so with more scans

    # cut inside the last scan: blurred, and the rows past the cut lack that scan too
    src = tmp_path / "inside.jpg"
    src.write_bytes(data[:(starts[9] + len(data)) // 2])
    p = run_cli(capfd, src, tmp_path / "inside.png", "--model", model)
    (line,) = _lines(p.stderr)
    rows = int(line.split("the rows from ")[1].split(" ")[0]) - 1
    assert p.returncode == 9 and 0 < rows < H and line == (
        f"esrgan-video: {src}: {JPEG_CUT}; a progressive JPEG of which only the first 9 scans are whole: the whole "
        f"picture is at reduced detail (blurred) and the rows from {rows + 1} of {H} ({100 * (H - rows) / H:.0f} %) "
        "lack even the scan that was cut, the output is kept"), p.stderr

    # only the end marker lost: every scan is there, nothing is blurred
    src = tmp_path / "no_end.jpg"
    src.write_bytes(data[:-2])
    p = run_cli(capfd, src, tmp_path / "no_end.png", "--model", model)
    assert p.returncode == 9 and _lines(p.stderr) == [
        f"esrgan-video: {src}: {JPEG_CUT}; every pixel decoded, the output is kept"], p.stderr


def test_a_gif_cut_short_is_read_as_far_as_its_data_goes(tmp_path, photo, model, capfd):
    data = _encoded(photo, "GIF", interlace=False)
    (tmp_path / "whole.gif").write_bytes(data)
    whole = read_image(tmp_path / "whole.gif")[0]
    src, dst = tmp_path / "cut.gif", tmp_path / "cut.png"
    src.write_bytes(data[:len(data) // 2])
    p = run_cli(capfd, src, dst, "--model", model)
    (line,) = _lines(p.stderr)
    rows = int(line.split("the rows from ")[1].split(" ")[0]) - 1
    assert p.returncode == 9 and 0 < rows < H and line == (
        f"esrgan-video: {src}: the GIF ends before its trailer (truncated?); the rows from {rows + 1} of {H} "
        f"({100 * (H - rows) / H:.0f} %) did not decode, the output is kept"), p.stderr
    assert dst.exists()
    meta = image_meta(src)
    got = read_image(src, meta=meta, cut=readable_bytes(src, meta).data)[0]
    # the rows said to be there are the whole GIF's (lossless), and the next is not
    assert np.array_equal(got[:rows], whole[:rows]) and not np.array_equal(got[rows], whole[rows])


def _refused(capfd, tmp_path, src: Path, why: str) -> None:
    dst = tmp_path / f"{src.stem}_out.png"
    p = run_cli(capfd, src, dst, "--model", tmp_path / "no-such-model.pth")  # refused before the model is looked up
    assert p.returncode == 3 and "Traceback" not in p.stderr and _lines(p.stderr) == [
        f"esrgan-video: error: {src}: {why}"], p.stderr
    assert not dst.exists()


NO_CUT_PICTURE = "(only a PNG, JPEG or GIF cut short is read as far as its data goes)"


@pytest.mark.parametrize("name,fmt,options,why", [
    ("lossy.webp", "WEBP", {"quality": 90}, "the WebP file is shorter than its RIFF header says (truncated?); FFmpeg "
     f"gives no picture of a cut WebP {NO_CUT_PICTURE}"),
    ("lossless.webp", "WEBP", {"lossless": True}, "the WebP file is shorter than its RIFF header says (truncated?); "
     f"FFmpeg gives no picture of a cut WebP {NO_CUT_PICTURE}"),
    ("raw.tif", "TIFF", {}, "the TIFF ends before its picture data does (truncated?); FFmpeg gives no picture of a "
     f"cut TIFF {NO_CUT_PICTURE}"),
    ("deflate.tif", "TIFF", {"compression": "tiff_deflate"}, "the TIFF ends before its directory (truncated?); FFmpeg "
     f"gives no picture of a cut TIFF {NO_CUT_PICTURE}"),  # Pillow writes a compressed TIFF's directory last
    ("photo.bmp", "BMP", {}, "the BMP ends before its pixel data does (truncated?); FFmpeg gives no picture of a cut "
     f"BMP {NO_CUT_PICTURE}"),
    ("interlaced.gif", "GIF", {"interlace": True}, "the GIF ends before its trailer (truncated?); an interlaced GIF "
     "cut before its last pass: no row of the picture is whole"),
])
def test_a_cut_file_whose_picture_the_decoder_cannot_give_is_refused_in_one_line(tmp_path, photo, capfd, name, fmt,
                                                                                 options, why):
    data = _encoded(photo, fmt, **options)
    for share in (0.3, 0.9):
        src = tmp_path / name
        src.write_bytes(data[:int(len(data) * share)])
        _refused(capfd, tmp_path, src, why)
    (tmp_path / name).write_bytes(data)  # whole, it is read
    assert read_image(tmp_path / name)[0].shape == (H, W, 3)
