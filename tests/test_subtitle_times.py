"""Every cue and audio packet keeps its time through the stream copier (``video.stream_copy``): text cues at 0 s, at
0.04 s, mid-clip, after the last video frame, with zero duration, overlapping; SRT→MP4 (mov_text), ASS/SRT→MKV,
mov_text→MP4, WebVTT→WebM; clips of 1-3 frames and of 10. Read back with PyAV, times and durations equal the
input's (to the output's time base). Inputs are made with PyAV (tests/media.py).

The defect these pin: a 3-frame x264 Matroska clip has no dts on its video packets (B-frames), and FFmpeg, which times
such a stream only once its reorder delay has gone by, gave the video stream the start of the other streams (a cue at
0.04 s): the writer took that as the media origin and moved every stream by -0.04 s (the cue to 0 s, the first frame
to -0.04 s in an MP4; Matroska made the times non-negative again, so .mkv hid it). And overlapping cues into MP4:
mov_text shows one sample at a time, so they become samples that do not overlap, each with every line shown then
(the first cue used to end where the second began, and FFmpeg's muxer could move the second past the first's end)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import pytest

import media
from esrgan_video.video.reader import open_input
from esrgan_video.video.trim import check_trim
from esrgan_video.video.writer import OutputVideo

LATE = ((0.04, 0.08, "Four"), (0.5, 0.5, "Zero length"), (0.7, 0.8, "Mid"), (1.0, 1.2, "After the video"))
"""The first cue after the first frame (the defect's case), one of zero duration, one after the last video frame."""
EARLY = ((0.0, 0.04, "At zero"), (0.04, 0.08, "Four"), (0.5, 0.6, "Half"))
OVERLAP = ((0.04, 0.3, "One"), (0.1, 0.2, "Two"))

ROUTES = {  # (input codec, input container, output container)
    "srt-mp4": ("subrip", "mkv", "mp4"),
    "ass-mkv": ("ass", "mkv", "mkv"),
    "srt-mkv": ("subrip", "mkv", "mkv"),
    "movtext-mp4": ("mov_text", "mp4", "mp4"),
    "webvtt-webm": ("webvtt", "webm", "webm"),
}


def copy_through(src: Path, dst: Path) -> None:
    with open_input(src) as inp, OutputVideo(dst, template=inp) as out:
        for f in inp.frames():
            out.write(f.planes, f.pts)


def cue_times(path: Path) -> tuple[Fraction, list[tuple[Fraction, Fraction, str]]]:
    """The subtitle stream's time base and its cues: (start s, duration s, text), MP4's empty gap samples left out."""
    with av.open(str(path)) as c:
        st = c.streams.subtitles[0]
        tb = Fraction(st.time_base)
        out = []
        for p in c.demux(st):
            if not p.size or (st.codec_context.name == "mov_text" and p.size == 2):
                continue
            text = "|".join(sub.dialogue.decode().split(",", 8)[-1] for sub in st.codec_context.decode(p))
            out.append((p.pts * tb, (p.duration or 0) * tb, text))
        return tb, out


def first_frame_time(path: Path) -> Fraction:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        return min(p.pts for p in c.demux(v) if p.size) * Fraction(v.time_base)


def on(tb: Fraction, t: Fraction) -> Fraction:
    return round(t / tb) * tb


def make(folder: Path, route: str, frames: int, events) -> Path:
    codec, ext, _ = ROUTES[route]
    return media.make_clip(folder / f"{route}_{frames}.{ext}", frames=frames,
                           codec="libvpx-vp9" if ext == "webm" else "libx264",
                           subtitles=[media.SubtitleTrack(codec, events=events)])


def cues_through(tmp_path, route, frames, events):
    """A clip of ``frames`` frames with ``events`` as cues of ``route``'s kind, copied through the writer: (src,
    dst, the output's cues), after checking that each cue kept its time and duration (on the output's time base)."""
    src = make(tmp_path, route, frames, events)
    dst = tmp_path / f"out.{ROUTES[route][2]}"
    copy_through(src, dst)
    _, want = cue_times(src)
    tb, got = cue_times(dst)
    assert [(on(tb, s), on(tb, d), text) for s, d, text in want] == got
    return src, dst, got


@pytest.mark.parametrize("frames", [1, 3, 10])
@pytest.mark.parametrize("route", list(ROUTES))
@pytest.mark.parametrize("events", [LATE, EARLY], ids=["late", "early"])
def test_cues_keep_their_times(tmp_path, route, frames, events):
    src, dst, got = cues_through(tmp_path, route, frames, events)
    assert [text for *_, text in got] == [text for *_, text in events]  # every cue, the one after the video too
    assert first_frame_time(dst) == first_frame_time(src) == 0  # the video did not move either (was -0.04 s)


@pytest.mark.parametrize("frames", [3, 10])
@pytest.mark.parametrize("route", ["ass-mkv", "srt-mkv", "webvtt-webm"])
def test_overlapping_cues_keep_their_times(tmp_path, route, frames):
    _, _, got = cues_through(tmp_path, route, frames, OVERLAP)
    assert [(s, d) for s, d, _ in got] == [(Fraction(1, 25), Fraction(26, 100)), (Fraction(1, 10), Fraction(1, 10))]


def test_short_clip_starts_where_its_first_frame_is(tmp_path):
    """The media origin of a 3-frame Matroska clip whose only other stream starts later is its first frame's time,
    not the other stream's start that FFmpeg gave the untimed video stream."""
    src = make(tmp_path, "srt-mkv", 3, ((0.04, 0.08, "Four"),))
    with av.open(str(src)) as c:
        assert c.start_time == 40_000  # FFmpeg's own view: the cue's start
    with open_input(src) as inp:
        assert inp.info.start_time == 0
        assert [inp.media_time(f.pts, f.time_base) for f in inp.frames()] == [0, Fraction(1, 25), Fraction(2, 25)]


@pytest.mark.parametrize("start", [1, Fraction(1, 25)], ids=["frame-1", "0.04s"])
def test_short_clip_trims_on_its_frames_times(tmp_path, start):
    """The trim, the seek and the frame count of a short clip whose media origin is its first frame (not the
    container's start) go by the times its frames are read at: the packet index's times count from the reader's
    origin. They counted from the container's (the cue's 0.04 s): --start 1 wrote all 3 frames (2 counted), and
    --start 0.04 s the frame at 0 too (1 counted, 2 written). (With audio 0.2 s in instead of the cue, --start 1
    began the output 0.2 s in and --start 0.04 selected no frame.)"""
    src = make(tmp_path, "srt-mkv", 3, ((0.04, 0.08, "Four"),))
    with open_input(src) as inp:
        read = [inp.media_time(f.pts, f.time_base) for f in inp.frames()]
        assert inp.frame_times() == read == [0, Fraction(1, 25), Fraction(2, 25)]
        assert check_trim(inp, start) == 2
        assert [inp.media_time(f.pts, f.time_base) for f in inp.frames(start=start)] == read[1:]
        dst = tmp_path / "out.mp4"
        with OutputVideo(dst, template=inp, start=start) as out:
            for f in inp.frames(start=start):
                out.write(f.planes, f.pts)
    with av.open(str(dst)) as c:
        assert [f.time for f in c.decode(video=0)] == [0, 0.04]


def audio_times(path: Path) -> tuple[Fraction, Fraction, Fraction, int]:
    """The audio stream's time base, its first packet's time, where its last packet ends (s), and its packet count."""
    with av.open(str(path)) as c:
        a = c.streams.audio[0]
        tb = Fraction(a.time_base)
        times = [(p.pts * tb, (p.pts + p.duration) * tb) for p in c.demux(a) if p.size]
        return tb, times[0][0], times[-1][1], len(times)


AUDIO_ROUTES = {  # (audio codec, input container, output container)
    "aac-mkv-mp4": ("aac", "mkv", "mp4"), "aac-mkv-mkv": ("aac", "mkv", "mkv"), "aac-mkv-mov": ("aac", "mkv", "mov"),
    "aac-mp4-mkv": ("aac", "mp4", "mkv"), "aac-mov-mov": ("aac", "mov", "mov"),
    "opus-webm-webm": ("libopus", "webm", "webm"), "opus-webm-mp4": ("libopus", "webm", "mp4"),
    "flac-mkv-mp4": ("flac", "mkv", "mp4"),
}


@pytest.mark.parametrize("frames", [1, 2, 3, 10])
@pytest.mark.parametrize("route", list(AUDIO_ROUTES))
def test_audio_keeps_its_offset_and_length(tmp_path, route, frames):
    """The first audio packet's time (AAC's and Opus's priming: before the first frame) and where the audio ends."""
    codec, ext, out_ext = AUDIO_ROUTES[route]
    src = media.make_clip(tmp_path / f"in.{ext}", frames=frames, codec="libvpx-vp9" if ext == "webm" else "libx264",
                          audio=[media.AudioTrack(codec=codec)])
    dst = tmp_path / f"out.{out_ext}"
    copy_through(src, dst)
    _, start, end, count = audio_times(src)
    tb, *got = audio_times(dst)
    assert got == [on(tb, start), on(tb, end), count]
    assert first_frame_time(dst) == first_frame_time(src) == 0


def delayed(src: Path, dst: Path, kind: str, seconds: Fraction) -> Path:
    """A packet-for-packet remux of ``src`` whose ``kind`` stream starts ``seconds`` later."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        mapping = {st.index: out.add_stream_from_template(st) for st in inp.streams}
        for pkt in inp.demux():
            if not pkt.size:
                continue
            if pkt.stream.type == kind:
                ticks = round(seconds / pkt.time_base)
                pkt.pts += ticks
                pkt.dts += ticks
            pkt.stream = mapping[pkt.stream_index]
            out.mux(pkt)
    return dst


@pytest.mark.parametrize("out_ext", ["mp4", "mov", "mkv"])
def test_audio_that_starts_late_in_a_short_clip_keeps_its_time(tmp_path, out_ext):
    """Audio that begins 0.2 s in, in a 3-frame Matroska clip (the video's start unknown to FFmpeg): the same defect
    as a late cue's (every stream moved by the audio's start)."""
    src = delayed(media.make_clip(tmp_path / "in.mkv", frames=3, audio=[media.AudioTrack()]), tmp_path / "late.mkv",
                  "audio", Fraction(1, 5))
    dst = tmp_path / f"out.{out_ext}"
    copy_through(src, dst)
    _, start, end, count = audio_times(src)
    tb, *got = audio_times(dst)
    assert start > 0
    assert got == [on(tb, start), on(tb, end), count]
    assert first_frame_time(dst) == first_frame_time(src) == 0


def shown(cues, t: Fraction) -> set[str]:
    """The lines shown at time ``t`` by ``cues`` (start, duration, text; a sample's lines split)."""
    return {line for s, d, text in cues if s <= t < s + d for line in text.splitlines()}


@pytest.mark.parametrize("audio", [False, True], ids=["video", "video+audio"])
@pytest.mark.parametrize("frames", [1, 3, 10])
@pytest.mark.parametrize("events", [OVERLAP, ((0.0, 0.5, "Long"), (0.1, 0.2, "Inner"), (0.15, 0.3, "Third")),
                                    ((0.04, 0.3, "One"), (0.3, 0.3, "Zero length"), (0.3, 0.4, "Next")),
                                    ((0.04, 0.3, "Sign"), (0.04, 0.2, "Dialogue"))],
                         ids=["two", "three", "touching", "same-start"])
def test_overlapping_cues_into_mp4_show_what_the_input_shows(tmp_path, events, frames, audio):
    """mov_text shows one sample at a time: overlapping SRT cues become samples that do not overlap, each with every
    line shown then. Without it the first cue ended where the second began (its last 0.1 s lost), and with 10 frames
    FFmpeg's muxer, which compares the text track's end in its 1/1000 ticks with the video's 1/12800 ones, ended the
    first cue early and moved the second past its end (0.1 s → 0.301 s)."""
    src = media.make_clip(tmp_path / "in.mkv", frames=frames, subtitles=[media.SubtitleTrack("subrip", events=events)],
                          audio=[media.AudioTrack()] if audio else ())
    dst = tmp_path / "out.mp4"
    copy_through(src, dst)
    _, want = cue_times(src)
    tb, got = cue_times(dst)
    assert [s for s, _, _ in got] == sorted(s for s, _, _ in got)
    assert all(s + d <= later for (s, d, _), (later, _, _) in zip(got, got[1:]))  # samples that do not overlap
    for ms in range(0, 700, 5):
        t = Fraction(ms, 1000)
        assert shown(got, t) == shown(want, t), float(t)
    assert first_frame_time(dst) == 0


def test_cli_short_clip_into_mp4_keeps_cue_and_frame_times(tmp_path, near_identity_file, capfd):
    """The whole path (``esrgan-video in.mkv out.mp4`` with a near-identity model): a 3-frame clip whose cues begin
    0.04 s in and overlap keeps the first frame at 0 and shows every cue when the input does."""
    from esrgan_video.testing import run_cli

    events = ((0.04, 0.3, "One"), (0.1, 0.2, "Two"))
    src = media.make_clip(tmp_path / "in.mkv", frames=3, subtitles=[media.SubtitleTrack("subrip", events=events)])
    dst = tmp_path / "out.mp4"
    p = run_cli(capfd, src, dst, "--model", near_identity_file(1), "--device", "cpu")
    assert p.returncode == 0, p.stderr
    _, want = cue_times(src)
    _, got = cue_times(dst)
    assert [(float(s), float(d), text) for s, d, text in got] == [(0.04, 0.06, "One"), (0.1, 0.1, "One\nTwo"),
                                                                  (0.2, 0.1, "One")]
    assert all(shown(got, Fraction(ms, 1000)) == shown(want, Fraction(ms, 1000)) for ms in range(0, 400, 5))
    assert first_frame_time(dst) == 0
