"""A batch file whose output its encoder cannot take is refused by the driver, alone (``batch.driver._judged``).

The driver judges each file's output as ``upscale_video`` does before its model (``output_plan.check_plan``, the one
rule set): a 2x2 input x4 is 8x8, which libx265 does not open on (16x16 at least). That file fails before a worker
gets it, in the one line a single run says (naming its output), and is not journalled; the others are written.
Without the check it went to a worker, which failed it there and journalled it failed. The files are judged in a
thread of the driver while the workers start and run (not all of them before any worker starts: ~35 ms a 1080p
H.264 file), each before it is handed out.
"""

from __future__ import annotations

from pathlib import Path

from esrgan_video.batch import BATCH_FAILED_EXIT, run_batch
from esrgan_video.batch.journal import JOURNAL_NAME, parse_lines
from media import make_clip


def test_an_output_the_encoder_cannot_take_fails_up_front_alone(tmp_path: Path, near_identity_file) -> None:
    lib, out = tmp_path / "lib", tmp_path / "out"
    lib.mkdir()
    make_clip(lib / "tiny.mkv", frames=2, size=(2, 2))    # x4: 8x8, under libx265's 16x16
    make_clip(lib / "fine.mkv", frames=2, size=(16, 16))  # x4: 64x64
    said, snaps = [], []
    s = run_batch([lib], out, model=str(near_identity_file(4)), devices="cpu", codec="libx265", threads=1,
                  segment_seconds=0, log=said.append, progress=snaps.append)
    rows = {r.key: r for r in s.rows}
    assert {k: r.status for k, r in rows.items()} == {"tiny.mkv": "failed", "fine.mkv": "done"}
    assert rows["tiny.mkv"].error == (f"{out / 'tiny.mkv'}: libx265 cannot encode frames smaller than 16x16, got 8x8; "
                                      "use --codec libx264, or a larger --scale or --size")
    assert s.exit_code == BATCH_FAILED_EXIT
    assert not (out / "tiny.mkv").exists() and (out / "fine.mkv").exists()
    records = parse_lines((out / JOURNAL_NAME).read_text())
    assert "tiny.mkv" not in records and records["fine.mkv"]["state"] == "done"  # no worker ever had it
    # the refused file is no file the batch runs: not in its progress total, counted apart once every file is judged
    assert (snaps[-1].done_files, snaps[-1].total_files, snaps[-1].fraction) == (1, 1, 1.0)
    assert said[0] == "2 files: 2 to run, 0 already done"  # said before any is judged
    assert "checked  2 files to run: 1 refused before running, 1 runs" in said
    assert rows["tiny.mkv"].refused and not rows["fine.mkv"].refused
    assert s.table().splitlines()[-1].startswith("2 files: 1 done, 0 skipped, 1 failed (1 refused before running); ")
    assert s.as_json()["batch"]["refused"] == 1


def test_the_first_file_is_handed_out_before_the_others_are_judged(tmp_path: Path, near_identity_file,
                                                                  monkeypatch) -> None:
    """The driver judges each file (one open of its source) in a thread as the batch runs, in order, and hands a file
    out once it is judged: the first file goes to a worker while the others wait to be opened. Before, every file
    was opened (twice: the check, then the header's duration) before any worker started: ~35 ms a 1080p H.264 file,
    half a minute of silence for a library of 1000. The scheduler here takes the tasks and runs none."""
    import threading

    from esrgan_video.batch import scheduler
    from esrgan_video.video import reader

    lib = tmp_path / "lib"
    lib.mkdir()
    for name in ("a.mkv", "b.mkv", "c.mkv"):
        make_clip(lib / name, frames=2, size=(16, 16))
    release, opened, waited_out, seen = threading.Event(), [], [], {}
    real = reader.open_input

    def gated(path, *args, **kwargs):  # b and c are opened only once a's task is out (or after 3 s: the old order)
        if Path(path).name != "a.mkv" and not release.wait(3):
            waited_out.append(Path(path).name)
        opened.append(Path(path).name)
        return real(path, *args, **kwargs)

    class TakesTasks:
        def __init__(self, *args, **kwargs) -> None:
            pass

        def run(self, plan) -> None:
            first = plan.next_task()
            seen["first"], seen["opened"] = first.job_key, list(opened)
            release.set()
            seen["then"] = [plan.next_task().job_key for _ in range(2)]
            assert plan.next_task() is None and plan.finished()

    monkeypatch.setattr(reader, "open_input", gated)
    monkeypatch.setattr(scheduler, "LocalScheduler", TakesTasks)
    s = run_batch([lib], tmp_path / "out", model=str(near_identity_file(4)), devices="cpu", threads=1,
                  log=lambda m: None)
    assert seen == {"first": "a.mkv", "opened": ["a.mkv"], "then": ["b.mkv", "c.mkv"]} and waited_out == []
    assert opened == ["a.mkv", "b.mkv", "c.mkv"]  # each once: its check and its duration from one open
    assert [r.error for r in s.rows] == ["not run"] * 3  # none was run here


def test_a_batch_whose_every_file_is_refused_starts_no_worker(tmp_path: Path, near_identity_file,
                                                              monkeypatch) -> None:
    """The first file is judged before the workers start: when every file is refused, none starts (their start and
    model load would be for nothing), and the refusal is said in the log as the file's line."""
    from esrgan_video.batch import scheduler

    def no_workers(*args, **kwargs):
        raise AssertionError("a worker was started")

    monkeypatch.setattr(scheduler, "LocalScheduler", no_workers)
    lib, out = tmp_path / "lib", tmp_path / "out"
    lib.mkdir()
    make_clip(lib / "tiny.mkv", frames=2, size=(2, 2))
    said: list[str] = []
    s = run_batch([lib], out, model=str(near_identity_file(4)), devices="cpu", codec="libx265", threads=1,
                  segment_seconds=0, log=said.append)
    assert [(r.key, r.status) for r in s.rows] == [("tiny.mkv", "failed")] and s.exit_code == BATCH_FAILED_EXIT
    assert f"failed   tiny.mkv: {out / 'tiny.mkv'}: libx265 cannot encode frames smaller than 16x16" in "\n".join(said)
    assert "tiny.mkv" not in parse_lines((out / JOURNAL_NAME).read_text())
