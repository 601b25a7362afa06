"""Batch progress: the running file's frames, fps and ETA and the batch's total while files run (workers report
progress to the driver), as pure state and through a real batch with a worker process."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from esrgan_video.batch import run_batch
from esrgan_video.batch.progress import BatchProgress, format_eta
from esrgan_video.batch.worker import ProgressThrottle
from esrgan_video.cli.batch import BatchReporter
from media import make_clip


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_a_dropped_file_is_no_file_of_the_total_and_weighs_nothing():
    """A file refused when judged (its output cannot be written) is dropped: the batch's total counts the files that
    run (it said 2/3 files done for two that ran), and its duration is no share of the fraction."""
    bp = BatchProgress({"a.mkv": 10.0, "tiny.mkv": 30.0, "b.mkv": 10.0}, clock=Clock())
    bp.drop("tiny.mkv")
    assert "tiny.mkv" not in bp
    bp.update("a.mkv", "a.mkv", 5, 10, 5.0)
    snap = bp.snapshot()
    assert (snap.done_files, snap.total_files, snap.fraction) == (0, 2, pytest.approx(0.25))
    bp.task_done("a.mkv", "a.mkv", 10)
    bp.job_done("a.mkv")
    assert bp.snapshot().line().startswith("batch  1/2 files done, 50%")


def test_batch_fraction_weighs_files_by_duration_and_sums_segments():
    clock = Clock()
    bp = BatchProgress({"a.mkv": 10.0, "b.mkv": 30.0, "c.mkv": None}, clock=clock)
    snap = bp.snapshot()
    assert (snap.done_files, snap.total_files, snap.fraction, snap.files, snap.eta) == (0, 3, 0.0, (), None)
    clock.t += 10
    bp.update("a.mkv", "a.mkv", 50, 100, 5.0)
    snap = bp.snapshot()
    (f,) = snap.files
    assert (f.key, f.frames, f.total) == ("a.mkv", 50, 100)
    assert f.fps == pytest.approx(5.0) and f.eta == pytest.approx(10.0)
    # c has no duration: it weighs the mean of the known ones (20 s); a is half done: 5 of 10 + 30 + 20 seconds
    assert snap.fraction == pytest.approx(5 / 60)
    assert snap.eta == pytest.approx(10 * (1 - 5 / 60) / (5 / 60))
    assert "50/100 frames" in f.line() and "ETA 0:10" in f.line() and "0/3 files done" in snap.line()
    bp.task_done("a.mkv", "a.mkv", 100)
    bp.job_done("a.mkv")
    # b is segmented: its scan said 300 frames, two segments run at once on two workers
    bp.set_total("b.mkv", 300)
    bp.update("b.mkv", "b.mkv#seg0000", 60, 150, 2.0)
    bp.update("b.mkv", "b.mkv#seg0001", 90, 150, 3.0)
    snap = bp.snapshot()
    (f,) = snap.files
    assert (f.key, f.frames, f.total, f.fps, f.eta) == ("b.mkv", 150, 300, 5.0, 30.0)
    assert snap.fraction == pytest.approx((10 + 15) / 60) and snap.done_files == 1 and snap.frames == 250
    bp.task_done("b.mkv", "b.mkv#seg0000", 150)
    assert bp.snapshot().files[0].frames == 240
    for job in ("b.mkv", "c.mkv"):
        bp.job_done(job)
    assert bp.snapshot().fraction == 1.0 and bp.snapshot().done_files == 3
    assert format_eta(3725) == "1:02:05" and format_eta(65) == "1:05" and format_eta(None) == "?"


def test_a_resumed_files_kept_segments_count_for_the_file_not_for_the_runs_work():
    """A segmented file resumed with half its segments done: its line starts at the kept frames (its ETA is of what
    is left), and the batch's fraction is of this run's work, so it does not sit at half and jump at the join."""
    clock = Clock()
    bp = BatchProgress({"a.mkv": 10.0, "b.mkv": 10.0}, clock=clock)
    bp.set_total("a.mkv", 100)
    bp.set_kept("a.mkv", 50)  # segments 0 and 1 of 4 made by the run that was interrupted
    clock.t += 5
    bp.update("a.mkv", "a.mkv#seg0002", 25, 25, 5.0)
    snap = bp.snapshot()
    (f,) = snap.files
    assert (f.frames, f.total, f.eta) == (75, 100, 5.0) and snap.frames == 25  # 25 rendered by this run
    assert snap.fraction == pytest.approx(5 * 0.5 / 15)  # a weighs its 5 s left, half of which is done
    bp.task_done("a.mkv", "a.mkv#seg0002", 25)
    bp.task_done("a.mkv", "a.mkv#seg0003", 25)
    before_join = bp.snapshot().fraction
    bp.job_done("a.mkv")
    assert before_join == pytest.approx(bp.snapshot().fraction) == pytest.approx(5 / 15)


def test_a_task_lost_with_its_worker_no_longer_shows_its_frames():
    clock = Clock()
    bp = BatchProgress({"a.mkv": 10.0}, clock=clock)
    clock.t += 2
    bp.update("a.mkv", "a.mkv", 40, 100, 20.0, frames_reused=3, tiles_reused=5)
    assert bp.snapshot().files[0].frames == 40
    bp.task_lost("a.mkv", "a.mkv")  # SIGKILL: the redo starts from its first frame in a new worker
    snap = bp.snapshot()
    assert snap.files == () and snap.fraction == 0.0 and snap.frames == 0 and snap.frames_reused == 0


def test_worker_progress_is_throttled_but_the_last_frame_always_goes():
    sent, clock = [], Clock()
    th = ProgressThrottle(sent.append, interval=0.5, clock=clock)
    for frame in range(1, 11):
        clock.t += 0.2
        th(SimpleNamespace(frame=frame, total=10, fps=5.0, eta=1.0))
    assert [s["frame"] for s in sent] == [1, 4, 7, 10]
    assert set(sent[0]) == {"frame", "total", "fps", "eta"}


def test_reporter_bar_redraws_one_line_and_prints_logs_above_it(tmp_path):
    import io

    stream = io.StringIO()
    r = BatchReporter("bar", stream=stream, interval=0.0)
    clock = Clock()
    bp = BatchProgress({"a.mkv": 1.0}, clock=clock)
    bp.update("a.mkv", "a.mkv", 3, 10, 1.0)
    r(bp.snapshot())
    r.log("done     x.mkv")
    r.close()
    text = stream.getvalue()
    assert "\r" in text and "a.mkv  3/10 frames" in text and "esrgan-video batch: done     x.mkv\n" in text
    assert text.endswith("\r")  # the status line is cleared at the end
    stream = io.StringIO()
    BatchReporter("json", stream=stream)(bp.snapshot())
    obj = json.loads(stream.getvalue())
    assert obj["files"] == [{"file": "a.mkv", "frame": 3, "total": 10, "fps": 1.0, "eta": 7.0}]
    assert obj["batch"]["files"] == 1 and obj["batch"]["done"] == 0


def test_a_file_name_with_a_newline_keeps_every_log_line_table_row_and_bar_one_line():
    import io

    from esrgan_video.batch.driver import BatchSummary, JobRow

    key = "new\nline\t\udcff.mkv"  # a newline, a tab and an undecodable byte (surrogateescape) in a file name
    stream = io.StringIO()
    r = BatchReporter("bar", stream=stream, interval=0.0)
    bp = BatchProgress({key: 1.0}, clock=Clock())
    bp.update(key, key, 3, 10, 1.0)
    r(bp.snapshot())
    r.log(f"failed   {key}: cannot be read")
    r.close()
    assert "esrgan-video batch: failed   new\\nline\\t\\udcff.mkv: cannot be read\n" in stream.getvalue()
    assert "new\\nline\\t\\udcff.mkv  3/10 frames" in stream.getvalue()
    assert stream.getvalue().count("\n") == 1
    table = BatchSummary([JobRow(key, Path("/l") / key, Path("/o") / key, status="failed", error=f"/l/{key}: bad")],
                         1.0).table()
    assert len(table.splitlines()) == 3 and "new\\nline\\t\\udcff.mkv: /l/new\\nline" in table, table
    BatchReporter("json", stream=io.StringIO())(bp.snapshot())  # JSON keeps the name as it is (escaped by JSON)


@pytest.fixture(scope="module")
def model_file(near_identity_file) -> Path:
    return near_identity_file(2)  # nf 8, nb 1, gc 4


def test_progress_arrives_while_files_run(tmp_path, model_file):
    lib = tmp_path / "lib"
    lib.mkdir()
    for name in ("one", "two"):
        make_clip(lib / f"{name}.mkv", codec="ffv1", size=(96, 64), frames=24)
    snaps = []
    s = run_batch([lib], tmp_path / "out", model=str(model_file), codec="ffv1", threads=1, log=lambda m: None,
                  progress=snaps.append)
    assert s.exit_code == 0 and s.count("done") == 2
    running = [snap for snap in snaps if snap.files]
    assert running, "no progress while the files ran"
    mid = [f for snap in running for f in snap.files if 0 < f.frames < 24]
    assert mid and all(f.total == 24 for f in mid)  # a bar with frames, total, fps and ETA before the file ends
    assert any(f.fps > 0 and f.eta is not None for f in mid)
    fractions = [snap.fraction for snap in snaps]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert snaps[-1].done_files == 2 and snaps[-1].frames == 48
    json.dumps(snaps[-1].as_json())


def test_a_segmented_files_total_comes_from_its_scan(tmp_path, model_file):
    """A file cut into segments shows its whole frame count (the plan task's scan) while its segments run, not the
    sum of the segments that happen to be running."""
    lib = tmp_path / "lib"
    lib.mkdir()
    make_clip(lib / "long.mkv", frames=12, options={"x264-params": "keyint=4:min-keyint=4:scenecut=0"})
    snaps = []
    s = run_batch([lib], tmp_path / "out", model=str(model_file), codec="ffv1", threads=1, segment_seconds=0.16,
                  log=lambda m: None, progress=snaps.append)
    assert s.exit_code == 0 and s.rows[0].segments == 3
    running = [f for snap in snaps for f in snap.files]
    assert running and all(f.total == 12 for f in running), [(f.frames, f.total) for f in running]


def test_a_resumed_segmented_file_starts_from_its_kept_segments(tmp_path, model_file):
    """Resumed with two of its three segments kept (the first run's join failed; one segment is then lost): the
    file's progress counts the kept frames, and the batch reaches all of its work when the last segment is done."""
    lib, out = tmp_path / "lib", tmp_path / "out"
    (lib / "sub").mkdir(parents=True)
    make_clip(lib / "sub" / "long.mkv", frames=12, options={"x264-params": "keyint=4:min-keyint=4:scenecut=0"})
    out.mkdir()
    (out / "sub").write_text("in the way")  # the join cannot write its output: the segments stay for a resume
    opts = dict(model=str(model_file), codec="ffv1", threads=1, segment_seconds=0.16, log=lambda m: None)
    assert run_batch([lib], out, **opts).rows[0].segments == 3
    (out / "sub").unlink()
    (middle,) = (out / ".esrgan-video-segments").glob("*/0001.mkv")
    middle.unlink()
    snaps = []
    s = run_batch([lib], out, retry_failed=True, progress=snaps.append, **opts)
    assert s.exit_code == 0 and s.rows[0].rendered == 4
    running = [f for snap in snaps for f in snap.files]
    assert running and max(f.frames for f in running) == 12 and all(f.frames >= 8 for f in running), \
        [(f.frames, f.total) for f in running]
    fractions = [snap.fraction for snap in snaps]
    assert fractions == sorted(fractions) and fractions[-2:] == [1.0, 1.0], fractions  # the segment, then the join


def test_a_file_whose_worker_died_drops_out_of_the_progress_until_its_redo_reports(tmp_path, model_file):
    """SIGKILL of the worker mid-file: the next snapshot no longer shows the dead worker's frames, fps and ETA
    (they froze there until the redo, in a new worker, reported from its first frame again).

    The worker is stopped (SIGSTOP) at its first report, and killed only once its temporary file is seen still there:
    it is mid-file whatever the load (a worker that ran on while the driver was slow to handle its report could
    otherwise have finished the file, leaving no partial to find, or give no report between its first and last)."""
    import os
    import signal

    from esrgan_video.video.partials import partials_of

    lib, out = tmp_path / "lib", tmp_path / "out"
    lib.mkdir()
    make_clip(lib / "a.mkv", codec="ffv1", size=(160, 120), frames=40)
    snaps, killed = [], []

    def progress(snap):
        snaps.append(snap)
        mine = [f for f in snap.files if f.key == "a.mkv"]
        if not killed and mine:
            parts = partials_of(out / "a.mkv")
            assert len(parts) == 1, f"the worker reported frame {mine[0].frames} but its partial is {parts}"
            (part, pid), = parts
            os.kill(pid, signal.SIGSTOP)  # it can write no more frames nor finish the file
            assert part.exists() and mine[0].frames < 40, "the worker finished the file before it could be stopped"
            os.kill(pid, signal.SIGKILL)
            killed.append(len(snaps) - 1)

    s = run_batch([lib], out, model=str(model_file), codec="ffv1", threads=1, devices="cpu", log=lambda m: None,
                  progress=progress)
    assert killed and s.exit_code == 0 and s.rows[0].frames == 40
    seq = [next((f.frames for f in snap.files if f.key == "a.mkv"), None) for snap in snaps]
    assert not [i for i in range(len(seq) - 1) if seq[i] and seq[i + 1] and seq[i + 1] < seq[i]], seq
    # after the kill the file leaves the progress (the task is lost) before the redo shows it again from frame 1
    after = seq[killed[0]:]
    gone = after.index(None) if None in after else len(after)
    assert gone < len(after) - 1 and after[gone + 1] is not None and after[gone + 1] <= after[0], seq
