"""Timestamp discontinuities in MPEG-TS/PS (``video.discont``): joined and edited recordings are mended, as FFmpeg's
command line does, with every frame and packet kept and the streams in sync."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import pytest

import media
from esrgan_video.testing import run_cli
from esrgan_video.video.damage import timestamp_gaps
from esrgan_video.video.discont import Jump, StreamMender, find_jumps, has_discontinuities, jumped, tolerances
from esrgan_video.video.packet_index import read_packet_index
from esrgan_video.video.reader import open_input

FRAMES = 48
STEP = 3600  # 25 fps at 90 kHz


@pytest.fixture(scope="module")
def model(near_identity_file) -> Path:
    return near_identity_file(2)


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    """``one``: a 48-frame 25 fps TS with AAC audio; ``joined``: it twice, byte for byte (``cat one.ts one.ts``);
    ``ahead``: 24 frames, then 24 more 60 s later (an edited recording)."""
    d = tmp_path_factory.mktemp("discont")
    one = media.make_clip(d / "one.ts", frames=FRAMES, format="mpegts", audio=[media.AudioTrack()],
                          options={"g": "12"})
    joined = d / "joined.ts"
    joined.write_bytes(one.read_bytes() * 2)
    pts = [40 * i for i in range(24)] + [60_000 + 40 * i for i in range(24, 48)]
    ahead = media.make_clip(d / "ahead.ts", pts=pts, format="mpegts", options={"g": "12"})
    return {"one": one, "joined": joined, "ahead": ahead}


read = media.read_frames


def packets(path: Path, kind: str) -> list[tuple[int, int]]:
    """(pts, duration) of the ``kind`` stream's packets, in presentation order, in milliseconds for Matroska."""
    with av.open(str(path)) as c:
        st = getattr(c.streams, kind)[0]
        return sorted((p.pts, p.duration) for p in c.demux(st) if p.size)


# -- the rule (pure) ---------------------------------------------------------------------------------------------


def test_find_jumps_back_ahead_and_within_the_threshold():
    pts = [7200 + STEP * i for i in range(10)]
    dts = [p - STEP for p in pts]
    threshold = 900_000  # 10 s at 90 kHz
    assert find_jumps(dts, pts, step=STEP, threshold=threshold) == []
    # joined twice: back at packet 10, then again at 20 — offsets add up, each piece follows on one step later
    jumps = find_jumps(dts * 3, pts * 3, step=STEP, threshold=threshold)
    last = pts[-1]
    assert jumps == [Jump(packet=10, before=last, raw=7200, offset=last + STEP - 7200, back=True, before_raw=last),
                     Jump(packet=20, before=2 * (last + STEP) - 7200 - STEP, raw=7200,
                          offset=2 * (last + STEP - 7200), back=True, before_raw=last)]
    assert [j.after for j in jumps] == [last + STEP, 2 * (last + STEP) - 7200]
    # ahead by 60 s: a jump; by 5 s: not one (those are missing frames)
    for gap, found in ((60 * 90_000, 1), (5 * 90_000, 0)):
        later = [p + gap for p in pts]
        got = find_jumps(dts + [d + gap for d in dts], pts + later, step=STEP, threshold=threshold)
        assert len(got) == found
        if found:
            assert not got[0].back and got[0].after == last + STEP
    # B-frames: pts out of decode order within a piece is no jump; the piece's first frame is its smallest pts
    b_pts = [7200, 14400, 10800, 21600, 18000]
    b_dts = [0, 3600, 7200, 10800, 14400]
    got = find_jumps(b_dts * 2, b_pts * 2, step=STEP, threshold=threshold)
    assert got == [Jump(packet=5, before=21600, raw=7200, offset=21600 + STEP - 7200, back=True, before_raw=21600)]


def test_stream_mender_keeps_sync_and_never_overlaps():
    s = Fraction
    # audio that ends with the video: moved by the video's offset exactly
    m = StreamMender([s(5)])
    assert [m.fix(s(t, 10), s(1, 10)) for t in range(0, 50)] == [0] * 50  # 0.0 .. 4.9 s, ends at 5.0
    assert m.fix(s(0), s(1, 10)) == 5 and m.fix(s(1, 10), s(1, 10)) == 5
    # audio that starts a packet before its video (priming): it follows on from where it left off instead
    m = StreamMender([s(5)])
    for t in range(0, 50):
        m.fix(s(t, 10), s(1, 10))
    assert m.fix(s(-1, 10), s(1, 10)) == s(51, 10)  # starts at 5.0, not 4.9 (inside the last packet)
    # a small step back (< 0.1 s) is no jump; nor anything once the video's jumps are used up
    m = StreamMender([s(5)])
    m.fix(s(1), s(1, 10))
    assert m.fix(s(1) - s(1, 20)) == 0
    assert m.fix(s(0)) == 5  # a real jump back: the video's offset
    assert m.fix(s(-5)) == 5  # a second one with no second video jump: nothing more
    m = StreamMender([])
    m.fix(s(3))
    assert m.fix(s(0)) == 0


def test_one_jump_rule_in_ticks_and_seconds():
    back, threshold = tolerances(Fraction(1, 90_000))
    assert (back, threshold) == (9000, 900_000)  # 0.1 s and 10 s at 90 kHz
    assert not jumped(100_000, 100_000 - back, back=back, threshold=threshold)  # back by the tolerance: damage
    assert jumped(100_000, 100_000 - back - 1, back=back, threshold=threshold)
    assert not jumped(0, threshold, back=back, threshold=threshold)  # ahead by the threshold: missing frames
    assert jumped(0, threshold + 1, back=back, threshold=threshold)
    assert jumped(Fraction(1), Fraction(1, 2), back=Fraction(1, 10), threshold=Fraction(10))  # seconds too


def test_gap_rule_leaves_out_steps_beyond_the_threshold():
    cfr = [STEP * i for i in range(20)]
    jumped = cfr[:10] + [p + 60 * 90_000 for p in cfr[10:]]
    assert timestamp_gaps(jumped)[0] == 60 * 25  # without the threshold: 1500 frames "missing"
    assert timestamp_gaps(jumped, max_step=900_000) == (0, None)
    gappy = cfr[:10] + cfr[15:]
    assert timestamp_gaps(gappy, max_step=900_000) == timestamp_gaps(gappy) == (5, STEP * 10)


def test_only_mpeg_ts_and_ps_restart_their_clocks():
    assert has_discontinuities("mpegts") and has_discontinuities("mpeg")
    for name in ("matroska,webm", "mov,mp4,m4a,3gp,3g2,mj2", "avi", "nut", "flv"):
        assert not has_discontinuities(name)


# -- the reader and the packet index -----------------------------------------------------------------------------


def test_joined_ts_reads_every_frame_on_one_timeline(clips):
    frames, stats, said = read(clips["joined"])
    pts = [f.pts for f in frames]
    assert len(frames) == 2 * FRAMES and [f.index for f in frames] == list(range(2 * FRAMES))
    assert pts == [7200 + STEP * i for i in range(2 * FRAMES)]  # one frame step across the join
    assert not stats.damaged and stats.lost_frames == 0
    with open_input(clips["joined"]) as inp:
        base = inp.info.start_time
        times = inp.frame_times()
        index = inp.packet_index()
        assert inp.info.frame_count_in() < 2 * FRAMES  # the container's duration spans one recording
        assert inp.frame_count_in() == 2 * FRAMES and inp.frame_count_in(40, 60) == 20  # (progress totals)
    assert times == [p * Fraction(1, 90000) - base for p in pts]  # the index agrees with the reader
    assert [j.packet for j in index.jumps] == [FRAMES]
    t = lambda p: f"{float(p * Fraction(1, 90000) - base):.3f} s"  # noqa: E731
    assert said == [f"{clips['joined'].name}: its timestamps jump back from {t(7200 + STEP * 47)} to {t(7200)} at "
                    f"frame 48 (joined recordings?); the rest follows on from {t(7200 + STEP * 48)}"]


def test_a_jump_ahead_beyond_the_threshold_is_not_lost_frames(clips):
    frames, stats, said = read(clips["ahead"])
    assert len(frames) == FRAMES and stats.lost_frames == 0 and not stats.damaged
    assert [f.pts - frames[0].pts for f in frames] == [STEP * i for i in range(FRAMES)]
    assert len(said) == 1 and "jump ahead from" in said[0] and "at frame 24 (an edited recording?)" in said[0]


def test_a_gap_within_the_threshold_is_still_lost_frames(tmp_path):
    pts = [40 * i for i in range(20)] + [40 * i for i in range(25, 45)]  # 5 frames missing at 0.8 s
    clip = media.make_clip(tmp_path / "gap.ts", pts=pts, format="mpegts", options={"g": "12"})
    frames, stats, said = read(clip)
    assert len(frames) == 40 and stats.lost_frames == stats.gap_frames == 5
    assert len(said) == 1 and "5 frame(s) could not be decoded" in said[0]
    assert read_packet_index(clip).jumps == ()


def test_a_clean_ts_is_unchanged(clips):
    frames, stats, said = read(clips["one"])
    assert [f.pts for f in frames] == [7200 + STEP * i for i in range(FRAMES)]
    assert said == [] and not stats.damaged
    assert read_packet_index(clips["one"]).jumps == ()


def test_start_and_end_across_the_join_count_on_the_mended_timeline(clips):
    with open_input(clips["joined"]) as inp:
        times = inp.frame_times()
        assert inp._seek_target(Fraction(1)) is None  # the demuxer's seek knows only the file's times
    for start, end in [(40, 60), (times[50], None), (None, times[55]), (FRAMES, FRAMES + 3)]:
        frames, stats, said = read(clips["joined"], start=start, end=end)
        lo = start if isinstance(start, int) else 0 if start is None else times.index(start)
        hi = end if isinstance(end, int) else 2 * FRAMES if end is None else times.index(end)
        assert [f.index for f in frames] == list(range(lo, hi)), (start, end)
        assert not stats.damaged
        assert len(said) == (1 if lo <= FRAMES < hi else 0), (start, end, said)  # told by the run that yields it


# -- through the command line ------------------------------------------------------------------------------------


def test_joined_ts_with_audio_upscales_in_sync(clips, model, tmp_path, capfd):
    dst = tmp_path / "out.mkv"
    p = run_cli(capfd, clips["joined"], dst, "--model", model, "-y")
    assert p.returncode == 0, p.stderr
    assert "jump back from" in p.stderr and "Traceback" not in p.stderr and "skipped" not in p.stderr
    video, audio = packets(dst, "video"), packets(dst, "audio")
    assert len(video) == 2 * FRAMES
    vt = [t for t, _ in video]
    assert all(b - a == 40 for a, b in zip(vt, vt[1:])), vt  # strictly increasing, one frame step throughout
    with av.open(str(clips["one"])) as c:
        per_file = sum(1 for q in c.demux(c.streams.audio[0]) if q.size)
    assert len(audio) == 2 * per_file  # every audio packet
    at = [t for t, _ in audio]
    assert all(0 < b - a <= d + 1 for (a, d), b in zip(audio, at[1:])), at  # continuous: no overlap, no hole
    join_v = vt[FRAMES]
    join_a = at[per_file]
    assert abs(join_a - join_v) <= 40, (join_a, join_v)  # in sync within a frame after the join
    assert abs(at[0] - vt[0]) <= 40


def test_trimmed_across_the_join(clips, model, tmp_path, capfd):
    with open_input(clips["joined"]) as inp:
        times = inp.frame_times()
    start = times[FRAMES - 10]  # 10 frames before the join, on the mended timeline
    dst = tmp_path / "trim.mkv"
    p = run_cli(capfd, clips["joined"], dst, "--model", model, "-y", "--start", f"{float(start):.4f}")
    assert p.returncode == 0, p.stderr
    video, audio = packets(dst, "video"), packets(dst, "audio")
    assert len(video) == FRAMES + 10
    vt = [t for t, _ in video]
    assert vt[0] <= 40 and all(b - a == 40 for a, b in zip(vt, vt[1:]))  # (the muxer moves all to the audio's 0)
    at = [t for t, _ in audio]
    assert abs(at[0] - vt[0]) <= 40 and all(0 < b - a <= d + 1 for (a, d), b in zip(audio, at[1:]))
    with av.open(str(clips["one"])) as c:
        per_file = sum(1 for q in c.demux(c.streams.audio[0]) if q.size)
    assert abs(at[len(at) - per_file] - vt[10]) <= 40  # the second recording's audio starts with its first frame
    assert abs(at[-1] + audio[-1][1] - (vt[-1] + 40)) <= 40  # the audio runs to the end of the video


def test_batch_segments_across_the_join_match_one_pass(clips, tmp_path):
    joined, single, count = media.segments_and_one_pass(clips["joined"], Fraction(1), tmp_path)
    assert count >= 3
    assert packets(joined, "video") == packets(single, "video")
    assert packets(joined, "audio") == packets(single, "audio")
    assert len(packets(joined, "video")) == 2 * FRAMES


def test_joined_program_stream_too(tmp_path):
    one = media.make_clip(tmp_path / "one.mpg", codec="mpeg2video", frames=FRAMES, options={"g": "12", "bf": "2"},
                          format="mpeg", audio=[media.AudioTrack(codec="mp2")])
    joined = tmp_path / "joined.mpg"
    joined.write_bytes(one.read_bytes() * 2)
    frames, stats, said = read(joined)
    pts = [f.pts for f in frames]
    assert len(frames) == 2 * FRAMES and all(b - a == STEP for a, b in zip(pts, pts[1:]))
    assert not stats.damaged and len(said) == 1 and "jump back from" in said[0] and "at frame 48" in said[0]
