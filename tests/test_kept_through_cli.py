"""What an upscale keeps besides the pictures, through the command line, of facts the writer's own tests
(test_video_writer, test_keep_review, test_writer_container_facts) check below it or from other inputs: an MP4's
rotation (display matrix), an MP4's attached picture (cover art), HDR10 static metadata into libx265 in .mkv and
.mp4, Matroska font attachments (ASS fansubs). Inputs are real files written by PyAV; a tiny near-identity x2 model."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import pytest

import media
from esrgan_video.testing import run_cli
from esrgan_video.video.reader import open_input


def _up(capfd, model, src: Path, dst: Path, *args: str):
    r = run_cli(capfd, src, dst, "--model", model, "--backend", "torch", "--progress", "none", *args)
    assert r.returncode == 0, r.stderr
    return r


@pytest.mark.parametrize("ext", [".mp4", ".mkv", ".mov"])
def test_an_mp4s_rotation_is_kept(tmp_path: Path, capfd, near_identity_file, ext):
    src = media.make_clip(tmp_path / "in.mp4", frames=3, rotation=90)
    with open_input(src) as inp:
        assert inp.info.rotation == 90
    dst = tmp_path / f"out{ext}"
    _up(capfd, near_identity_file(2), src, dst)
    with open_input(dst) as out:  # stored as the input is (unrotated), the player told to turn it
        assert (out.info.rotation, out.info.width, out.info.height) == (90, 128, 96)


def _mp4_with_cover(path: Path, jpg: bytes) -> Path:
    base = media.make_clip(path.with_name("base.mp4"), frames=3)
    with av.open(str(base)) as i, av.open(str(path), "w") as o:
        v = o.add_stream_from_template(i.streams.video[0])
        cover = o.add_stream("mjpeg")
        cover.width = cover.height = 32
        cover.pix_fmt = "yuvj420p"
        cover.disposition = av.stream.Disposition.attached_pic
        for p in i.demux(i.streams.video[0]):
            if p.size:
                p.stream = v
                o.mux(p)
        p = av.Packet(jpg)
        p.stream, p.pts, p.dts, p.time_base, p.is_keyframe = cover, 0, 0, Fraction(1, 90000), True
        o.mux(p)
    return path


@pytest.mark.parametrize("ext", [".mp4", ".mkv"])
def test_an_mp4s_cover_art_stays_cover_art(tmp_path: Path, capfd, near_identity_file, ext):
    jpg = media.small_jpeg()
    src = _mp4_with_cover(tmp_path / "in.mp4", jpg)
    dst = tmp_path / f"out{ext}"
    _up(capfd, near_identity_file(2), src, dst)
    with av.open(str(dst)) as c:
        covers = [s for s in c.streams if s.disposition & av.stream.Disposition.attached_pic]
        assert [s.codec_context.name for s in covers] == ["mjpeg"]
        assert c.streams.video[0].codec_context.width == 128  # the upscaled video is the first
        assert bytes(next(c.demux(covers[0]))) == jpg


@pytest.mark.parametrize("ext", [".mkv", ".mp4"])
def test_hdr10_static_metadata_goes_into_libx265(tmp_path: Path, capfd, near_identity_file, ext):
    hdr = ("log-level=error:master-display=G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)"
           "L(10000000,1):max-cll=1000,400")
    src = media.make_clip(tmp_path / "in.mkv", codec="libx265", pix_fmt="yuv420p10le", frames=3, size=(64, 64),
                          matrix=9, primaries=9, transfer=16, full_range=False, options={"x265-params": hdr})
    dst = tmp_path / f"out{ext}"
    _up(capfd, near_identity_file(2), src, dst, "--codec", "libx265")
    with open_input(src) as inp, open_input(dst) as out:
        assert out.info.hdr is not None
        assert (out.info.hdr.max_cll, out.info.hdr.max_fall, out.info.hdr.max_luminance) == (1000, 400, 1000)
        assert out.info.hdr.raw_mastering_display == inp.info.hdr.raw_mastering_display
        c = out.info.color
        assert (c.matrix, c.primaries, c.transfer, c.full_range) == (9, 9, 16, False)


def test_matroska_font_attachments_are_kept(tmp_path: Path, capfd, near_identity_file):
    fonts = [("font.ttf", "application/x-truetype-font", b"not really a font" * 7),
             ("other.otf", "application/vnd.ms-opentype", b"nor this" * 9)]
    src = media.make_clip(tmp_path / "in.mkv", frames=3, subtitles=[media.SubtitleTrack(codec="ass")],
                          attachments=fonts)
    dst = tmp_path / "out.mkv"
    _up(capfd, near_identity_file(2), src, dst)
    with av.open(str(src)) as i, av.open(str(dst)) as c:
        got = [(s.metadata.get("filename"), s.metadata.get("mimetype"), bytes(s.data))
               for s in c.streams if s.type == "attachment"]
        assert got == fonts
        names = [[s.codec_context.name for s in x.streams.subtitles] for x in (i, c)]
        assert names[0] == names[1]
