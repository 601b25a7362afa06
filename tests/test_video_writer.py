"""video.writer: lossless round trips, timestamps, byte-for-byte stream copy, trimming, atomic output, refusals."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from esrgan_video.frames.color import ColorSpec
from esrgan_video.errors import OptionError, OutputError
from esrgan_video.video.reader import open_input
from esrgan_video.video.writer import OutputVideo, container_suggestion, partial_path

from media import AudioTrack, Chapter, SubtitleTrack, frame_planes, make_clip

VFR_PTS = [0, 40, 90, 100, 250, 260, 400, 433, 600]


@pytest.fixture(scope="session")
def rich(tmp_path_factory) -> Path:
    """VFR Matroska with two audio tracks, ASS + SRT subtitles, an attachment, chapters, metadata, rotation, SAR."""
    d = tmp_path_factory.mktemp("writer_src")
    return make_clip(
        d / "rich.mkv", pts=VFR_PTS,
        audio=[AudioTrack(), AudioTrack(codec="flac", layout="mono", language="fra", title="Commentary")],
        subtitles=[SubtitleTrack("ass", language="eng"),
                   SubtitleTrack("subrip", events=((0.05, 0.2, "one"), (0.3, 0.5, "two")), language="deu")],
        chapters=[Chapter(0, 0.3, "Intro"), Chapter(0.3, 0.65, "Main")],
        metadata={"title": "Rich clip", "comment": "keep me"},
        video_metadata={"language": "jpn"},
        attachments=[("font.ttf", "application/x-truetype-font", b"not really a font" * 7)],
        rotation=90, sar=Fraction(4, 3),
    )


def copy_through(src: Path, dst: Path, *, start=None, end=None, **kw) -> OutputVideo:
    """Decode src and write every frame unchanged (no upscaling): the writer's own round trip."""
    with open_input(src) as inp:
        with OutputVideo(dst, template=inp, start=start, end=end, **kw) as out:
            for f in inp.frames(start=start, end=end):
                out.write(f.planes, f.pts)
    return out


def packets(path: Path) -> dict[int, list[tuple[int | None, bytes]]]:
    """Packets of every stream: (pts, bytes), in file order."""
    out: dict[int, list] = {}
    with av.open(str(path)) as c:
        for p in c.demux():
            if p.size:
                out.setdefault(p.stream.index, []).append((p.pts, bytes(p)))
    return out


def decoded(path: Path):
    with open_input(path) as inp:
        return inp.info, list(inp.frames())


# -- lossless round trips --------------------------------------------------------------------------


@pytest.mark.parametrize("codec,pix_fmt,size,options", [
    ("ffv1", "yuv420p10le", (64, 48), {}),
    ("ffv1", "gbrp10le", (64, 48), {}),
    ("libx264", "yuv444p", (63, 47), {"qp": "0"}),
    ("ffv1", "gray", (64, 48), {}),
])
def test_lossless_round_trip_is_exact(tmp_path, codec, pix_fmt, size, options):
    src = make_clip(tmp_path / "src.mkv", codec=codec, pix_fmt=pix_fmt, size=size, pts=VFR_PTS, options=options)
    out = copy_through(src, tmp_path / "out.mkv", codec=codec, options=options)
    assert out.pix_fmt == pix_fmt and out.notices == []
    info, frames = decoded(tmp_path / "out.mkv")
    assert info.pix_fmt == pix_fmt and (info.width, info.height) == size
    assert [f.pts for f in frames] == VFR_PTS
    for f in frames:
        for got, want in zip(f.planes, frame_planes(pix_fmt, size, f.index)):
            np.testing.assert_array_equal(got, want)


def test_ten_bit_stays_ten_bit_with_tags_and_hdr(tmp_path):
    hdr = ("log-level=error:master-display=G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)"
           "L(10000000,1):max-cll=1000,400")
    src = make_clip(tmp_path / "hdr.mkv", codec="libx265", pix_fmt="yuv420p10le", frames=4, matrix=9, primaries=9,
                    transfer=16, full_range=False, options={"x265-params": hdr})
    with open_input(src) as inp:
        spec = inp.info.color
        out = copy_through(src, tmp_path / "out.mkv", codec="libx265", color=spec,
                           options={"x265-params": "log-level=error"})
    assert out.pix_fmt == "yuv420p10le"
    info, frames = decoded(tmp_path / "out.mkv")
    assert info.pix_fmt == "yuv420p10le" and frames[0].planes[0].dtype == np.uint16
    c = info.color
    assert (c.matrix, c.primaries, c.transfer, c.full_range) == (9, 9, 16, False)
    assert info.hdr is not None and info.hdr.max_cll == 1000 and info.hdr.max_luminance == 1000


def test_hdr_with_libx264_gives_a_notice(tmp_path):
    src = make_clip(tmp_path / "hdr.mkv", codec="libx265", pix_fmt="yuv420p10le", frames=2, transfer=16,
                    options={"x265-params": "log-level=error:max-cll=1000,400"})
    out = copy_through(src, tmp_path / "out.mkv", codec="libx264")
    assert any("HDR" in n for n in out.notices)


def test_colour_tags_written_from_spec(tmp_path):
    src = make_clip(tmp_path / "src.mp4", frames=3)
    spec = ColorSpec(matrix=1, primaries=1, transfer=1, full_range=True, chroma_location="left")
    copy_through(src, tmp_path / "out.mp4", color=spec)
    with av.open(str(tmp_path / "out.mp4")) as c:
        f = next(c.decode(video=0))
    assert (f.colorspace, f.color_primaries, f.color_trc, f.color_range) == (1, 1, 1, 2)


# -- timestamps ------------------------------------------------------------------------------------


def test_vfr_pts_kept_with_libx264(tmp_path, rich):
    copy_through(rich, tmp_path / "out.mkv", codec="libx264", preset="ultrafast")
    info, frames = decoded(tmp_path / "out.mkv")
    assert [f.pts for f in frames] == VFR_PTS
    assert info.time_base == Fraction(1, 1000)


def test_mp4_to_mkv_rounds_to_milliseconds(tmp_path):
    pts = [0, 7, 19, 20, 50, 97]  # 1/90 s units: not whole milliseconds
    src = make_clip(tmp_path / "src.mp4", pts=pts, time_base=Fraction(1, 90))
    with open_input(src) as inp:
        src_times = [f.time for f in inp.frames()]
    copy_through(src, tmp_path / "out.mkv")
    _, frames = decoded(tmp_path / "out.mkv")
    assert len(frames) == len(pts)
    assert all(abs(f.time - t) <= Fraction(1, 2000) for f, t in zip(frames, src_times))
    copy_through(src, tmp_path / "out.mp4")  # same family: exact
    _, frames = decoded(tmp_path / "out.mp4")
    assert [f.time for f in frames] == src_times


# -- stream copy -----------------------------------------------------------------------------------


def test_other_streams_copied_byte_for_byte(tmp_path, rich):
    out = copy_through(rich, tmp_path / "out.mkv", codec="ffv1")
    assert all("sample aspect ratio" in n for n in out.notices)  # FFV1 in Matroska: SAR not writable
    a, b = packets(rich), packets(tmp_path / "out.mkv")
    with av.open(str(rich)) as ci, av.open(str(tmp_path / "out.mkv")) as co:
        kinds_in = [(s.type, s.codec_context.name if s.codec_context else None) for s in ci.streams]
        kinds_out = [(s.type, s.codec_context.name if s.codec_context else None) for s in co.streams]
        assert kinds_out[1:] == kinds_in[1:]
        for si, so in zip(ci.streams, co.streams):
            if si.type in ("audio", "subtitle"):
                assert [p for _, p in b[so.index]] == [p for _, p in a[si.index]], si
                assert [t for t, _ in b[so.index]] == [t for t, _ in a[si.index]], si
            if si.type != "video":
                assert so.metadata.get("language") == si.metadata.get("language")
                assert so.metadata.get("title") == si.metadata.get("title")
        att_in = [s for s in ci.streams if s.type == "attachment"]
        att_out = [s for s in co.streams if s.type == "attachment"]
        assert len(att_out) == 1 and att_out[0].data == att_in[0].data
        assert att_out[0].metadata["filename"] == "font.ttf"
        assert co.streams.video[0].metadata.get("language") == "jpn"
        assert co.metadata["title"] == "Rich clip" and co.metadata.get("COMMENT") == "keep me"
        assert [(c["start"], c["end"], c["metadata"]) for c in co.chapters()] == \
               [(c["start"], c["end"], c["metadata"]) for c in ci.chapters()]


def test_rotation_and_sar_kept(tmp_path, rich):
    copy_through(rich, tmp_path / "out.mkv", codec="libx264", preset="ultrafast")
    info, _ = decoded(tmp_path / "out.mkv")
    assert info.rotation == 90
    assert info.sample_aspect_ratio == Fraction(4, 3)


def test_packets_interleave(tmp_path, rich):
    """Copied packets go out near their time, not all at the start or end."""
    copy_through(rich, tmp_path / "out.mkv")
    times = []
    with av.open(str(tmp_path / "out.mkv")) as c:
        for p in c.demux():
            if p.size and p.dts is not None and p.stream.type in ("video", "audio"):
                times.append(float(p.dts * p.time_base))
    assert max(max(times[:i + 1]) - t for i, t in enumerate(times)) < 0.2


def test_copied_packets_follow_the_video(tmp_path, rich):
    """Other streams are read as the video advances (bounded memory), not all at the start or the end."""
    with av.open(str(rich)) as c:
        timed = [(float(p.pts * p.time_base), p.stream.index) for p in c.demux() if p.size and p.stream.type != "video"]
    seen = []
    with open_input(rich) as inp:
        with OutputVideo(tmp_path / "out.mkv", template=inp) as out:
            for f in inp.frames():
                out.write(f.planes, f.pts)
                seen.append((float(f.time), out.copied_packets))
    assert out.copied_packets == len(timed)
    for t, n in seen:  # after the frame at t: every packet due by t, and none much later
        assert sum(1 for pt, _ in timed if pt <= t) <= n <= sum(1 for pt, _ in timed if pt <= t + 0.1)


def test_no_copy(tmp_path, rich):
    copy_through(rich, tmp_path / "out.mkv", copy_streams=False)
    with av.open(str(tmp_path / "out.mkv")) as c:
        assert [s.type for s in c.streams] == ["video"]


def test_stream_container_mismatch_suggests_mkv(tmp_path, rich):
    # MP4 takes the ASS/SRT subtitles as mov_text now (#14.10) and leaves the font attachment out, saying so
    out = copy_through(rich, tmp_path / "out.mp4")
    assert any("converted to mov_text" in n for n in out.notices)
    assert any("font.ttf" in n and "not copied" in n for n in out.notices)
    assert container_suggestion(["ass", "h264"]) == ".mkv"
    assert container_suggestion(["mov_text", "h264"]) == ".mp4"


def test_mov_text_copied_within_mp4_and_converted_for_mkv(tmp_path):
    src = make_clip(tmp_path / "src.mp4", frames=6, audio=[AudioTrack()],
                    subtitles=[SubtitleTrack("mov_text", language="eng")])
    copy_through(src, tmp_path / "out.mp4")
    cues = []
    for path in (src, tmp_path / "out.mp4"):
        with av.open(str(path)) as c:
            assert c.streams.subtitles[0].codec_context.name == "mov_text"
            assert c.streams.subtitles[0].metadata.get("language") == "eng"
            cues.append([(p.pts, bytes(p)) for p in c.demux(subtitles=0) if p.size > 2])  # cues, not gap fillers
    assert cues[0] == cues[1] and len(cues[0]) == 2
    # Matroska takes no mov_text: the cues become SubRip (was a refusal; "nothing lost" keeps them), said once
    out = copy_through(src, tmp_path / "out.mkv")
    assert [n for n in out.notices if "converted" in n] == [
        f"{tmp_path / 'out.mkv'}: text subtitle stream #2 (mov_text) converted to subrip (the .mkv container does not "
        "take mov_text)"]
    with av.open(str(tmp_path / "out.mkv")) as c:
        st = c.streams.subtitles[0]
        assert st.codec_context.name == "srt" and st.metadata.get("language") == "eng"
        got = [(round(float(p.pts * p.time_base), 3), [x.dialogue for x in st.codec_context.decode(p)])
               for p in c.demux(st) if p.size]
    assert got == [(0.0, [b"Hello"]), (0.2, [b"World"])]


def test_video_codec_container_mismatch(tmp_path):
    src = make_clip(tmp_path / "src.mkv", frames=2)
    with open_input(src) as inp:
        with pytest.raises(OutputError, match=r"out\.webm.*libx264.*\.mkv"):
            OutputVideo(tmp_path / "out.webm", template=inp, codec="libx264")
    assert [p.name for p in tmp_path.iterdir()] == ["src.mkv"]


# -- trimming --------------------------------------------------------------------------------------


def test_trim_by_time_shifts_every_stream(tmp_path, rich):
    start, end = Fraction(9, 100), Fraction(26, 100)
    copy_through(rich, tmp_path / "out.mkv", start=start, end=end, codec="ffv1")
    _, frames = decoded(tmp_path / "out.mkv")
    kept = [p for p in VFR_PTS if start * 1000 <= p < end * 1000]
    assert kept == [90, 100, 250]
    got = [f.pts for f in frames]
    off = got[0]
    assert [p - off for p in got] == [p - kept[0] for p in kept]
    # Audio packets that straddle the cut are kept whole, so they start before the first frame; Matroska
    # cannot store negative times, so the muxer moves every stream later by the largest such overhang.
    overhang = 0
    for track in (0, 1):
        with av.open(str(rich)) as ci:
            src_audio = [(p.pts, bytes(p), p.duration) for p in ci.demux(audio=track) if p.size]
        want = [(t, data) for t, data, dur in src_audio if t + dur > 90 and t < 260]
        with av.open(str(tmp_path / "out.mkv")) as co:
            out_audio = [(p.pts, bytes(p)) for p in co.demux(audio=track) if p.size]
        assert [d for _, d in out_audio] == [d for _, d in want]
        assert [t - out_audio[0][0] for t, _ in out_audio] == [t - want[0][0] for t, _ in want]
        assert out_audio[0][0] - off == want[0][0] - 90  # the same shift as the video: sync kept
        overhang = max(overhang, 90 - want[0][0])
    assert off == overhang
    with av.open(str(tmp_path / "out.mkv")) as co:
        chapters = co.chapters()
    assert [c["metadata"]["title"] for c in chapters] == ["Intro"]


def test_trim_by_frame_index(tmp_path, rich):
    copy_through(rich, tmp_path / "out.mkv", start=3, end=7, codec="ffv1")
    _, frames = decoded(tmp_path / "out.mkv")
    assert len(frames) == 4
    got = [f.pts - frames[0].pts for f in frames]
    assert got == [p - VFR_PTS[3] for p in VFR_PTS[3:7]]
    with open_input(rich) as inp:
        src = list(inp.frames(start=3, end=7))
    for f, s in zip(frames, src):  # FFV1 output: exactly the decoded source frames 3..6
        for got, want in zip(f.planes, s.planes):
            np.testing.assert_array_equal(got, want)


# -- files: atomic, refusals -----------------------------------------------------------------------


class Boom(RuntimeError):
    pass


def _fail_midway(src: Path, dst: Path, **kw):
    with open_input(src) as inp:
        with OutputVideo(dst, template=inp, **kw) as out:
            for f in inp.frames():
                out.write(f.planes, f.pts)
                if f.index == 3:
                    raise Boom()


def test_failure_leaves_nothing(tmp_path, rich):
    dst = tmp_path / "out.mkv"
    with pytest.raises(Boom):
        _fail_midway(rich, dst)
    assert not dst.exists()
    assert sorted(os.listdir(tmp_path)) == []


def test_failure_keeps_partial_when_asked(tmp_path, rich):
    dst = tmp_path / "out.mkv"
    with pytest.raises(Boom):
        _fail_midway(rich, dst, keep_partial=True)
    assert not dst.exists()
    part = partial_path(dst)
    assert part.exists() and part.stat().st_size > 0 and part.name.startswith(".")


def test_failure_keeps_existing_target(tmp_path, rich):
    dst = tmp_path / "out.mkv"
    dst.write_bytes(b"previous")
    with pytest.raises(Boom):
        _fail_midway(rich, dst, overwrite=True)
    assert dst.read_bytes() == b"previous"


def test_output_is_input_refused(tmp_path, rich):
    with open_input(rich) as inp:
        with pytest.raises(OutputError, match="is the input"):
            OutputVideo(rich, template=inp, overwrite=True)
        link = tmp_path / "link.mkv"
        link.symlink_to(rich)
        with pytest.raises(OutputError, match="is the input"):
            OutputVideo(link, template=inp, overwrite=True)
        with pytest.raises(OutputError, match="is the input"):
            OutputVideo(rich.parent / ".." / rich.parent.name / rich.name, template=inp, overwrite=True)


def test_existing_output_needs_overwrite(tmp_path, rich):
    dst = tmp_path / "out.mkv"
    dst.write_bytes(b"old")
    with open_input(rich) as inp:
        with pytest.raises(OutputError, match="already exists"):
            OutputVideo(dst, template=inp)
    assert dst.read_bytes() == b"old"
    copy_through(rich, dst, overwrite=True, copy_streams=False)
    assert dst.stat().st_size > 100 and decoded(dst)[1]


def _can_create_in(folder: Path) -> bool:
    probe = folder / f".probe-{os.getpid()}"
    try:
        probe.open("xb").close()
    except OSError:
        return False
    probe.unlink()
    return True


def test_output_place_errors_say_what_is_wrong(tmp_path, rich):
    """Where the output cannot go, one line says why, before anything is encoded: an existing file names the
    Python API's ``overwrite=True`` (the command line its flag: ``tests/test_output_place.py``); a "directory" that
    is a file says so (not that it does not exist); a directory where no file can be created (``/sys``, even for root) says that, not "cannot set up the
    libx264 encoder ([Errno 13] Permission denied)" from FFmpeg opening the file at ``start_encoding``."""
    (tmp_path / "exists.mkv").write_bytes(b"old")
    (tmp_path / "afile").write_text("not a folder")
    with open_input(rich) as inp:
        with pytest.raises(OutputError, match=r"already exists \(pass overwrite=True to replace it\)"):
            OutputVideo(tmp_path / "exists.mkv", template=inp)
        for dst in (tmp_path / "afile" / "out.mkv", tmp_path / "afile" / "sub" / "out.mkv"):
            with pytest.raises(OutputError) as e:
                OutputVideo(dst, template=inp)
            assert str(e.value) == f"{dst}: {tmp_path / 'afile'} is not a directory"
        sys_dir = Path("/sys")
        if sys_dir.is_dir() and not _can_create_in(sys_dir):  # sysfs refuses new files, root's too (Linux)
            with pytest.raises(OutputError) as e:
                OutputVideo(sys_dir / "out.mkv", template=inp)
            assert str(e.value) == "/sys/out.mkv: cannot create a file in /sys (Permission denied)"
            assert not any(p.name.startswith(".out.") for p in sys_dir.iterdir())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "exists.mkv"]


def test_bad_options_refused(tmp_path, rich):
    with open_input(rich) as inp:
        with pytest.raises(OptionError, match="crf"):  # a command-line error (exit 2)
            OutputVideo(tmp_path / "a.mkv", template=inp, codec="ffv1", crf=18)
        with pytest.raises(OutputError, match="cannot write pixel format"):
            OutputVideo(tmp_path / "b.mkv", template=inp, codec="libx264", pix_fmt="gbrp")
        with pytest.raises(OutputError, match="multiple of 2x2"):
            OutputVideo(tmp_path / "c.mkv", template=inp, size=(65, 48))
        with pytest.raises(OutputError, match="unknown video encoder"):
            OutputVideo(tmp_path / "d.mkv", template=inp, codec="nope264")
        with pytest.raises(OutputError, match="does not exist"):
            OutputVideo(tmp_path / "missing" / "e.mkv", template=inp)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_write_checks_planes_and_order(tmp_path, rich):
    with open_input(rich) as inp:
        out = OutputVideo(tmp_path / "out.mkv", template=inp)
        frames = list(inp.frames(end=2))
        with pytest.raises(ValueError, match="shape"):
            out.write([p[:-2] for p in frames[0].planes], frames[0].pts)
        out.write(frames[1].planes, frames[1].pts)
        with pytest.raises(ValueError, match="increase"):
            out.write(frames[0].planes, frames[0].pts)
        out.abort()
    assert not (tmp_path / "out.mkv").exists()


def test_wider_integer_planes_accepted(tmp_path):
    """The colour module hands back int16/int32 planes: they are cast to the format's sample type."""
    src = make_clip(tmp_path / "src.mkv", codec="ffv1", frames=3)
    with open_input(src) as inp:
        with OutputVideo(tmp_path / "out.mkv", template=inp, codec="ffv1") as out:
            for f in inp.frames():
                out.write([p.astype(np.int32) for p in f.planes], f.pts)
    _, frames = decoded(tmp_path / "out.mkv")
    for f in frames:
        for got, want in zip(f.planes, frame_planes("yuv420p", (64, 48), f.index)):
            np.testing.assert_array_equal(got, want)


def test_upscaled_size_written(tmp_path):
    """Frames of another size than the input's (what the pipeline writes) keep the input's timestamps."""
    src = make_clip(tmp_path / "src.mkv", pts=VFR_PTS[:4])
    with open_input(src) as inp:
        with OutputVideo(tmp_path / "out.mp4", template=inp, size=(128, 96), crf=20, preset="ultrafast") as out:
            for f in inp.frames():
                out.write([np.repeat(np.repeat(p, 2, 0), 2, 1) for p in f.planes], f.pts)
    info, frames = decoded(tmp_path / "out.mp4")
    assert (info.width, info.height) == (128, 96)
    assert [f.time for f in frames] == [Fraction(p, 1000) for p in VFR_PTS[:4]]


# -- real clip ---------------------------------------------------------------------------------------


def test_real_clip_six_channel_aac_copied(tmp_path):
    from esrgan_video.samples import sample_clip

    src = sample_clip("bigbuckbunny.mp4", progress=False)
    dst = tmp_path / "bbb.mkv"
    copy_through(src, dst, end=6, preset="ultrafast", crf=30)
    _, frames = decoded(dst)
    assert len(frames) == 6
    with av.open(str(src)) as ci, av.open(str(dst)) as co:
        ai, ao = ci.streams.audio[0], co.streams.audio[0]
        assert ao.codec_context.channels == ai.codec_context.channels == 6
        out_audio = [bytes(p) for p in co.demux(ao) if p.size]
        in_audio = [bytes(p) for p in ci.demux(ai) if p.size]
    assert out_audio and out_audio == in_audio[:len(out_audio)]
    assert 8 <= len(out_audio) <= 14  # 6 frames at 24 fps = 0.25 s of 48 kHz AAC (1024-sample packets)


def test_prores_mov_round_trip_keeps_ten_bit_422(tmp_path):
    src = make_clip(tmp_path / "src.mov", codec="prores_ks", pix_fmt="yuv422p10le", frames=4)
    out = copy_through(src, tmp_path / "out.mov", codec="prores_ks")
    assert out.pix_fmt == "yuv422p10le" and out.notices == []
    info, frames = decoded(tmp_path / "out.mov")
    assert info.pix_fmt == "yuv422p10le" and info.codec == "prores"
    assert [f.time for f in frames] == [Fraction(i, 25) for i in range(4)]
    x264 = copy_through(src, tmp_path / "out.mkv")  # default libx264 keeps 10-bit 4:2:2
    assert x264.pix_fmt == "yuv422p10le" and x264.notices == []


def test_rgb_to_libx264_gives_notice_and_yuv444(tmp_path):
    src = make_clip(tmp_path / "src.mkv", codec="ffv1", pix_fmt="gbrp10le", frames=2)
    with open_input(src) as inp:
        spec = ColorSpec(matrix=1, primaries=1, transfer=1, full_range=False)
        with OutputVideo(tmp_path / "out.mkv", template=inp, color=spec) as out:
            assert out.pix_fmt == "yuv444p10le" and any("ffv1" in n for n in out.notices)
            out.abort()
        with pytest.raises(ValueError, match="matrix 0"):
            OutputVideo(tmp_path / "bad.mkv", template=inp, pix_fmt="yuv444p", color=ColorSpec(matrix=0))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src.mkv"]


def test_without_template(tmp_path):
    dst = tmp_path / "plain.mp4"
    with OutputVideo(dst, codec="libx264", pix_fmt="yuv420p", size=(64, 48), time_base=Fraction(1, 1000),
                     rate=Fraction(25), color=ColorSpec(matrix=1, primaries=1, transfer=1, full_range=False)) as out:
        for i, pts in enumerate([0, 40, 100]):
            out.write(frame_planes("yuv420p", (64, 48), i), pts)
    info, frames = decoded(dst)
    assert [f.time for f in frames] == [Fraction(0), Fraction(1, 25), Fraction(1, 10)]
    assert (info.color.matrix, info.color.full_range) == (1, False)


@pytest.mark.parametrize("suffix", [".mkv", ".mp4", ".nut", ".webm"])
def test_the_same_run_writes_the_same_bytes(tmp_path, capfd, near_identity_file, suffix):
    """Outputs are opened ``bitexact`` (encoder_formats.muxer_options): Matroska wrote random segment/track UIDs and
    the date, so two runs of one command differed in their bytes (batch's determinism)."""
    from esrgan_video.testing import run_cli

    src = make_clip(tmp_path / "in.mkv", codec="ffv1", size=(16, 8), frames=2)
    outs = [tmp_path / f"a{suffix}", tmp_path / f"b{suffix}"]
    for dst in outs:
        p = run_cli(capfd, src, dst, "--model", near_identity_file(1), "-q")
        assert p.returncode == 0, p.stderr
    assert outs[0].read_bytes() == outs[1].read_bytes()


@pytest.mark.parametrize("width", [40, 48])
def test_libx265_frames_33_to_63_px_wide_are_refused_in_one_line(tmp_path, near_identity_file, width):
    """x265 4.3 (PyAV's build) corrupted its heap on frames 40 or 48 px wide: `esrgan-video IN OUT --codec libx265
    --size 40x` died with SIGSEGV/SIGABRT (exit 139/134, no message, a partial file left). Now exit 6 in one line
    before any file is opened. In a child process: the failure was the interpreter dying."""
    import subprocess
    import sys

    from media import default_signals

    src = make_clip(tmp_path / "in.mkv", size=(64, 36), frames=25)
    dst = tmp_path / "out.mkv"
    run = subprocess.run([sys.executable, "-m", "esrgan_video", str(src), str(dst), "--model",
                          str(near_identity_file(4)), "--codec", "libx265", "--size", f"{width}x", "-q"],
                         capture_output=True, text=True, timeout=300, preexec_fn=default_signals)
    assert run.returncode == OutputError.exit_code, (run.returncode, run.stderr[-2000:])
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "libx265 cannot be given frames 33 to 63 px wide" in lines[0], run.stderr
    assert "--codec libx264" in lines[0]
    assert os.listdir(tmp_path) == ["in.mkv"]
