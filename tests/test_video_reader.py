"""video.reader: native planes, timestamps, stream facts and bad input, on clips made with PyAV (tests/media.py)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from esrgan_video.errors import InputError
from esrgan_video.video.reader import open_input

from media import (
    AudioTrack,
    Chapter,
    SubtitleTrack,
    frame_planes,
    make_audio_only,
    make_clip,
    make_corrupt,
    make_empty,
    make_not_media,
    make_truncated,
)

VFR_PTS = [0, 40, 90, 100, 250, 260, 400, 433, 600]
HDR_PARAMS = ("log-level=error:master-display=G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)"
              "L(10000000,1):max-cll=1000,400")


@pytest.fixture(scope="session")
def clips(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("reader_clips")
    return {
        "vfr": make_clip(d / "vfr.mkv", pts=VFR_PTS, audio=[AudioTrack()], subtitles=[SubtitleTrack("ass")],
                         chapters=[Chapter(0, 0.3, "Intro"), Chapter(0.3, 0.6, "Main")],
                         metadata={"title": "VFR clip"}, video_metadata={"language": "jpn", "title": "Picture"},
                         rotation=90, sar=Fraction(4, 3)),
        "hevc10": make_clip(d / "hevc10.mkv", codec="libx265", pix_fmt="yuv420p10le", frames=6,
                            matrix=9, primaries=9, transfer=16, full_range=False, options={"x265-params": HDR_PARAMS}),
        "odd444": make_clip(d / "odd444.mkv", pix_fmt="yuv444p", size=(63, 47), frames=5, options={"qp": "0"}),
        "full709": make_clip(d / "full709.mp4", frames=5, matrix=1, primaries=1, transfer=1, full_range=True,
                             chroma_location=1),
        "prores": make_clip(d / "prores.mov", codec="prores_ks", pix_fmt="yuv422p10le", frames=4),
        "rgb": make_clip(d / "rgb.mkv", codec="ffv1", pix_fmt="gbrp10le", frames=4),
        "ffv1_420": make_clip(d / "ffv1_420.mkv", codec="ffv1", pix_fmt="yuv420p", size=(63, 47), frames=4),
        "one": make_clip(d / "one.mp4", frames=1),
        "interlaced": make_clip(d / "interlaced.mkv", interlaced=True, frames=4),
    }


def _oracle_frames(path: Path) -> list[av.VideoFrame]:
    with av.open(str(path)) as c:
        return list(c.decode(video=0))


# -- planes and timestamps -------------------------------------------------------------------------


@pytest.mark.parametrize("name,pix_fmt,exact", [
    ("odd444", "yuv444p", True),       # libx264 qp 0: lossless
    ("rgb", "gbrp10le", True),          # FFV1: lossless RGB
    ("ffv1_420", "yuv420p", True),      # FFV1 4:2:0 with odd size (ceil-divided chroma)
    ("hevc10", "yuv420p10le", False),
    ("prores", "yuv422p10le", False),
])
def test_planes_are_the_native_planes(clips, name, pix_fmt, exact):
    with open_input(clips[name]) as inp:
        assert inp.info.pix_fmt == pix_fmt
        frames = list(inp.frames())
    size = (inp.info.width, inp.info.height)
    assert len(frames) == len(_oracle_frames(clips[name]))
    for f in frames:
        src = frame_planes(pix_fmt, size, f.index)
        assert [p.shape for p in f.planes] == [p.shape for p in src]
        assert [p.dtype for p in f.planes] == [p.dtype for p in src]
        assert f.fmt == pix_fmt
        for got, want in zip(f.planes, src):
            assert got.flags.c_contiguous
            if exact:
                np.testing.assert_array_equal(got, want)
            else:  # lossy: close to the source, far from anything else
                assert np.abs(got.astype(int) - want.astype(int)).mean() < 0.02 * (want.max() + 1)


def test_planes_match_pyav_to_ndarray(clips):
    """The line padding is dropped correctly: compare with PyAV's own conversion of the same frames."""
    with open_input(clips["vfr"]) as inp:
        frames = list(inp.frames())
    ref = _oracle_frames(clips["vfr"])
    assert [f.pts for f in frames] == [r.pts for r in ref]
    for f, r in zip(frames, ref):
        assert r.planes[0].line_size > r.width  # the test means something only with padding
        stacked = r.to_ndarray()  # yuv420p: Y rows, then U and V rows packed two per line
        h = r.height
        np.testing.assert_array_equal(f.planes[0], stacked[:h])
        np.testing.assert_array_equal(f.planes[1].reshape(-1), stacked[h:h + h // 4].reshape(-1))
        np.testing.assert_array_equal(f.planes[2].reshape(-1), stacked[h + h // 4:].reshape(-1))
    with open_input(clips["odd444"]) as inp:
        got = list(inp.frames())
    for f, r in zip(got, _oracle_frames(clips["odd444"])):
        np.testing.assert_array_equal(np.stack(f.planes), r.to_ndarray())


def test_vfr_timestamps_and_indices(clips):
    with open_input(clips["vfr"]) as inp:
        run = inp.frames()
        frames = list(run)
        info = inp.info
    assert info.time_base == Fraction(1, 1000)
    assert [f.pts for f in frames] == VFR_PTS
    assert [f.index for f in frames] == list(range(len(VFR_PTS)))
    assert [f.time for f in frames] == [Fraction(p, 1000) for p in VFR_PTS]
    assert run.stats.lost_frames == 0 and not run.stats.damaged and not run.stats.seeked
    assert inp.frame_times() == [Fraction(p, 1000) for p in VFR_PTS]


def test_mp4_timestamps_in_stream_time_base(clips):
    with open_input(clips["full709"]) as inp:
        frames = list(inp.frames())
        tb = inp.info.time_base
    assert tb != Fraction(1, 1000)
    assert [f.time for f in frames] == [Fraction(i, 25) for i in range(5)]
    assert inp.info.frame_count == 5 and inp.info.average_rate == 25


@pytest.mark.parametrize("start,end,want", [
    (2, 5, [90, 100, 250]),                                 # frame indices, end exclusive
    (Fraction(1, 10), Fraction(26, 100), [100, 250]),       # seconds, [start, end)
    (0.25, None, [250, 260, 400, 433, 600]),
    (None, 1, [0]),
    (7, None, [433, 600]),
])
def test_frames_start_end(clips, start, end, want):
    with open_input(clips["vfr"]) as inp:
        frames = list(inp.frames(start=start, end=end))
        assert [f.pts for f in frames] == want
        assert [f.index for f in frames] == [VFR_PTS.index(p) for p in want]
        assert inp.info.frame_count_in(start, end) is not None


def test_resolve_range(clips):
    with open_input(clips["vfr"]) as inp:
        assert inp.resolve_range(2, 5) == (Fraction(90, 1000), Fraction(260, 1000))
        assert inp.resolve_range(Fraction(1, 10), None) == (Fraction(1, 10), None)
        with pytest.raises(ValueError, match="start"):
            inp.resolve_range(-1, None)


def test_missing_timestamps_are_filled(tmp_path):
    """A raw H.264 stream has no packet timestamps: frames still get increasing, evenly spaced times."""
    raw = make_clip(tmp_path / "raw.h264", frames=6, format="h264")
    with av.open(str(raw)) as c:
        assert all(p.pts is None for p in c.demux(video=0))
    with open_input(raw) as inp:
        times = [f.time for f in inp.frames()]
    assert times == [Fraction(i, 25) for i in range(6)]


def test_one_frame_clip(clips):
    with open_input(clips["one"]) as inp:
        frames = list(inp.frames())
        assert inp.info.frame_count == 1
    assert len(frames) == 1 and frames[0].pts == 0


# -- stream facts ----------------------------------------------------------------------------------


def test_color_spec_from_tags(clips):
    with open_input(clips["hevc10"]) as inp:
        c = inp.info.color
    assert (c.matrix, c.primaries, c.transfer, c.full_range) == (9, 9, 16, False)
    with open_input(clips["full709"]) as inp:
        c = inp.info.color
        assert inp.info.pix_fmt in ("yuvj420p", "yuv420p")
    assert (c.matrix, c.primaries, c.transfer, c.full_range, c.chroma_location) == (1, 1, 1, True, "left")
    with open_input(clips["odd444"]) as inp:
        c = inp.info.color
    assert (c.matrix, c.primaries, c.transfer, c.full_range) == (2, 2, 2, None)  # untagged stays unspecified
    with open_input(clips["rgb"]) as inp:
        assert inp.info.color.full_range is True


def test_hdr_side_data(clips):
    with open_input(clips["hevc10"]) as inp:
        hdr = inp.info.hdr
        notes = inp.notices()
    assert hdr is not None
    assert hdr.max_cll == 1000 and hdr.max_fall == 400
    assert hdr.max_luminance == 1000 and hdr.min_luminance == Fraction(1, 10000)
    assert hdr.red == (Fraction(34000, 50000), Fraction(16000, 50000))
    assert hdr.white_point == (Fraction(15635, 50000), Fraction(16450, 50000))
    assert "master-display=G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1)" in hdr.x265_params()
    assert any("HDR" in n for n in notes)
    with open_input(clips["vfr"]) as inp:
        assert inp.info.hdr is None and not inp.info.is_hdr


def test_interlaced_flag(clips):
    with open_input(clips["interlaced"]) as inp:
        assert inp.info.interlaced and inp.info.field_order in ("tt", "tb")
        assert any("interlaced" in n for n in inp.notices())
    with open_input(clips["vfr"]) as inp:
        assert not inp.info.interlaced and inp.notices() == []


def _turns_interlaced(path: Path, progressive: int = 4, interlaced: int = 4) -> Path:
    """An MPEG-2 elementary stream of ``progressive`` progressive pictures, then ``interlaced`` pictures coded
    interlaced (+ildct+ilme): two encodes joined, as a broadcast capture of a progressive advert before an
    interlaced programme is. Its stream's field order and first frame say progressive."""
    import io

    flags = av.codec.context.Flags
    data = b""
    for n, inter, seed in ((progressive, False, 0), (interlaced, True, 1)):
        buf = io.BytesIO()
        with av.open(buf, "w", format="mpeg2video") as out:
            s = out.add_stream("mpeg2video", rate=25)
            s.width, s.height, s.pix_fmt = 96, 64, "yuv420p"
            s.codec_context.gop_size = 4
            if inter:
                s.codec_context.flags |= flags.interlaced_dct | flags.interlaced_me
            for i in range(n):
                rgb = np.random.default_rng((seed, i)).integers(0, 256, (64, 96, 3), dtype=np.uint8)
                frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
                frame.pts = i
                out.mux(s.encode(frame))
            out.mux(s.encode(None))
        data += buf.getvalue()
    path.write_bytes(data)
    return path


def test_a_video_that_turns_interlaced_later_is_told_once_at_its_first_interlaced_frame(tmp_path, near_identity_file):
    """The field order and the first frame say progressive; frame 4 on is interlaced. The probe keeps calling it
    progressive (it reads one frame), and the first interlaced frame a read meets gives the notice, once per input
    (not again on a second read), in upscale (the models' reason) and training (training's) alike."""
    from esrgan_video.pipeline import upscale_video
    from esrgan_video.train import TrainConfig
    from esrgan_video.train.data import load_sources

    src = _turns_interlaced(tmp_path / "ad_then_programme.m2v")
    told: list[str] = []
    with open_input(src, notice=told.append) as inp:
        assert not inp.info.interlaced and inp.info.field_order == "progressive" and inp.notices() == []
        assert len(list(inp.frames())) == 8
        list(inp.frames())
    late = (f"{src}: the video turns interlaced after its first frame (its stream and first frame say "
            "progressive); deinterlace it first (e.g. in VapourSynth) — ")
    assert told == [late + "the models expect progressive frames"], told
    told = []
    with open_input(src, notice=told.append) as inp:
        assert list(inp.frames(end=4)) and told == []  # the progressive part alone: nothing to tell
    for start in (2, 6):  # ranges of their own (batch segments): the same line, which a batch gives once per file
        with open_input(src, notice=told.append) as inp:
            list(inp.frames(start=start))
    assert told == [late + "the models expect progressive frames"] * 2, told
    told = []
    result = upscale_video(src, tmp_path / "out.mkv", model=str(near_identity_file(2, nf=8, nb=1, gc=4)),
                           notice=told.append)
    assert result.frames == 8
    assert told == [late + "the models expect progressive frames"], told
    told = []
    (one,) = load_sources(TrainConfig(data=[str(src)], out=str(tmp_path / "run"), patch=16), 4, 16,
                          notice=told.append)
    assert len(one.hr) == 8
    assert told == [late + "a model trained on its frames learns the combing of their two fields as detail"], told


def test_rotation_sar_metadata_chapters(clips):
    with open_input(clips["vfr"]) as inp:
        info = inp.info
    assert info.rotation == 90
    assert info.display_matrix is not None
    assert info.sample_aspect_ratio == Fraction(4, 3)
    assert info.metadata.get("title") == "VFR clip"
    assert "ENCODER" not in info.metadata and "encoder" not in info.metadata
    assert info.stream_metadata == {"language": "jpn", "title": "Picture"}
    assert [c["metadata"]["title"] for c in info.chapters] == ["Intro", "Main"]
    assert info.codec == "h264" and info.container.startswith("matroska")


# -- damaged input ---------------------------------------------------------------------------------


def test_corrupt_packets_are_skipped_and_counted(tmp_path):
    src = make_clip(tmp_path / "src.mkv", frames=12, options={"g": "1"})
    bad = make_corrupt(src, tmp_path / "bad.mkv", frames=[4, 5])
    said = []
    with open_input(bad, notice=said.append) as inp:
        run = inp.frames()
        frames = list(run)
    lost = run.stats.lost_frames
    all_pts = [40 * i for i in range(12)]
    assert lost == 2
    assert len(said) == 1 and said[0].startswith("bad.mkv: 2 frame(s) could not be decoded") and "0.160 s" in said[0]
    assert said[0] == run.stats.report() and not run.stats.truncated
    assert [f.pts for f in frames] == [p for i, p in enumerate(all_pts) if i not in (4, 5)]


def test_truncated_file_ends_cleanly(tmp_path):
    src = make_clip(tmp_path / "src.mkv", frames=12, options={"g": "1"})
    cut = make_truncated(src, tmp_path / "cut.mkv", keep=0.6)
    with open_input(cut) as inp:
        run = inp.frames()
        frames = list(run)
    assert run.stats.truncated and run.stats.decoded == len(frames)
    pts = [f.pts for f in frames]
    assert 2 <= len(frames) < 12
    assert pts == [40 * i for i in range(len(frames))]


# -- bad input -------------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match=r"nope\.mp4.*no such file"):
        open_input(tmp_path / "nope.mp4")


def test_empty_file(tmp_path):
    with pytest.raises(InputError, match=r"empty\.mp4.*empty"):
        open_input(make_empty(tmp_path / "empty.mp4"))


def test_not_media(tmp_path):
    with pytest.raises(InputError, match=r"text\.mkv.*not a media file"):
        open_input(make_not_media(tmp_path / "text.mkv"))


def test_no_video_stream(tmp_path):
    with pytest.raises(InputError, match=r"sound\.m4a.*no video stream.*audio aac"):
        open_input(make_audio_only(tmp_path / "sound.m4a"))


def test_directory(tmp_path):
    with pytest.raises(InputError, match="directory"):
        open_input(tmp_path)


def test_unsupported_pixel_format(tmp_path):
    clip = make_clip(tmp_path / "y410.mkv", codec="ffv1", pix_fmt="yuv410p", frames=2)
    with pytest.raises(InputError, match=r"y410\.mkv.*yuv410p"):
        open_input(clip)


def test_input_error_is_value_error(tmp_path):
    with pytest.raises(ValueError):
        open_input(tmp_path / "missing.mkv")


# -- real clips ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def real_clip():
    from esrgan_video.samples import sample_clip

    return lambda name: sample_clip(name, progress=False)


def test_real_clips(real_clip):
    with open_input(real_clip("carphone_pristine.mp4")) as inp:
        info = inp.info
        assert (info.width, info.height, info.pix_fmt) == (176, 144, "yuv420p")
        first = list(inp.frames(end=3))
    assert [p.shape for p in first[0].planes] == [(144, 176), (72, 88), (72, 88)]
    ref = _oracle_frames(real_clip("carphone_pristine.mp4"))[:3]
    for f, r in zip(first, ref):
        np.testing.assert_array_equal(f.planes[0], r.to_ndarray()[:144])
        assert f.pts == r.pts
    with open_input(real_clip("bigbuckbunny.mp4")) as inp:
        info = inp.info
        assert (info.width, info.height) == (1280, 720)
        assert info.frame_count == 132
        frames = list(inp.frames(start=5, end=8))
    assert [f.index for f in frames] == [5, 6, 7]
    assert frames[0].planes[0].shape == (720, 1280)


@pytest.mark.parametrize("codec,options,ext", [
    ("libx264", {"g": "8", "bf": "2"}, ".mp4"),
    ("libx264", {"g": "8", "bf": "3", "x264-params": "open-gop=1"}, ".mkv"),
    ("libx265", {"x265-params": "keyint=8:min-keyint=8:bframes=2:log-level=error"}, ".mkv"),
])
def test_trimming_seeks_and_gives_exactly_the_frames_of_a_full_decode(tmp_path, codec, options, ext):
    src = make_clip(tmp_path / f"gop{ext}", codec=codec, size=(64, 48), frames=40, options=options)
    said = []
    with open_input(src, notice=said.append) as inp:
        run = inp.frames()
        full = list(run)
        assert not run.stats.seeked
        for start, end in [(19, 30), (8, 9), (Fraction(21, 25), None), (33, None)]:
            run = inp.frames(start=start, end=end)
            got = list(run)
            assert run.stats.seeked, f"start {start}: expected a seek"
            assert not run.stats.damaged, run.stats  # an intact file reports no lost frames after a seek
            if isinstance(start, int):
                want = full[start:end]
            else:
                want = [f for f in full if inp.media_time(f.pts, f.time_base) >= start]
            assert [f.index for f in got] == [f.index for f in want]
            assert [f.pts for f in got] == [f.pts for f in want]
            for a, b in zip(got, want):
                assert all(np.array_equal(x, y) for x, y in zip(a.planes, b.planes))
    assert said == []


# -- containers timed in decode order (AVI) ---------------------------------------------------------


@pytest.mark.parametrize("codec,options", [
    ("libx264", {"g": "12"}),  # x264's default B-frames (3, pyramid): FFmpeg guesses pts = dts + 1
    ("mpeg4", {"g": "12", "bf": "2"}),  # Xvid/DivX-style MPEG-4 Part 2 with B-frames
])
def test_avi_with_b_frames_gets_presentation_times(tmp_path, codec, options):
    """AVI stores no presentation times (its packets count in decode order), so the decoder's frames, which come out
    in presentation order, carried pts like 1, 3, 2, 6, 5 and the writer refused them: each frame now takes the
    smallest unused timestamp of the packets sent, 0..47 in order, and the packet index agrees."""
    src = make_clip(tmp_path / "bf.avi", codec=codec, frames=48, options=options, audio=[AudioTrack()])
    with av.open(str(src)) as c:
        assert c.format.name == "avi"
        raw = [f.pts for f in c.decode(video=0)]
    if codec == "libx264":
        assert raw != sorted(raw)  # what FFmpeg gives: not in presentation order
    with open_input(src) as inp:
        run = inp.frames()
        frames = list(run)
        assert [f.pts for f in frames] == list(range(48)) and [f.index for f in frames] == list(range(48))
        assert not run.stats.damaged
        assert inp.frame_times() == [Fraction(i, 25) for i in range(48)]
        # the frames are the clip's, in order (lossy: compare with the source planes loosely)
        for f in frames[::7]:
            want = frame_planes("yuv420p", (64, 48), f.index)[0].astype(int)
            assert np.abs(f.planes[0].astype(int) - want).mean() < 6, f.index
        # --start/--end: no seek (a decode-order time is a frame's place since the start), exact frames
        for start, end in [(13, 20), (Fraction(1, 2), None), (40, None)]:
            run = inp.frames(start=start, end=end)
            got = list(run)
            want = [f for f in frames if (f.index >= start if isinstance(start, int) else f.time >= start)
                    and (end is None or f.index < end)]
            assert [(f.index, f.pts) for f in got] == [(f.index, f.pts) for f in want]
            assert not run.stats.seeked and not run.stats.damaged
            assert all(np.array_equal(a.planes[0], b.planes[0]) for a, b in zip(got, want))


def _filler(src: Path, dst: Path, packet: int) -> Path:
    """A copy of the H.264 ``src`` whose video packet ``packet`` (file order) is a filler NAL unit of the same size:
    the decoder takes it without a word and gives no frame (a silent loss)."""
    data = bytearray(src.read_bytes())
    with av.open(str(src)) as c:
        payload = [bytes(p) for p in c.demux(c.streams.video[0]) if p.size][packet]
    at = data.find(payload)
    assert at >= 0 and data.find(payload, at + 1) < 0
    data[at:at + len(payload)] = b"\x00\x00\x00\x01\x0c" + b"\xff" * (len(payload) - 5)
    dst.write_bytes(bytes(data))
    return dst


@pytest.mark.parametrize("damage", ["corrupt", "silent"])
def test_avi_loss_shifts_at_most_its_own_gop(tmp_path, damage):
    """A packet that gives no frame leaves its timestamp unused; from the next keyframe on every frame has its own
    time and picture again, the count says what was lost, and times only increase."""
    src = make_clip(tmp_path / "src.avi", size=(160, 120), frames=48, options={"g": "12"})
    with open_input(src) as inp:
        clean = {f.pts: f.planes for f in inp.frames()}
    bad = (make_corrupt(src, tmp_path / "bad.avi", frames=[5]) if damage == "corrupt"
           else _filler(src, tmp_path / "bad.avi", 5))
    said = []
    with open_input(bad, notice=said.append) as inp:
        run = inp.frames()
        frames = list(run)
    pts = [f.pts for f in frames]
    assert pts == sorted(set(pts)) and len(frames) == 48 - run.stats.lost_frames and run.stats.lost_frames >= 1
    assert said == [run.stats.report()] and not run.stats.truncated
    later = [f for f in frames if f.pts >= 12]
    assert [f.pts for f in later] == list(range(12, 48))
    assert all(all(np.array_equal(a, b) for a, b in zip(f.planes, clean[f.pts])) for f in later)


def test_cut_avi_decodes_as_far_as_it_goes(tmp_path):
    src = make_clip(tmp_path / "src.avi", size=(160, 120), frames=48, options={"g": "12"})
    cut = make_truncated(src, tmp_path / "cut.avi", keep=0.6)
    said = []
    with open_input(cut, notice=said.append) as inp:
        run = inp.frames()
        frames = list(run)
    n = len(frames)
    assert 5 < n < 40 and [f.pts for f in frames] == list(range(n))
    assert run.stats.truncated and run.stats.lost_frames == 0  # the frame the file ends in is the truncation
    assert said == [f"cut.avi ends early: {n} of 48 frames decoded (the file is truncated)"]


@pytest.mark.parametrize("where,message", [
    ("header", r"cut\.avi: the AVI file is truncated inside its header \(\d+ of \d+ bytes\); there is nothing FFmpeg"),
    ("first frame", r"cut\.avi: the file is truncated before its first complete video frame \(\d+ of the \d+ bytes "
                    r"its header declares\); there is nothing to decode"),
])
def test_avi_cut_before_its_first_frame_says_so(tmp_path, where, message):
    """The AVI headers (with room for an OpenDML index) are over half of a tiny file, so a cut at 60 % of it can end
    inside the first frame; FFmpeg's avi demuxer hands the short chunk over and the decoder refuses it."""
    src = make_clip(tmp_path / "src.avi", frames=48, options={"g": "12"})
    with av.open(str(src)) as c:
        first = next(p for p in c.demux(c.streams.video[0]) if p.size)
    data = src.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[:first.pos // 2] if where == "header" else data[:first.pos + 8 + 40])
    with pytest.raises(InputError, match=message):
        open_input(cut)


def test_matroska_cut_inside_its_first_frame_says_so(tmp_path):
    """The matroska demuxer drops a block the file ends inside: no video packet at all, said as such."""
    src = make_clip(tmp_path / "src.mkv", size=(160, 120), frames=10)
    with av.open(str(src)) as c:
        first = next(p for p in c.demux(c.streams.video[0]) if p.size)
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(src.read_bytes()[:first.pos + first.size // 2])
    with pytest.raises(InputError, match=r"cut\.mkv: the demuxer found no video packet in the file's \d+ bytes \(the "
                                         r"file is truncated or damaged before its first video frame\)"):
        open_input(cut)


def test_raw_h264_whose_size_changes_trims_before_the_change(tmp_path, near_identity_file, capfd):
    """A raw H.264 stream of two joined pieces (64x48, then 80x48 from frame 8): its frame times come from decoding
    it all, which refused the change, so even ``--end 5f`` failed; now only reading a changed frame does, and the
    line names the frame the change is at, whatever the trim."""
    from esrgan_video.testing import run_cli

    a = make_clip(tmp_path / "a.h264", frames=8, format="h264", size=(64, 48))
    b = make_clip(tmp_path / "b.h264", frames=8, format="h264", size=(80, 48), seed=3)
    src = tmp_path / "joined.h264"
    src.write_bytes(a.read_bytes() + b.read_bytes())
    with open_input(src) as inp:
        assert len(inp.frame_times()) == 16
        assert inp.resolve_range(None, 5) == (None, inp.frame_times()[5])
    model = near_identity_file(2)
    for trim in (["--end", "5f"], ["--end", "0.2"]):
        dst = tmp_path / "head.mkv"
        r = run_cli(capfd, src, dst, "--model", model, "--device", "cpu", "--progress", "none", *trim)
        assert r.returncode == 0, r.stderr
        with av.open(str(dst)) as c:
            assert [f.width for f in c.decode(video=0)] == [128] * 5
        dst.unlink()
    for trim in (["--start", "10f"], []):  # a changed frame would be upscaled: one line, nothing written
        r = run_cli(capfd, src, tmp_path / "tail.mkv", "--model", model, "--device", "cpu", "--progress", "none", *trim)
        assert r.returncode != 0 and not (tmp_path / "tail.mkv").exists()
        assert r.stderr.strip() == (f"esrgan-video: error: {src}: the video changes from 64x48 yuv420p to 80x48 yuv420p "
                                    "at frame 8; mid-stream format changes are not supported"), r.stderr
