"""The CLI on inputs a restorer brings, "nothing lost" (tests/media.py inputs, ``esrgan-video IN OUT`` with a
near-identity x2 model): timecode tracks, data streams, ..."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

import media
from esrgan_video.testing import run_cli

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _upscale(capfd, near_identity_file, src, dst, *args):
    return run_cli(capfd, src, dst, "--model", near_identity_file(2), "--progress", "none", *args)


def _streams(path):
    with av.open(str(path)) as c:
        return [(s.type, {k.lower(): v for k, v in s.metadata.items()}.get("timecode")) for s in c.streams]


@pytest.mark.parametrize("inext", [".mov", ".mp4"])
@pytest.mark.parametrize("ext", [".mkv", ".mov", ".mp4"])
def test_a_timecode_track_is_kept(tmp_path, capfd, near_identity_file, inext, ext):
    # Every camera or editor MOV/MP4 has a timecode (tmcd) track, a data stream to FFmpeg: copying it failed every
    # run (exit 6: into .mkv and .mp4 'cannot hold the data stream #3', into .mov 'could not finish the file:
    # Invalid argument'). The MOV/MP4 muxer writes the track again from the video stream's timecode tag, and
    # Matroska keeps that tag.
    src = media.make_clip(tmp_path / f"in{inext}", frames=3, video_metadata={"timecode": "01:00:00:00"},
                          audio=[media.AudioTrack()], subtitles=[media.SubtitleTrack("mov_text", language="eng")])
    assert _streams(src) == [("video", "01:00:00:00"), ("audio", None), ("subtitle", None), ("data", "01:00:00:00")]
    dst = tmp_path / f"out{ext}"
    r = _upscale(capfd, near_identity_file, src, dst)
    assert r.returncode == 0, r.stderr
    assert "the timecode" not in r.stderr and "data stream" not in r.stderr, r.stderr
    tmcd = [] if ext == ".mkv" else [("data", "01:00:00:00")]
    assert _streams(dst) == [("video", "01:00:00:00"), ("audio", None), ("subtitle", None), *tmcd]


def test_a_timecode_the_output_cannot_keep_is_said(tmp_path, capfd, near_identity_file):
    src = media.make_clip(tmp_path / "in.mov", frames=3, video_metadata={"timecode": "10:00:00:00"},
                          audio=[media.AudioTrack()])
    dst = tmp_path / "out.ts"
    r = _upscale(capfd, near_identity_file, src, dst)
    assert r.returncode == 0, r.stderr
    assert f"{src}: the timecode 10:00:00:00 (data stream #2) is not kept: .ts files have no place for it" in r.stderr
    assert [t for t, _ in _streams(dst)] == ["video", "audio"]


@pytest.mark.parametrize("ext, kept", [(".mkv", False), (".mp4", False), (".ts", True)])
def test_a_data_stream_the_container_refuses_is_left_out_with_a_notice(tmp_path, capfd, near_identity_file, ext,
                                                                       kept):
    # As documented: a data stream the container refuses is left out with a notice. Matroska and MP4 accept a
    # data stream when it is added and refuse it only when the header is written, which made every MPEG-TS
    # broadcast recording with a KLV/SCTE-35/private data stream fail (exit 6) into .mkv and .mp4.
    plain = media.make_clip(tmp_path / "plain.ts", frames=5, format="mpegts", audio=[media.AudioTrack()])
    src = media.remux_with(plain, tmp_path / "in.ts", extra=[("klv", b"\x06\x0e\x2b\x34" + bytes(20), 0.04)])
    assert [s.type for s in av.open(str(src)).streams] == ["video", "audio", "data"]
    dst = tmp_path / f"out{ext}"
    r = _upscale(capfd, near_identity_file, src, dst)
    assert r.returncode == 0, r.stderr
    said = f"{src}: data stream #2 (data) cannot go into {ext} files and is not copied"
    assert (said in r.stderr) is not kept, r.stderr
    with av.open(str(dst)) as c:
        assert [s.type for s in c.streams] == ["video", "audio", *(["data"] if kept else [])]
        assert sum(1 for _ in c.decode(video=0)) == 5


def _rgb(path, size):
    """Frame 0 of ``path`` and its RGB picture area-reduced to ``size`` (w, h), as floats (swscale)."""
    from av.video.reformatter import Interpolation

    with av.open(str(path)) as c:
        frame = next(c.decode(video=0))
    small = frame.reformat(width=size[0], height=size[1], format="rgb24", interpolation=Interpolation.AREA)
    return frame, small.to_ndarray().astype(np.float64)


@pytest.mark.parametrize("codec, ext, pix_fmt, notice", [
    ("libx264", ".mkv", "yuv422p", "libx264 cannot encode 8-bit YUV 4:1:1 (yuv411p); writing yuv422p"),
    ("ffv1", ".mkv", "yuv411p", None),
])
def test_dv_ntsc_411_is_upscaled(tmp_path, capfd, near_identity_file, codec, ext, pix_fmt, notice):
    # NTSC DV (every miniDV/DVCAM/DVCPRO tape capture) decodes to yuv411p, which the reader refused (exit 3,
    # 'unsupported pixel format'); the colour code and the VapourSynth face already took 4:1:1.
    src = media.make_clip(tmp_path / "in.avi", codec="dvvideo", pix_fmt="yuv411p", size=(720, 480),
                          fps=Fraction(30000, 1001), frames=2)
    dst = tmp_path / f"out{ext}"
    r = run_cli(capfd, src, dst, "--model", near_identity_file(2, noise=0), "--progress", "none", "--codec", codec)
    assert r.returncode == 0, r.stderr
    assert (notice in r.stderr) if notice else "cannot encode" not in r.stderr, r.stderr
    # the x2 model averages each 2×2 block: compare at half the source's size, where that loses nothing
    src_frame, want = _rgb(src, (360, 240))
    with av.open(str(dst)) as c:
        assert sum(1 for _ in c.decode(video=0)) == 2
        sar = c.streams.video[0].sample_aspect_ratio
    out_frame, got = _rgb(dst, (360, 240))
    # DV's 8:9 pixels: a SAR where the output keeps one, else square pixels at 4:3 (FFV1 in Matroska)
    sar = sar and sar.numerator and Fraction(sar.numerator, sar.denominator)
    assert (out_frame.format.name, out_frame.width, out_frame.height, sar) == (pix_fmt, 1440, *(
        (960, Fraction(8, 9)) if codec != "ffv1" else (1080, 0)))
    assert np.abs(got - want).mean() < 2.0, np.abs(got - want).mean()


@pytest.mark.parametrize("codec, ext", [("ffv1", ".mkv"), ("prores_ks", ".mov")])
def test_prores_4444_with_alpha_is_upscaled(tmp_path, capfd, near_identity_file, codec, ext):
    # ProRes 4444 (the mastering format with alpha) decodes to yuva444p12le, which the reader refused (exit 3)
    src = media.make_clip(tmp_path / "in.mov", codec="prores_ks", pix_fmt="yuva444p10le", frames=2)
    dst = tmp_path / f"out{ext}"
    r = run_cli(capfd, src, dst, "--model", near_identity_file(2, noise=0), "--progress", "none", "--codec", codec)
    assert r.returncode == 0, r.stderr
    assert "alpha channel" not in r.stderr, r.stderr  # kept
    src_frame, want = _rgb(src, (32, 24))
    out_frame, got = _rgb(dst, (32, 24))
    assert src_frame.format.name == out_frame.format.name == "yuva444p12le"  # prores_ks writes 10 bits
    assert np.abs(got - want).mean() < 2.0, np.abs(got - want).mean()
    alpha_in = src_frame.to_ndarray(format="yuva444p16le")[..., 3].astype(np.float64).reshape(24, 2, 32, 2).mean((1, 3))
    alpha_out = out_frame.to_ndarray(format="yuva444p16le")[..., 3].astype(np.float64).reshape(24, 4, 32, 4).mean((1, 3))
    assert np.abs(alpha_out - alpha_in).mean() < 65535 * 0.01


@pytest.mark.parametrize("ext", [".ts", ".m2ts"])
@pytest.mark.parametrize("what, kind, codec", [
    (dict(audio=[media.AudioTrack(), media.AudioTrack(codec="flac")]), "audio", "flac"),
    (dict(subtitles=[media.SubtitleTrack("ass")]), "subtitle", "ssa"),
    (dict(subtitles=[media.SubtitleTrack("subrip")]), "subtitle", "srt"),
])
def test_a_stream_mpeg_ts_cannot_hold_is_refused_in_one_line(tmp_path, capfd, near_identity_file, ext, what, kind,
                                                             codec):
    # FFmpeg's MPEG-TS muxer writes a codec it has no stream type for as private data: FLAC audio (an anime BD
    # remux's usual track) and text subtitles came out as unreadable data streams, with exit 0 and not a word; in
    # .m2ts (M2TS mode) the header failed and the message blamed the video encoder ('cannot set up the libx264
    # encoder (Invalid argument)')
    src = media.make_clip(tmp_path / "in.mkv", frames=3, **what)
    index = 2 if kind == "audio" else 1
    dst = tmp_path / f"out{ext}"
    r = _upscale(capfd, near_identity_file, src, dst)
    assert r.returncode == 6, r.stderr
    assert r.stderr.strip().splitlines() == [
        f"esrgan-video: error: {dst}: the {ext} container cannot hold the {kind} stream #{index} ({codec}); "
        "use .mkv instead"]
    assert not dst.exists() and list(tmp_path.glob("*partial*")) == []
    flag = "--no-audio" if kind == "audio" else "--no-subs"
    r = _upscale(capfd, near_identity_file, src, dst, flag)
    assert r.returncode == 0, r.stderr
    with av.open(str(dst)) as c:
        assert [s.type for s in c.streams] == ["video"]


@pytest.mark.parametrize("ext", [".ts", ".m2ts"])
def test_what_mpeg_ts_holds_is_still_copied(tmp_path, capfd, near_identity_file, ext):
    src = media.make_clip(tmp_path / "in.mkv", frames=3, audio=[
        media.AudioTrack(), media.AudioTrack(codec="ac3"), media.AudioTrack(codec="libopus"), media.AudioTrack(codec="mp2")])
    dst = tmp_path / f"out{ext}"
    r = _upscale(capfd, near_identity_file, src, dst)
    assert r.returncode == 0, r.stderr
    with av.open(str(dst)) as c:
        assert [s.type for s in c.streams] == ["video"] + ["audio"] * 4
        assert all(s.codec_context is not None for s in c.streams)
    plain = media.make_clip(tmp_path / "plain.ts", frames=5, format="mpegts", audio=[media.AudioTrack()])
    klv = media.remux_with(plain, tmp_path / "klv.ts", extra=[("klv", b"\x06\x0e\x2b\x34" + bytes(20), 0.04)])
    r = _upscale(capfd, near_identity_file, klv, dst, "-y")
    assert r.returncode == 0, r.stderr
    left_out = f"{klv}: data stream #2 (data) cannot go into {ext} files and is not copied"
    assert (left_out in r.stderr) is (ext == ".m2ts"), r.stderr  # M2TS refuses private data; MPEG-TS keeps it
    with av.open(str(dst)) as c:
        assert [s.type for s in c.streams] == ["video", "audio", *(["data"] if ext == ".ts" else [])]


def test_mpegts_holds_the_video_codecs_ffmpeg_gives_a_stream_type():
    from esrgan_video.video.stream_copy import mpegts_holds

    for m2ts in (False, True):
        assert [mpegts_holds(c, m2ts=m2ts) for c in ("h264", "hevc", "mpeg2video", "mpeg4", "vc1")] == [True] * 5
        # written as private data: read back as a data stream, the video lost (writer.check_output's question)
        assert [mpegts_holds(c, m2ts=m2ts) for c in ("vp9", "ffv1", "prores", "dnxhd")] == [False] * 4


@pytest.mark.parametrize("ext, fmt", [(".h264", "h264"), (".ts", "mpegts")])
@pytest.mark.parametrize("reuse", ["exact", "near"])
def test_a_size_change_mid_stream_is_one_line_and_leaves_nothing(tmp_path, capfd, near_identity_file, ext, fmt, reuse):
    # two recordings of different sizes joined with cat (a new SPS): refused where met, the temporary file removed;
    # a trim that ends before the change is upscaled (a raw stream's too: its frame times are read without the planes)
    a = media.make_clip(tmp_path / f"a{ext}", size=(64, 48), frames=6, format=fmt)
    b = media.make_clip(tmp_path / f"b{ext}", size=(48, 32), frames=6, format=fmt, seed=3)
    src = tmp_path / f"joined{ext}"
    src.write_bytes(a.read_bytes() + b.read_bytes())
    dst = tmp_path / "out.mkv"
    r = _upscale(capfd, near_identity_file, src, dst, "--reuse", reuse)
    assert r.returncode == 3, r.stderr
    assert r.stderr.strip().splitlines() == [
        f"esrgan-video: error: {src}: the video changes from 64x48 yuv420p to 48x32 yuv420p at frame 6; "
        "mid-stream format changes are not supported"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([a.name, b.name, src.name])
    r = _upscale(capfd, near_identity_file, src, dst, "--reuse", reuse, "--end", "5f")
    assert r.returncode == 0, r.stderr
    with av.open(str(dst)) as c:
        assert sum(1 for _ in c.decode(video=0)) == 5


@pytest.mark.parametrize("ext", [".mkv", ".mp4"])
@pytest.mark.parametrize("start", ["0.30", "0.39", "0.42"])
def test_a_trimmed_avi_keeps_its_audio_in_sync(tmp_path, capfd, near_identity_file, ext, start):
    # An AVI's video ticks once a frame (1/25) and its MP2/MP3 audio once a packet (24 ms): the trim's shift was
    # rounded to each grid on its own, so a --start between frames moved the audio up to 32 ms against the video
    src = media.make_clip(tmp_path / "in.avi", codec="mpeg4", frames=30, audio=[media.AudioTrack(codec="mp2")])
    with av.open(str(src)) as c:
        src_audio = {bytes(p): p.pts * p.time_base for p in c.demux(c.streams.audio[0]) if p.size}
    dst = tmp_path / f"out{ext}"
    r = _upscale(capfd, near_identity_file, src, dst, "--start", start)
    assert r.returncode == 0, r.stderr
    with av.open(str(dst)) as c:
        times = sorted(f.pts * f.time_base for f in c.decode(video=0))
    with av.open(str(dst)) as c:
        t, payload = next((p.pts * p.time_base, bytes(p)) for p in c.demux(c.streams.audio[0]) if p.size)
    first = Fraction(30 - len(times), 25)  # the source frame the output starts with (an AVI's frames: 1/25 apart)
    assert first >= Fraction(start) > first - Fraction(1, 25)
    assert abs((t - times[0]) - (src_audio[payload] - first)) <= Fraction(1, 1000)  # Matroska stores ms


@pytest.mark.parametrize("codec, inext", [("subrip", ".mkv"), ("webvtt", ".mkv"), ("mov_text", ".mp4")])
def test_text_subtitles_into_nut_become_ass(tmp_path, capfd, near_identity_file, codec, inext):
    # NUT (the pipe format of `esrgan-video in.mkv - --format nut | ffplay -`) takes only ASS of the text codecs:
    # SubRip and WebVTT were refused ('the .nut container cannot hold the subtitle stream #1 (srt)'), and so was
    # mov_text, at the header, with a suggestion of .mp4
    src = media.make_clip(tmp_path / f"in{inext}", frames=5, subtitles=[media.SubtitleTrack(codec, language="eng")])
    dst = tmp_path / "out.nut"
    r = _upscale(capfd, near_identity_file, src, dst)
    assert r.returncode == 0, r.stderr
    with av.open(str(src)) as c:
        name = c.streams.subtitles[0].codec_context.name
    assert f"{dst}: text subtitle stream #1 ({name}) converted to ass (the .nut container does not take {name})" \
        in r.stderr
    with av.open(str(dst)) as c:
        st = c.streams.subtitles[0]
        assert (st.codec_context.name, st.metadata.get("language")) == ("ssa", "eng")
        texts = [cue.ass.split(b",", 8)[-1] for pkt in c.demux(st) if pkt.size for cue in st.codec_context.decode(pkt)]
    assert texts == [b"Hello", b"World"]
