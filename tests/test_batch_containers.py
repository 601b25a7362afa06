"""Segmented batch outputs in every container batch writes equal a one-pass run to the same suffix.

MPEG-TS (.ts, .m2ts), MPEG-PS (.mpg) and AVI do not give back the timestamps a segment was written with (the
first decode time made non-negative, every PS file starting at one preload, AVI's counters restarting at 0), so
their segments are rendered in MOV/MP4 and the join writes the output's container
(``video.segment_join.segment_suffix``). Oracle: the same batch with ``segment_seconds=0`` (one task per file,
the streaming core in one pass) into another folder. Frames are compared decoded (lossless encoders: libx264 at
CRF 0, FFV1, VP9 lossless, so a segment's encoder cannot differ from the single pass's), with every video packet's
timestamps and the copied audio packets; a lossy libx264 run with B-frames checks the reordered timestamps (its
frames differ: each segment's encoder starts a new GOP).
"""

from __future__ import annotations

import hashlib
from fractions import Fraction
from pathlib import Path

import av
import pytest

from esrgan_video.batch import run_batch
from esrgan_video.batch.journal import JOURNAL_NAME, parse_lines
from esrgan_video.video.segment_join import segment_suffix

from media import AudioTrack, make_clip, read_frames

SOURCE_GOP = {"bf": "2", "x264-params": "keyint=4:min-keyint=4:scenecut=0"}  # a clean cut every 4 frames
SEGMENT_SECONDS = 0.16  # 12 frames at 25 fps: 3 segments

# suffix: (encoder options that make the output lossless, the source's audio codec the container holds)
LOSSLESS = {
    ".ts": (dict(codec="libx264", crf=0), "mp2"),
    ".m2ts": (dict(codec="libx264", crf=0), "mp2"),
    ".mpg": (dict(codec="libx264", crf=0), "mp2"),
    ".avi": (dict(codec="ffv1"), "mp2"),
    ".mov": (dict(codec="libx264", crf=0), "aac"),
    ".mp4": (dict(codec="libx264", crf=0), "aac"),
    ".mkv": (dict(codec="ffv1"), "aac"),
    ".webm": (dict(codec="libvpx-vp9", encoder_opts={"lossless": "1"}), "libopus"),
}


@pytest.fixture(scope="module")
def model_file(near_identity_file) -> Path:
    return near_identity_file(2)  # nf 8, nb 1, gc 4


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 12-frame libx264 clip with B-frames and one audio track, per audio codec."""
    d = tmp_path_factory.mktemp("src")
    clips = {}
    for codec in sorted({a for _, a in LOSSLESS.values()}):
        (d / codec).mkdir()
        clips[codec] = make_clip(d / codec / "clip.mkv", frames=12, options=SOURCE_GOP, audio=[AudioTrack(codec=codec)])
    return clips


def _tag(stream) -> str:
    """The stream's codec tag (FourCC; the container's number where it is not text)."""
    try:
        return stream.codec_context.codec_tag
    except UnicodeDecodeError:
        return "not text"


def describe(path: Path, *, pictures: bool = True) -> dict:
    """What a one-pass and a segmented output must agree on: the decoded frames (pts and, with ``pictures``, a
    hash of the planes), every video packet's timestamps, the other packets, the streams."""
    d: dict = {}
    with av.open(str(path)) as c:
        d["format"] = c.format.name
        d["frames"] = [(f.pts, hashlib.sha1(b"".join(bytes(p) for p in f.planes)).hexdigest() if pictures else None)
                       for f in c.decode(c.streams.video[0])]
    with av.open(str(path)) as c:
        d["streams"] = [(s.type, s.codec_context.name, s.time_base, _tag(s)) for s in c.streams]
        d["video_packets"] = [(p.pts, p.dts) for p in c.demux(c.streams.video[0]) if p.size]
    with av.open(str(path)) as c:
        d["other_packets"] = [(p.stream.index, p.pts, p.dts, p.duration, hashlib.sha1(bytes(p)).hexdigest())
                              for p in c.demux() if p.stream.type != "video" and p.size]
    return d


def batch(src: Path, out: Path, model: Path, suffix: str, segment_seconds: float, **opts):
    return run_batch([src], out, model=str(model), devices="cpu", threads=1, ext=suffix,
                     segment_seconds=segment_seconds, log=lambda m: None, **opts)


def journal(out: Path) -> dict:
    return parse_lines((out / JOURNAL_NAME).read_text())


@pytest.mark.parametrize("suffix", list(LOSSLESS))
def test_segmented_output_equals_one_pass(tmp_path: Path, model_file: Path, sources, suffix: str) -> None:
    opts, audio = LOSSLESS[suffix]
    src = sources[audio]
    seg = batch(src, tmp_path / "seg", model_file, suffix, SEGMENT_SECONDS, **opts)
    one = batch(src, tmp_path / "one", model_file, suffix, 0, **opts)
    assert seg.exit_code == 0 and one.exit_code == 0, (seg.table(), one.table())
    assert seg.rows[0].segments == 3 and one.rows[0].segments == 1
    joined, single = describe(tmp_path / "seg" / f"clip{suffix}"), describe(tmp_path / "one" / f"clip{suffix}")
    assert len(joined["frames"]) == 12 and len(joined["other_packets"]) > 0
    assert [s[0] for s in joined["streams"]] == ["video", "audio"]
    checked = ["format", "frames", "video_packets", "other_packets", "streams"]
    if suffix == ".mpg":
        # MPEG-PS gives a timestamp only to the first frame that starts in a pack (reader.fill_times), so which
        # frames carry one depends on every byte before them; the joined stream's bytes are not the single pass's
        # (each segment starts with an IDR picture and x264's SEI: 4107 bytes where the single pass has a 3365-byte
        # P picture), so their packs agree only by chance (a frame starting 6 bytes before a pack's end). Compared:
        # the pictures, the frame times the reader gives, and every timestamp a pack carries is its frame's.
        for d, path in ((joined, tmp_path / "seg" / "clip.mpg"), (single, tmp_path / "one" / "clip.mpg")):
            frames, stats, _ = read_frames(path)
            assert stats.lost_frames == 0
            d["times"] = [f.pts for f in frames]
            d["pictures"] = [h for _, h in d["frames"]]
        assert joined["times"] == [single["times"][0] + 3600 * i for i in range(12)]  # 25 fps at 90 kHz
        assert {p for p, _ in joined["video_packets"] if p is not None} <= set(single["times"])
        checked = ["format", "pictures", "times", "other_packets", "streams"]
    for what in checked:
        assert joined[what] == single[what], what
    assert not (tmp_path / "seg" / ".esrgan-video-segments").exists()


@pytest.mark.parametrize("suffix", [".ts", ".avi", ".mp4"])
def test_reordered_timestamps_equal_one_pass(tmp_path: Path, model_file: Path, sources, suffix: str) -> None:
    """libx264 with B-frames (lossy: the pictures differ, and so does the order of frame types, each segment
    starting a GOP): the joined stream's decode clock is the single encoder's (its delay included), so the decode
    timestamps, the presentation times and every copied packet equal a one-pass run's. (Not MPEG-PS: which
    packets carry a timestamp there depends on their sizes, so lossy outputs are only compared above.)"""
    src = sources[LOSSLESS[suffix][1]]
    opts = dict(codec="libx264", encoder_opts={"x264-params": "bframes=2:b-adapt=0"})
    seg = batch(src, tmp_path / "seg", model_file, suffix, SEGMENT_SECONDS, **opts)
    one = batch(src, tmp_path / "one", model_file, suffix, 0, **opts)
    assert seg.exit_code == 0 and one.exit_code == 0, (seg.table(), one.table())
    joined = describe(tmp_path / "seg" / f"clip{suffix}", pictures=False)
    single = describe(tmp_path / "one" / f"clip{suffix}", pictures=False)
    checked = ["format", "times", "dts", "pts", "other_packets", "streams"]
    if suffix != ".avi":  # AVI keeps no presentation times: FFmpeg guesses them
        shown = [p for p, _ in joined["video_packets"]]
        assert any(a > b for a, b in zip(shown, shown[1:])), "no B-frames: nothing reordered"
        checked.append("frames")
    for d, path in ((joined, tmp_path / "seg" / f"clip{suffix}"), (single, tmp_path / "one" / f"clip{suffix}")):
        d["dts"] = [dts for _, dts in d["video_packets"]]
        d["pts"] = sorted(p for p, _ in d["video_packets"] if p is not None)
        frames, _, _ = read_frames(path)  # the times the project's reader gives (AVI: from the decode order)
        d["times"] = [f.pts for f in frames]
    assert len(joined["times"]) == 12
    for what in checked:
        assert joined[what] == single[what], what


@pytest.mark.parametrize("opts", [
    dict(codec="libx264", encoder_opts={"x264-params": "bframes=2:b-adapt=0"}),
    dict(codec="mpeg2video", encoder_opts={"bf": "2"}),
], ids=["libx264", "mpeg2video"])
def test_lossy_mpeg_ps_gives_one_pass_frame_times(tmp_path: Path, model_file: Path, sources, opts) -> None:
    """Lossy video in MPEG-PS: which frames carry a timestamp depends on their sizes (small frames share a pack),
    so the packets differ, but the reader's frame times (``reader.fill_times``: those without one lie evenly between
    those with one) and the copied audio are a single pass's. MPEG-2 segments are rendered in MOV with the encoder
    at the stream's 25 fps (``writer.EncoderClock``; the source's 1/1000 was refused before)."""
    src = sources["mp2"]
    seg = batch(src, tmp_path / "seg", model_file, ".mpg", SEGMENT_SECONDS, **opts)
    one = batch(src, tmp_path / "one", model_file, ".mpg", 0, **opts)
    assert seg.exit_code == 0 and one.exit_code == 0, (seg.table(), one.table())
    assert seg.rows[0].segments == 3
    joined = describe(tmp_path / "seg" / "clip.mpg", pictures=False)
    single = describe(tmp_path / "one" / "clip.mpg", pictures=False)
    for d, path in ((joined, tmp_path / "seg" / "clip.mpg"), (single, tmp_path / "one" / "clip.mpg")):
        frames, stats, _ = read_frames(path)
        assert stats.lost_frames == 0
        d["times"] = [f.pts for f in frames]
    assert joined["times"] == [single["times"][0] + 3600 * i for i in range(12)]  # 25 fps at 90 kHz, in order
    for what in ("format", "times", "other_packets", "streams"):
        assert joined[what] == single[what], what


def test_utvideo_in_avi_segments_in_nut(tmp_path: Path, model_file: Path, sources) -> None:
    """UT Video goes into no MOV, MP4 or Matroska file, and AVI does not give back a segment's timestamps: its
    segments are rendered in NUT, and the joined AVI keeps their codec tag (``ULY0``: 4:2:0; AVI's default for
    UT Video, ``ULRA``, would decode as RGB with alpha). The output equals a single pass's, frame for frame."""
    src = sources["mp2"]
    seg = batch(src, tmp_path / "seg", model_file, ".avi", SEGMENT_SECONDS, codec="utvideo")
    one = batch(src, tmp_path / "one", model_file, ".avi", 0, codec="utvideo")
    assert seg.exit_code == 0 and one.exit_code == 0, (seg.table(), one.table())
    assert seg.rows[0].segments == 3
    joined, single = describe(tmp_path / "seg" / "clip.avi"), describe(tmp_path / "one" / "clip.avi")
    # 1/25: the AVI of a 25 fps source ticks once a frame (was the source's 1/1000: "1000 fps")
    assert len(joined["frames"]) == 12 and joined["streams"][0][1:] == ("utvideo", Fraction(1, 25), "ULY0")
    for what in ("format", "frames", "video_packets", "other_packets", "streams"):
        assert joined[what] == single[what], what


def test_lossless_x264_in_nut_says_its_decode_delay(tmp_path: Path, model_file: Path, sources) -> None:
    """A single pass's NUT records the decode delay libx264 declares when it opens (2 frames, its B-pyramid) even
    though lossless x264 makes no B-frame; the segments' MOV keeps no such declaration, so the join records none.
    Frames and presentation times equal a single pass's; the one line says the decode times differ."""
    said: list[str] = []
    src = sources["mp2"]
    seg = run_batch([src], tmp_path / "seg", model=str(model_file), devices="cpu", threads=1, ext=".nut",
                    segment_seconds=SEGMENT_SECONDS, log=said.append, codec="libx264", crf=0)
    one = batch(src, tmp_path / "one", model_file, ".nut", 0, codec="libx264", crf=0)
    assert seg.exit_code == 0 and one.exit_code == 0, (seg.table(), one.table())
    joined, single = describe(tmp_path / "seg" / "clip.nut"), describe(tmp_path / "one" / "clip.nut")
    for what in ("format", "frames", "other_packets"):
        assert joined[what] == single[what], what
    assert [p for p, _ in joined["video_packets"]] == [p for p, _ in single["video_packets"]]
    lines = [m for m in said if "NUT records the decode delay" in m]
    assert len(lines) == 1 and str(tmp_path / "seg" / "clip.nut") in lines[0] and "\n" not in lines[0]


def test_anamorphic_vp8_segments_are_planned_as_one_pass(tmp_path: Path, model_file: Path) -> None:
    """An anamorphic source (SAR 32:27) into AVI with VP8: the segments' container is chosen by the writer's own rule
    for a kept sample aspect ratio (``writer.sar_kept``), so each segment's frames are planned as the single pass
    plans them. AVI keeps no VP8 SAR through PyAV (the file read back 0:1: a 144x96 picture shown 3:2, not 16:9), so
    the single pass resamples to square pixels, 170x96, and so does each segment (in NUT). Lossy VP8 starts a new
    keyframe in each segment, so the pictures differ; the geometry, the frame times and every packet's timestamps do
    not."""
    (tmp_path / "src").mkdir()
    src = make_clip(tmp_path / "src" / "clip.mkv", frames=12, size=(72, 48), sar=Fraction(32, 27), options=SOURCE_GOP)
    seg = batch(src, tmp_path / "seg", model_file, ".avi", SEGMENT_SECONDS, codec="libvpx")
    one = batch(src, tmp_path / "one", model_file, ".avi", 0, codec="libvpx")
    assert seg.exit_code == 0 and one.exit_code == 0, (seg.table(), one.table())
    assert seg.rows[0].segments == 3

    def geometry(path: Path):
        with av.open(str(path)) as c:
            v = c.streams.video[0]
            frames = [(f.width, f.height, f.pts) for f in c.decode(v)]
            return (v.codec_context.width, v.codec_context.height, v.sample_aspect_ratio), frames

    joined, single = geometry(tmp_path / "seg" / "clip.avi"), geometry(tmp_path / "one" / "clip.avi")
    assert single[0][:2] == (170, 96) and len(single[1]) == 12
    assert joined == single
    assert describe(tmp_path / "seg" / "clip.avi", pictures=False) == describe(tmp_path / "one" / "clip.avi",
                                                                               pictures=False)


def test_a_resumed_ts_run_keeps_its_segments_and_equals_one_pass(tmp_path: Path, model_file: Path, sources) -> None:
    opts, audio = LOSSLESS[".ts"]
    src = sources[audio]
    lib, out = tmp_path / "lib", tmp_path / "out"
    (lib / "sub").mkdir(parents=True)
    (lib / "sub" / "clip.mkv").write_bytes(src.read_bytes())
    out.mkdir()
    (out / "sub").write_text("in the way")  # the join fails once: only the segments can be written
    s1 = run_batch([lib], out, model=str(model_file), devices="cpu,cpu", threads=1, ext=".ts",
                   segment_seconds=SEGMENT_SECONDS, log=lambda m: None, **opts)
    assert s1.rows[0].status == "failed" and s1.rows[0].segments == 3
    segs = {k: r for k, r in journal(out).items() if "#seg" in k}
    assert len(segs) == 3 and all(r["state"] == "done" for r in segs.values())
    parts = sorted((out / ".esrgan-video-segments").rglob("*.*"))
    assert [p.suffix for p in parts] == [".mov"] * 3  # MPEG-TS does not keep a segment's timestamps

    (out / "sub").unlink()
    s2 = run_batch([lib], out, model=str(model_file), devices="cpu", threads=1, ext=".ts",
                   segment_seconds=SEGMENT_SECONDS, retry_failed=True, log=lambda m: None, **opts)
    assert s2.exit_code == 0 and s2.rows[0].status == "done" and s2.rows[0].frames == 12
    assert {k: journal(out)[k] for k in segs} == segs, "finished segments must not be rendered again"
    one = batch(src, tmp_path / "one", model_file, ".ts", 0, **opts)
    assert one.exit_code == 0
    joined, single = describe(out / "sub" / "clip.ts"), describe(tmp_path / "one" / "clip.ts")
    for what in ("format", "frames", "video_packets", "other_packets", "streams"):
        assert joined[what] == single[what], what


def test_segment_suffix() -> None:
    """The output's own container where it keeps timestamps; else MOV, or MP4 for what MOV cannot hold."""
    assert segment_suffix("a.mkv", "ffv1") == ".mkv" and segment_suffix("a.mp4", "libx264") == ".mp4"
    assert segment_suffix("a.webm", "libvpx-vp9") == ".webm" and segment_suffix("a.mov", "prores_ks") == ".mov"
    assert segment_suffix("a.ts", "libx264") == ".mov" and segment_suffix("a.avi", "libx264") == ".mov"
    assert segment_suffix("a.mpg", "mpeg2video") == ".mov" and segment_suffix("a.m2ts", "libx265") == ".mov"
    # FFV1: MP4 keeps its SAR, AVI does not (writer.sar_kept): the segments would be planned anamorphic where the
    # single pass is square; intra-only, so NUT keeps its times (exactly: Matroska rounds to 1 ms)
    assert segment_suffix("a.avi", "ffv1") == ".nut" and segment_suffix("a.avi", "libsvtav1") == ".nut"
    assert segment_suffix("a.avi", "utvideo") == ".nut"  # in no MOV, MP4 or Matroska; intra-only, so NUT keeps it
    # VP8: in no MOV or MP4; it reorders no frames, so NUT keeps its times
    assert segment_suffix("a.avi", "libvpx") == ".nut" and segment_suffix("a.nut", "libvpx") == ".nut"
    assert segment_suffix("a.flv", "libvpx-vp9") == ".nut"  # MP4 keeps a VP9 SAR, FLV does not
    assert segment_suffix("a.nut", "libx264") == ".mov"  # NUT moves a stream decoded before 0 (B-frames) to 0
    assert segment_suffix("a.mkv", "libx264", "mpegts") == ".mov"  # --format decides the container


VFR_MS = [0, 40, 90, 100, 150, 190, 250, 290, 330, 400, 440, 480]  # 12 frames, a clean cut every 4


def test_vfr_into_avi_with_b_frames_is_refused_as_in_one_pass(tmp_path: Path, model_file: Path) -> None:
    """A variable-rate input into AVI with libx264's B-frames: a single pass refuses it (``writer.check_avi_times``:
    AVI's decode-order times are not the frames'); a segmented run rendered its segments in MOV and joined them into
    the AVI by remuxing, which wrote the wrong times the single pass refuses. The plan does not split it, so the file
    fails with the single pass's line; with ``bf=0`` it is split as before."""
    (tmp_path / "src").mkdir()
    src = make_clip(tmp_path / "src" / "vfr.mkv", pts=VFR_MS, time_base=Fraction(1, 1000), options=SOURCE_GOP)
    seg = batch(src, tmp_path / "seg", model_file, ".avi", SEGMENT_SECONDS, codec="libx264")
    one = batch(src, tmp_path / "one", model_file, ".avi", 0, codec="libx264")
    assert [r.status for r in seg.rows] == [r.status for r in one.rows] == ["failed"]
    assert seg.exit_code == one.exit_code != 0
    error = seg.rows[0].error
    assert error == one.rows[0].error.replace(str(tmp_path / "one"), str(tmp_path / "seg"))
    assert error.startswith(f"{tmp_path / 'seg' / 'vfr.avi'}: AVI stores no presentation times and vfr.mkv has a "
                            "variable frame rate") and "\n" not in error
    assert not (tmp_path / "seg" / "vfr.avi").exists() and not (tmp_path / "seg" / ".esrgan-video-segments").exists()

    ok = batch(src, tmp_path / "bf0", model_file, ".avi", SEGMENT_SECONDS, codec="libx264", encoder_opts={"bf": "0"})
    assert ok.exit_code == 0 and ok.rows[0].status == "done" and ok.rows[0].segments == 2
    assert [f.pts for f in read_frames(tmp_path / "bf0" / "vfr.avi")[0]] == [
        f.pts for f in read_frames(src)[0]]
