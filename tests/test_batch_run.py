"""Batch runs with real worker processes, a tiny near-identity model and tiny clips (ffv1, lossless).

Oracle for every output: the single-file streaming core (``upscale_video``) run in this process with the
same options — batch, resumed, segmented and Ray outputs must decode to the same frames at the same
timestamps. Each test starts a few worker processes (forked from a fork server that imported torch once: the first
of the session takes a few seconds, later ones a fraction of a second).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from esrgan_video.batch import BATCH_FAILED_EXIT, run_batch
from esrgan_video.batch.journal import JOURNAL_NAME, parse_lines
from esrgan_video.errors import OutputError
from esrgan_video.pipeline import upscale_video

from media import (AudioTrack, Chapter, SubtitleTrack, make_audio_only, make_clip, make_corrupt, make_not_media,
                   make_truncated, default_signals, descendants)

OPTS = dict(codec="ffv1", threads=1)  # fixed threads: CPU results must not depend on the machine's core count
OPEN_GOP = {"bf": "2", "x264-params": "open-gop=1:keyint=4:min-keyint=4:scenecut=0"}


@pytest.fixture(scope="module")
def model_file(near_identity_file) -> Path:
    return near_identity_file(2)  # nf 8, nb 1, gc 4


def frames_of(path: Path) -> list[tuple[int, str]]:
    """(pts, sha1 of the decoded planes) of every video frame."""
    with av.open(str(path)) as c:
        return [(f.pts, hashlib.sha1(b"".join(bytes(p) for p in f.planes)).hexdigest())
                for f in c.decode(c.streams.video[0])]


def describe(path: Path) -> dict:
    """Everything a single pass and a joined output must agree on."""
    d: dict = {"frames": frames_of(path)}
    with av.open(str(path)) as c:
        d["streams"] = [(s.type, s.codec_context.name if s.codec_context else None, dict(s.metadata)) for s in c.streams]
        d["metadata"] = dict(c.metadata)
        d["chapters"] = c.chapters()
        # timestamps only: every segment starts with a keyframe, so keyframe flags may differ from a single pass
        d["video_packets"] = [(p.pts, p.dts) for p in c.demux(c.streams.video[0]) if p.size]
    with av.open(str(path)) as c:
        d["other_packets"] = [(p.stream.index, p.pts, p.dts, p.duration, hashlib.sha1(bytes(p)).hexdigest())
                              for p in c.demux() if p.stream.type != "video" and p.size]
    return d


def single_pass(src: Path, dst: Path, model: Path) -> Path:
    """The oracle: one uninterrupted upscale_video run in this process."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        upscale_video(src, dst, model=str(model), codec="ffv1", device="cpu", overwrite=True)
    finally:
        torch.set_num_threads(threads)
    return dst


def state(path: Path) -> tuple[str, int]:
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns


def partials(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if ".partial" in p.name]


def journal(out: Path) -> dict:
    return parse_lines((out / JOURNAL_NAME).read_text()) if (out / JOURNAL_NAME).exists() else {}


def test_bad_files_do_not_stop_the_batch_and_rerun_resumes(tmp_path: Path, model_file: Path) -> None:
    lib, out = tmp_path / "lib", tmp_path / "out"
    (lib / "season").mkdir(parents=True)
    good = make_clip(lib / "good.mkv", frames=8, audio=[AudioTrack()])
    make_clip(lib / "season" / "good2.mkv", frames=8, seed=3)
    make_corrupt(good, lib / "damaged.mkv", frames=[4])          # one packet of noise: damaged (output kept)
    make_truncated(good, lib / "season" / "cut.mkv", keep=0.2)   # cannot be decoded: failed
    make_not_media(lib / "text.mkv")                             # not media: failed
    make_audio_only(lib / "season" / "music.mkv")                # no video: failed
    (lib / "notes.txt").write_text("not a video extension: never picked up\n")

    s1 = run_batch([lib], out, model=str(model_file), devices="cpu", log=lambda m: None, **OPTS)
    rows = {r.key: r for r in s1.rows}
    assert set(rows) == {"good.mkv", "damaged.mkv", "text.mkv", "season/good2.mkv", "season/cut.mkv", "season/music.mkv"}
    assert [rows[k].status for k in ("good.mkv", "season/good2.mkv", "damaged.mkv")] == ["done", "done", "damaged"]
    assert rows["damaged.mkv"].lost_frames == 1 and "damaged.mkv: 1 frame(s) could not be decoded" in s1.table()
    assert journal(out)["damaged.mkv"]["damage"].startswith("damaged.mkv: 1 frame(s) could not be decoded")
    assert {k for k, r in rows.items() if r.status == "failed"} == {"text.mkv", "season/cut.mkv", "season/music.mkv"}
    assert "text.mkv" in rows["text.mkv"].error and "no video" in rows["season/music.mkv"].error.lower()
    # one line naming the file once, with FFmpeg's reason (not its error's text: '[Errno 1094995529] ...: PATH')
    assert rows["text.mkv"].error.count("text.mkv") == 1 and "Errno" not in rows["text.mkv"].error, rows["text.mkv"]
    assert "Invalid data found when processing input" in rows["text.mkv"].error
    assert s1.exit_code == BATCH_FAILED_EXIT
    for key in ("text.mkv", "season/cut.mkv", "season/music.mkv"):
        assert not (out / key).exists()
    assert not partials(out)
    assert frames_of(out / "good.mkv") == frames_of(single_pass(good, tmp_path / "ref.mkv", model_file))
    before = {k: state(out / k) for k in ("good.mkv", "season/good2.mkv", "damaged.mkv")}

    # rerun: finished files are verified and skipped untouched, failed ones stay failed (no --retry-failed)
    s2 = run_batch([lib], out, model=str(model_file), devices="cpu", log=lambda m: None, **OPTS)
    assert {r.key: r.status for r in s2.rows} == {k: r.status if r.status in ("failed", "damaged") else "skipped"
                                                  for k, r in rows.items()}  # a damaged input still says so
    assert "earlier run" in {r.key: r for r in s2.rows}["text.mkv"].error and s2.exit_code == BATCH_FAILED_EXIT
    assert {k: state(out / k) for k in before} == before

    # other options: refused before anything runs, then redone with --force
    with pytest.raises(OutputError, match="--force"):
        run_batch([lib], out, model=str(model_file), devices="cpu", tile=16, log=lambda m: None, **OPTS)
    assert {k: state(out / k) for k in before} == before
    (out / "season" / "good2.mkv").write_bytes(b"tampered")  # a damaged output is redone, not trusted
    s3 = run_batch([lib], out, model=str(model_file), devices="cpu", tile=16, force=True, retry_failed=True,
                   log=lambda m: None, **OPTS)
    statuses = {r.key: r.status for r in s3.rows}
    assert statuses == {k: r.status for k, r in rows.items()}
    assert all(state(out / k)[1] != before[k][1] for k in before)
    assert len(frames_of(out / "season" / "good2.mkv")) == 8


def test_segmented_output_equals_single_pass_and_resumes_from_segments(tmp_path: Path, model_file: Path) -> None:
    lib, out = tmp_path / "lib", tmp_path / "out"
    (lib / "sub").mkdir(parents=True)
    src = make_clip(lib / "sub" / "long.mkv", frames=12, options=OPEN_GOP, audio=[AudioTrack()],
                    subtitles=[SubtitleTrack()], chapters=[Chapter(0, 0.2, "One"), Chapter(0.2, 0.48, "Two")],
                    metadata={"title": "a film"})
    # make the join fail once: the output's folder is a file, so only the segments can be written
    out.mkdir()
    (out / "sub").write_text("in the way")
    s1 = run_batch([lib], out, model=str(model_file), devices="cpu,cpu", segment_seconds=0.16,
                   log=lambda m: None, **OPTS)
    assert s1.exit_code == BATCH_FAILED_EXIT and s1.rows[0].segments == 3
    recs = journal(out)
    segs = {k: r for k, r in recs.items() if "#seg" in k}
    assert len(segs) == 3 and all(r["state"] == "done" for r in segs.values())
    assert [segs[k]["start"] for k in sorted(segs)] == [None, "4/25", "8/25"]  # cuts at keyframes 0.16 s, 0.32 s
    assert sum(r["frames"] for r in segs.values()) == 12
    assert recs["sub/long.mkv"]["state"] == "failed"

    (out / "sub").unlink()
    s2 = run_batch([lib], out, model=str(model_file), devices="cpu", segment_seconds=0.16, retry_failed=True,
                   log=lambda m: None, **OPTS)
    assert s2.exit_code == 0 and s2.rows[0].status == "done" and s2.rows[0].frames == 12
    recs2 = journal(out)
    assert {k: recs2[k] for k in segs} == segs, "finished segments must not be rendered again"
    assert not (out / ".esrgan-video-segments").exists() and not partials(out)

    ref = single_pass(src, tmp_path / "single.mkv", model_file)
    joined, single = describe(out / "sub" / "long.mkv"), describe(ref)
    assert len(joined["frames"]) == 12
    for what in ("frames", "video_packets", "other_packets", "streams", "metadata", "chapters"):
        assert joined[what] == single[what], what

    # a driver stopped between the join's record and removing the segments (Ctrl-C, a kill) left them: the file is
    # finished, so a rerun skips it and removes them (they were never removed: a film's worth of disk)
    from esrgan_video.batch.driver import segments_dir

    left = segments_dir(out, "sub/long.mkv")
    left.mkdir(parents=True)
    (left / "0001.mkv").write_bytes(b"x" * 1000)
    s3 = run_batch([lib], out, model=str(model_file), devices="cpu", segment_seconds=0.16, log=lambda m: None, **OPTS)
    assert s3.rows[0].status == "skipped" and not (out / ".esrgan-video-segments").exists()



def _wait(pred, timeout: float, what: str, proc: subprocess.Popen | None = None):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"driver exited with {proc.returncode} while waiting for {what}")
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def test_sigkill_a_worker_then_sigint_the_driver_and_resume(tmp_path: Path, model_file: Path) -> None:
    lib, out = tmp_path / "lib", tmp_path / "out"
    lib.mkdir()
    names = [f"clip{i}.mkv" for i in range(5)]
    for i, n in enumerate(names):
        make_clip(lib / n, frames=24, seed=i, audio=[AudioTrack()] if i % 2 else ())
    cmd = [sys.executable, "-m", "esrgan_video.cli", "batch", str(lib), "-o", str(out), "--model", str(model_file),
           "--codec", "ffv1", "--devices", "cpu", "--threads", "1", "--progress", "json"]
    log = open(tmp_path / "driver.log", "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path, preexec_fn=default_signals)
    try:
        # SIGKILL the worker while it writes its first output (its pid is in the temporary file's name)
        part = _wait(lambda: partials(out), 180, "a worker writing", proc)[0]
        victim = int(part.name.split(".")[-3])
        os.kill(victim, signal.SIGKILL)
        _wait(lambda: any(r["state"] == "done" for r in journal(out).values()), 180, "the redone file", proc)
        # SIGINT the driver while the next file is being written
        _wait(lambda: any(p.name != part.name for p in partials(out)), 60, "the next file", proc)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    text = (tmp_path / "driver.log").read_text()
    last = [json.loads(x) for x in text.splitlines() if x.startswith("{")][-1]  # --progress json's last object
    assert last["done"] and last["batch"]["exit_code"] == 130 and last["batch"]["interrupted"] >= 1, last
    lines = [json.loads(x) for x in (out / JOURNAL_NAME).read_text().splitlines()]
    assert any(r["state"] == "pending" and "died" in r.get("note", "") for r in lines), text
    done = {k for k, r in journal(out).items() if r["state"] == "done"}
    assert 1 <= len(done) < len(names), text
    assert not partials(out), "the killed worker's and the interrupted worker's temporary files are removed"
    produced = {p.name for p in out.iterdir() if not p.name.startswith(".")}
    # only complete outputs exist (one may have been renamed into place just before the driver recorded it)
    assert done <= produced and len(produced - done) <= 1
    assert all(len(frames_of(out / n)) == 24 for n in produced)
    before = {k: state(out / k) for k in done}

    rerun = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert {k: state(out / k) for k in done} == before, "finished files are untouched"
    assert sum(line.startswith("skipped ") for line in rerun.stderr.splitlines()) == len(done)
    for n in names:
        assert frames_of(out / n) == frames_of(single_pass(lib / n, tmp_path / f"ref-{n}", model_file)), n


def test_ray_local_instance_runs_real_jobs(tmp_path: Path, model_file: Path, monkeypatch) -> None:
    import shutil
    import tempfile

    pytest.importorskip("ray")
    lib, out = tmp_path / "lib", tmp_path / "out"
    lib.mkdir()
    srcs = [make_clip(lib / f"r{i}.mkv", frames=6, seed=i) for i in range(2)]
    make_not_media(lib / "bad.mkv")
    ray_temp = tempfile.mkdtemp(prefix="ray")  # Ray's session folder, else left in $TMPDIR/ray (short: its sockets)
    monkeypatch.setenv("RAY_TMPDIR", ray_temp)
    try:
        s = run_batch([lib], out, model=str(model_file), ray="local", ray_num_cpus=2, log=lambda m: None, **OPTS)
    finally:
        shutil.rmtree(ray_temp, ignore_errors=True)
    assert {r.key: r.status for r in s.rows} == {"r0.mkv": "done", "r1.mkv": "done", "bad.mkv": "failed"}
    assert journal(out)["r0.mkv"]["state"] == "done"
    assert all(journal(out)[f"r{i}.mkv"].get("size") == (out / f"r{i}.mkv").stat().st_size for i in range(2))
    for i, src in enumerate(srcs):
        assert frames_of(out / src.name) == frames_of(single_pass(src, tmp_path / f"ref{i}.mkv", model_file))


def test_a_worker_that_stops_responding_is_replaced(tmp_path: Path, model_file: Path) -> None:
    import threading

    lib, out = tmp_path / "lib", tmp_path / "out"
    lib.mkdir()
    srcs = [make_clip(lib / f"s{i}.mkv", frames=16, seed=i) for i in range(2)]
    stopped: list[int] = []

    def freeze_first_writer() -> None:  # SIGSTOP: the process lives on but sends no heartbeat
        end = time.monotonic() + 120
        while time.monotonic() < end and not stopped:
            for p in partials(out) if out.exists() else []:
                pid = int(p.name.split(".")[-3])
                os.kill(pid, signal.SIGSTOP)
                stopped.append(pid)
                return
            time.sleep(0.01)

    watcher = threading.Thread(target=freeze_first_writer, daemon=True)
    watcher.start()
    messages: list[str] = []
    s = run_batch([lib], out, model=str(model_file), devices="cpu", stale_s=8, heartbeat_s=0.5,
                  log=messages.append, **OPTS)
    watcher.join(5)
    assert stopped, "the test never saw a worker writing"
    assert any("no heartbeat" in m for m in messages), messages
    assert any(m.startswith("redo") for m in messages), messages
    assert s.exit_code == 0 and [r.status for r in s.rows] == ["done", "done"]
    with pytest.raises(ProcessLookupError):
        os.kill(stopped[0], 0)  # killed and reaped
    assert not partials(out)
    for i, src in enumerate(srcs):
        assert frames_of(out / src.name) == frames_of(single_pass(src, tmp_path / f"ref{i}.mkv", model_file))


def test_the_runs_notices_reach_the_batch_log_once_per_file(tmp_path: Path, model_file: Path) -> None:
    """A notice of the run (here: --size WxH keeps the display aspect by writing a SAR) reaches batch's log, named
    by the file's output, once per file even when its segments each said it; the journal does not keep it."""
    lib, out = tmp_path / "lib", tmp_path / "out"
    lib.mkdir()
    make_clip(lib / "long.mkv", frames=12, options={"x264-params": "keyint=4:min-keyint=4:scenecut=0"})
    make_clip(lib / "short.mkv", frames=2)
    logs: list[str] = []
    s = run_batch([lib], out, model=str(model_file), devices="cpu", segment_seconds=0.16, size=(64, 64),
                  log=logs.append, **OPTS)
    assert s.exit_code == 0 and {r.key: r.segments for r in s.rows} == {"long.mkv": 3, "short.mkv": 1}
    notes = [m for m in logs if "sample aspect ratio" in m]
    assert len(notes) == 2, logs
    assert any(str(out / "long.mkv") in m for m in notes) and any(str(out / "short.mkv") in m for m in notes)
    assert all(m.startswith("notice ") and ".esrgan-video-segments" not in m for m in notes)
    # no record has them (a record's ``src`` path may hold the word: this test's folder is named after it)
    assert not [rec for rec in map(json.loads, (out / JOURNAL_NAME).read_text().splitlines()) if "notices" in rec]


def test_a_device_this_machine_lacks_fails_before_any_file(tmp_path: Path, model_file: Path, capfd) -> None:
    """``--devices cuda:N`` past the machine's GPUs: one error line (exit 7) before anything starts, not every file
    marked failed in the journal (which a rerun with the right devices would then skip)."""
    from esrgan_video.cli.main import main

    lib, out = tmp_path / "lib", tmp_path / "out"
    lib.mkdir()
    make_clip(lib / "a.mkv", frames=2)
    missing = f"cuda:{torch.cuda.device_count()}"
    capfd.readouterr()
    assert main(["batch", str(lib), "-o", str(out), "--model", str(model_file), "--devices", missing]) == 7
    lines = [l for l in capfd.readouterr().err.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("esrgan-video: error:") and missing in lines[0], lines
    assert journal(out) == {}


@pytest.mark.parametrize("args, code, needle", [
    (["--encoder-opt", "foo=1"], 2, "--encoder-opt: expected options the libx264 encoder has"),
    (["--codec", "ffv1", "--crf", "18"], 2, "--crf: expected no --crf for encoder ffv1"),
    (["--codec", "prores_ks", "--ext", "mp4"], 6, "cannot hold"),
])
def test_encoding_options_the_encoder_refuses_fail_before_any_file(tmp_path: Path, model_file: Path, capfd, args,
                                                                   code, needle) -> None:
    """A bad --encoder-opt / --crf, or a codec the output container cannot hold: one error line before anything
    starts (the journal untouched), not every file failed in its worker."""
    from esrgan_video.cli.main import main

    lib, out = tmp_path / "lib", tmp_path / "out"
    lib.mkdir()
    make_clip(lib / "a.mkv", frames=2)
    capfd.readouterr()
    assert main(["batch", str(lib), "-o", str(out), "--model", str(model_file), "--devices", "cpu", *args]) == code
    lines = [l for l in capfd.readouterr().err.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("esrgan-video: error:") and needle in lines[0], lines
    assert journal(out) == {}


def test_an_output_folder_that_is_the_input_folder_resumes_without_taking_its_outputs(tmp_path: Path,
                                                                                       model_file: Path) -> None:
    """``batch lib -o lib --suffix _x4`` (outputs beside their sources): a rerun, by the folder or by a glob, skips
    the finished output instead of upscaling it again (into ``e1_x4_x4.mkv``: 16× where 4× was asked)."""
    lib = tmp_path / "lib"
    lib.mkdir()
    make_clip(lib / "e1.mkv", frames=2)
    s1 = run_batch([lib], lib, model=str(model_file), devices="cpu", suffix="_x4", log=lambda m: None, **OPTS)
    assert [(r.key, r.status) for r in s1.rows] == [("e1_x4.mkv", "done")]
    made = state(lib / "e1_x4.mkv")
    for inputs in ([lib], [str(lib / "*.mkv")]):
        s = run_batch(inputs, lib, model=str(model_file), devices="cpu", suffix="_x4", log=lambda m: None, **OPTS)
        assert [(r.key, r.status) for r in s.rows] == [("e1_x4.mkv", "skipped")], inputs
    assert state(lib / "e1_x4.mkv") == made
    assert sorted(p.name for p in lib.iterdir() if not p.name.startswith(".")) == ["e1.mkv", "e1_x4.mkv"]


def test_stills_in_a_library_are_upscaled_as_images(tmp_path: Path, model_file: Path, torch_one_thread) -> None:
    """Stills beside the videos (``--extensions png,jpg,mkv``): each is upscaled into an image of its own format, as
    ``esrgan-video in.png out.png`` does, not into a one-frame video; ``--ext keep`` with stills no longer refuses
    the whole batch (their extension is no video container), and a rerun skips them."""
    from esrgan_video.stills import upscale_image
    from esrgan_video.video.images import read_image, write_image

    lib, out = tmp_path / "lib", tmp_path / "out"
    lib.mkdir()
    rng = np.random.default_rng(0)
    for name in ("cover.png", "poster.jpg"):
        write_image(lib / name, rng.integers(0, 256, (24, 32, 3), dtype=np.uint8), None, 8)
    make_clip(lib / "film.mkv", frames=2)
    for ext in (".mkv", None):
        s = run_batch([lib], out / (ext or "keep").strip("."), model=str(model_file), devices="cpu", ext=ext,
                      extensions=["png", "jpg", "mkv"], log=lambda m: None, **OPTS)
        assert {r.key: (r.status, r.frames) for r in s.rows} == {
            "cover.png": ("done", 1), "poster.jpg": ("done", 1), "film.mkv": ("done", 2)}, s.table()
    for name in ("cover.png", "poster.jpg"):
        ref = upscale_image(lib / name, tmp_path / f"ref-{name}", model=str(model_file), device="cpu")
        got = read_image(out / "keep" / name)[0]
        assert got.shape == (48, 64, 3) and np.array_equal(got, read_image(ref)[0]), name
    again = run_batch([lib], out / "keep", model=str(model_file), devices="cpu", ext=None,
                      extensions=["png", "jpg", "mkv"], log=lambda m: None, **OPTS)
    assert [r.status for r in again.rows] == ["skipped"] * 3


def test_a_cut_still_in_a_library_is_written_and_marked_damaged(tmp_path: Path, model_file: Path,
                                                                torch_one_thread) -> None:
    """A PNG cut before its IEND chunk is upscaled from the pixels it holds, as the CLI does (exit 9 there): in a
    batch its status is ``damaged`` with the damage line in the summary and the journal, not ``done``."""
    from esrgan_video.video.images import write_image

    lib, out = tmp_path / "lib", tmp_path / "out"
    lib.mkdir()
    write_image(tmp_path / "whole.png", np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8),
                None, 8)
    data = (tmp_path / "whole.png").read_bytes()
    (lib / "cut.png").write_bytes(data[:data.rindex(b"IEND") - 4])  # every pixel there, no end chunk
    s = run_batch([lib], out, model=str(model_file), devices="cpu", extensions=["png"], log=lambda m: None, **OPTS)
    assert [(r.key, r.status) for r in s.rows] == [("cut.png", "damaged")], s.table()
    assert "the PNG ends before its IEND chunk" in s.table() and (out / "cut.png").exists()
    assert "the PNG ends before its IEND chunk" in journal(out)["cut.png"]["damage"]


def test_a_source_that_changed_is_redone_and_a_failed_one_retried(tmp_path: Path, model_file: Path) -> None:
    """A rerun after the library changed: a finished file whose source was replaced is redone (its output is the new
    source's), and a file that failed is retried once its source changed (a re-downloaded file) or the options did,
    without --retry-failed; an unchanged failed file stays failed."""
    lib, out = tmp_path / "lib", tmp_path / "out"
    lib.mkdir()
    make_clip(lib / "film.mkv", frames=3, seed=1)
    make_not_media(lib / "broken.mkv")
    make_not_media(lib / "still-broken.mkv")
    s1 = run_batch([lib], out, model=str(model_file), devices="cpu", log=lambda m: None, **OPTS)
    assert {r.key: r.status for r in s1.rows} == {"film.mkv": "done", "broken.mkv": "failed",
                                                  "still-broken.mkv": "failed"}
    for name, seed in (("film.mkv", 2), ("broken.mkv", 3)):
        make_clip(lib / name, frames=4, seed=seed)
    logs: list[str] = []
    s2 = run_batch([lib], out, model=str(model_file), devices="cpu", log=logs.append, **OPTS)
    assert {r.key: r.status for r in s2.rows} == {"film.mkv": "done", "broken.mkv": "done",
                                                  "still-broken.mkv": "failed"}, s2.table()
    assert "earlier run" in s2.rows[2].error and any(m.startswith("retry    broken.mkv") for m in logs), logs
    for name in ("film.mkv", "broken.mkv"):
        assert frames_of(out / name) == frames_of(single_pass(lib / name, tmp_path / f"ref-{name}", model_file))
    # other options (--force for the finished ones): the failure was with the old ones, so it is tried again
    logs.clear()
    s3 = run_batch([lib], out, model=str(model_file), devices="cpu", tile=16, force=True, log=logs.append, **OPTS)
    assert s3.rows[2].status == "failed" and "earlier run" not in s3.rows[2].error and "not a media file" in \
        s3.rows[2].error and "retry    still-broken.mkv: it failed with other options" in logs, logs


def test_sigkill_the_driver_mid_segment_then_resume(tmp_path: Path, model_file: Path) -> None:
    """``kill -9`` of the driver while segments are written (a crash, an OOM kill): its workers die with it (no
    orphan keeps writing into the output folder), no output appears at its final path, and the rerun removes the
    temporary files, keeps the finished segments and gives the single pass."""
    lib, out = tmp_path / "lib", tmp_path / "out"
    lib.mkdir()
    src = make_clip(lib / "long.mkv", frames=24, options={"x264-params": "keyint=4:min-keyint=4:scenecut=0"})
    cmd = [sys.executable, "-m", "esrgan_video.cli", "batch", str(lib), "-o", str(out), "--model", str(model_file),
           "--codec", "ffv1", "--devices", "cpu,cpu", "--threads", "1", "--segment-seconds", "0.16"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)
    try:
        _wait(lambda: out.exists() and any(".partial" in p.name for p in (out / ".esrgan-video-segments").rglob("*"))
              if (out / ".esrgan-video-segments").exists() else False, 180, "a segment being written", proc)
        workers = descendants(proc.pid)  # forked workers are the fork server's children, not the driver's
        proc.kill()
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()

    def gone() -> bool:
        for pid in workers:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                continue
            return False
        return True

    _wait(gone, 30, "the workers to die with their driver")
    assert workers and not (out / "long.mkv").exists()
    rerun = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert not partials(out) and not (out / ".esrgan-video-segments").exists()
    assert frames_of(out / "long.mkv") == frames_of(single_pass(src, tmp_path / "ref.mkv", model_file))


def test_a_full_disk_stops_the_batch_and_a_rerun_resumes(tmp_path: Path, model_file: Path) -> None:
    """The output folder's disk fills up (a real one: a small tmpfs, so the test needs mount rights): the file being
    written is left pending, not failed, and the batch stops in one line (exit 6) instead of rendering every
    remaining file until the disk is full and marking each failed (which a rerun would then not retry); once there
    is room, the same command resumes, the finished files skipped."""
    small = tmp_path / "small"
    small.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=80k", "tmpfs", str(small)], capture_output=True).returncode:
        pytest.skip("mounting a small tmpfs (a disk that fills up) needs root")
    try:
        lib, out = tmp_path / "lib", small / "out"
        lib.mkdir()
        for i in range(4):  # 128x96 ffv1 outputs of about 28 KiB: two fit
            make_clip(lib / f"c{i}.mkv", frames=10, codec="ffv1", seed=i)
        with pytest.raises(OutputError, match="No space left on device.*the disk is full, so the batch stops"):
            run_batch([lib], out, model=str(model_file), devices="cpu", log=lambda m: None, **OPTS)
        states = {k: r["state"] for k, r in journal(out).items()}
        assert "pending" in states.values() and "failed" not in states.values(), states
        assert not partials(out)
        done = {k for k, v in states.items() if v == "done"}
        subprocess.run(["mount", "-o", "remount,size=2m", str(small)], check=True)
        s = run_batch([lib], out, model=str(model_file), devices="cpu", log=lambda m: None, **OPTS)
        assert s.exit_code == 0 and {r.key for r in s.rows if r.status == "skipped"} == done
        assert all(len(frames_of(out / f"c{i}.mkv")) == 10 for i in range(4))
    finally:
        subprocess.run(["umount", str(small)], capture_output=True)


def test_out_of_space_is_found_through_the_errors_an_error_was_raised_from() -> None:
    from esrgan_video.batch.worker import out_of_space

    try:
        try:
            with open("/dev/full", "wb") as f:  # the kernel's ENOSPC
                f.write(b"x")
        except OSError as inner:
            raise OutputError("out.mkv: could not finish the file") from inner
    except OutputError as e:
        assert out_of_space(e)
    assert not out_of_space(OutputError("out.mkv: already exists")) and not out_of_space(None)
    assert not out_of_space(FileNotFoundError(2, "No such file or directory"))


def test_a_resume_keeps_what_the_changed_options_do_not_touch_and_redoes_what_they_do(tmp_path: Path,
                                                                                         model_file: Path) -> None:
    """The options hash decides what a resume redoes: options that change no output's bytes (workers, threads,
    frames in flight, heartbeats, a progress callback, --offline, and a segment length under which neither file is
    split) keep every finished file untouched; an encoding option changes a video's bytes but not a still's (stills
    use no encoder), so it is refused without --force (and the refused run does not first log the failed file as
    retried) and then redoes the video only. The log says a still as one image and a frame as one frame ("1 frames,
    0.89 fps" was the log line of both)."""
    from esrgan_video.video.images import write_image

    lib, out = tmp_path / "lib", tmp_path / "out"
    lib.mkdir()
    make_clip(lib / "one.mkv", frames=1)
    make_not_media(lib / "bad.mkv")
    write_image(lib / "cover.png", np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8), None, 8)
    kw = dict(model=str(model_file), codec="ffv1", extensions=["mkv", "png"])
    logs: list[str] = []
    s1 = run_batch([lib], out, devices="cpu", threads=1, log=logs.append, **kw)
    assert {r.key: r.status for r in s1.rows} == {"one.mkv": "done", "cover.png": "done", "bad.mkv": "failed"}
    assert any(m.startswith("done     cover.png (1 image, ") and m.endswith(" s)") for m in logs), logs
    assert any(m.startswith("done     one.mkv (1 frame, ") for m in logs), logs
    assert s1.table().splitlines()[-1].startswith("3 files: 2 done, 0 skipped, 1 failed; 2 frames rendered (1 video "
                                                  "frame, 1 still) in ")
    assert re.fullmatch(r"done +1 +\d+\.\d +-  cover\.png", s1.table().splitlines()[2]), s1.table()
    rates = {f["file"]: f["fps"] for f in s1.as_json()["files"]}
    assert rates["cover.png"] is None and rates["one.mkv"] > 0  # --progress json's last object: no rate for a still
    before = {k: state(out / k) for k in ("one.mkv", "cover.png")}

    s2 = run_batch([lib], out, devices="cpu,cpu", threads=2, segment_seconds=50, streams=3, offline=True, stale_s=100,
                   max_attempts=3, progress=lambda snap: None, log=lambda m: None, **kw)
    assert [r.status for r in s2.rows] == ["failed", "skipped", "skipped"], s2.table()
    assert {k: state(out / k) for k in before} == before

    logs.clear()
    with pytest.raises(OutputError, match=r"1 finished output\(s\).*one\.mkv"):
        run_batch([lib], out, devices="cpu", threads=1, pix_fmt="yuv444p", log=logs.append, **kw)
    assert not logs  # nothing said to be retried or redone by a run that does not start
    s3 = run_batch([lib], out, devices="cpu", threads=1, pix_fmt="yuv444p", force=True, log=lambda m: None, **kw)
    assert {r.key: r.status for r in s3.rows} == {"one.mkv": "done", "cover.png": "skipped", "bad.mkv": "failed"}
    assert state(out / "cover.png") == before["cover.png"] and state(out / "one.mkv") != before["one.mkv"]
    with av.open(str(out / "one.mkv")) as c:
        assert c.streams.video[0].codec_context.pix_fmt == "yuv444p"


def test_a_stills_hash_is_over_what_an_image_uses() -> None:
    """A still's options hash leaves out the encoding, trimming and reuse options (``upscale_image`` uses none of
    them) but keeps the model, size and runtime ones; a video's whole-file hash leaves out only the segment length."""
    from esrgan_video.batch.driver import job_hashes
    from esrgan_video.options import UpscaleOptions

    def still(**kw) -> str:
        return job_hashes("0" * 64, UpscaleOptions.from_kwargs(model="m", **kw), segment_seconds=300.0, still=True)[0]

    base = still()
    assert still(codec="libx265", crf=30, pix_fmt="yuv444p", start=1, reuse="near", audio=False) == base
    assert {still(scale=1), still(tile=16), still(backend="onnxruntime"), still(blend=("b.pth", 0.5))} & {base} == set()
    opts = UpscaleOptions.from_kwargs(model="m", codec="ffv1")
    whole, joined = job_hashes("0" * 64, opts, segment_seconds=300.0, still=False)
    assert whole == job_hashes("0" * 64, opts, segment_seconds=50.0, still=False)[0] != joined
    assert job_hashes("0" * 64, opts.replace(crf=3), segment_seconds=300.0, still=False)[0] != whole


def test_another_source_with_a_finished_outputs_name_is_not_written_over_it(tmp_path: Path, model_file: Path) -> None:
    """A second library run into the same output folder, whose file has the name of one the first run finished:
    the finished output is not replaced by a different film (it was: "the source changed", redone) but reported,
    exit 8, until --overwrite; the same library moved to another folder (the same files) is still skipped."""
    out = tmp_path / "out"
    for name, seed in (("a", 1), ("b", 2)):
        (tmp_path / name).mkdir()
        make_clip(tmp_path / name / "film.mkv", frames=2, seed=seed)
    kw = dict(model=str(model_file), devices="cpu", log=lambda m: None, **OPTS)
    assert run_batch([tmp_path / "a"], out, **kw).rows[0].status == "done"
    made = state(out / "film.mkv")
    s2 = run_batch([tmp_path / "b"], out, **kw)
    assert s2.rows[0].status == "failed" and s2.exit_code == BATCH_FAILED_EXIT, s2.table()
    assert f"made by an earlier run from {tmp_path / 'a' / 'film.mkv'}" in s2.rows[0].error and "--overwrite" in \
        s2.rows[0].error
    assert state(out / "film.mkv") == made
    (tmp_path / "a").rename(tmp_path / "moved")
    assert run_batch([tmp_path / "moved"], out, **kw).rows[0].status == "skipped"
    s3 = run_batch([tmp_path / "b"], out, overwrite=True, **kw)
    assert s3.rows[0].status == "done" and state(out / "film.mkv") != made


def test_broken_links_and_link_loops_are_named_as_such(tmp_path: Path, model_file: Path) -> None:
    """A symbolic link to nowhere or a link loop, named as an input or found in a library: one line that says so,
    not "no such file or directory" (the name is there) nor an errno in brackets."""
    from esrgan_video.errors import InputError

    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "loop.mkv").symlink_to("loop.mkv")
    (lib / "gone.mkv").symlink_to("nowhere.mkv")
    with pytest.raises(InputError, match=r"loop\.mkv: a symbolic link loop$"):
        run_batch([lib / "loop.mkv"], tmp_path / "out", model=str(model_file), log=lambda m: None)
    with pytest.raises(InputError, match=r"gone\.mkv: a broken symbolic link \(to nowhere\.mkv, which does not "
                                         r"exist\)"):
        run_batch([lib / "gone.mkv"], tmp_path / "out", model=str(model_file), log=lambda m: None)
    s = run_batch([lib], tmp_path / "out", model=str(model_file), devices="cpu", log=lambda m: None, **OPTS)
    assert {r.key: r.error for r in s.rows} == {
        "gone.mkv": f"{lib / 'gone.mkv'}: a broken symbolic link (to nowhere.mkv, which does not exist)",
        "loop.mkv": f"{lib / 'loop.mkv'}: a symbolic link loop"} and s.exit_code == BATCH_FAILED_EXIT


def test_stills_beside_videos_say_nothing_of_the_videos_encoding_options(tmp_path: Path, model_file: Path,
                                                                        torch_one_thread) -> None:
    """--codec (or --crf, --start …) in a batch of videos and stills are the videos' options: a still's task gets
    the run's options without the encoding and trimming groups, so no still logs "--codec applies to videos, not
    to a still image" (each still said it, once per file); the video still gets the codec."""
    from esrgan_video.video.images import write_image

    lib, out = tmp_path / "lib", tmp_path / "out"
    lib.mkdir()
    for name in ("a.png", "b.png"):
        write_image(lib / name, np.full((12, 16, 3), 90, np.uint8), None, 8)
    make_clip(lib / "film.mkv", frames=1)
    logs: list[str] = []
    s = run_batch([lib], out, model=str(model_file), devices="cpu", extensions=["png", "mkv"], log=logs.append,
                  **OPTS)  # codec="ffv1": the videos' option
    assert {r.key: r.status for r in s.rows} == {"a.png": "done", "b.png": "done", "film.mkv": "done"}, s.table()
    assert not [m for m in logs if "to videos, not to a still image" in m], logs
    with av.open(str(out / "film.mkv")) as c:
        assert c.streams.video[0].codec_context.name == "ffv1"


def test_the_summary_counts_what_this_run_did_and_says_a_vanished_failure(tmp_path: Path, model_file: Path) -> None:
    """The last line's counts agree: frames rendered by this run, the stills among them, and reuse's ratio over the
    video frames alone (a still is one image that reuse never sees: "4 frames; reuse 0/3" read as a ratio over 4).
    A file that failed and whose source the user then deleted is said once (a ``vanished`` row, a ``forget`` log
    line) and its record dropped from the journal, where it stayed for good, out of every table. A rerun with
    nothing left to do says so, without a "0.00 fps"."""
    from esrgan_video.video.images import write_image

    lib, out = tmp_path / "lib", tmp_path / "out"
    lib.mkdir()
    make_clip(lib / "one.mkv", frames=3)
    make_not_media(lib / "bad.mkv")
    write_image(lib / "cover.png", np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8), None, 8)
    kw = dict(model=str(model_file), devices="cpu", extensions=["mkv", "png"], **OPTS)
    s1 = run_batch([lib], out, log=lambda m: None, **kw)
    assert {r.key: r.status for r in s1.rows} == {"one.mkv": "done", "cover.png": "done", "bad.mkv": "failed"}
    assert s1.frames == 4 and s1.stills == 1 and s1.reuse.frames == 3, s1.table()
    last = s1.table().splitlines()[-1]
    assert re.fullmatch(r"3 files: 2 done, 0 skipped, 1 failed; 4 frames rendered \(3 video frames, 1 still\) in "
                        r"\d+\.\d s \(\d+\.\d\d fps\); reuse exact: \d of the 3 video frames, \d+/\d+ tiles "
                        r"\(\d+ %\) reused", last), last
    obj = s1.as_json()
    assert (obj["batch"]["frames"], obj["batch"]["stills"], obj["reuse"]["frames"]) == (4, 1, 3)
    assert obj["batch"]["fps"] > 0 and not obj["batch"]["nothing_to_do"]
    assert journal(out)["bad.mkv"]["src"] == str(lib / "bad.mkv")

    (lib / "bad.mkv").unlink()
    logs: list[str] = []
    s2 = run_batch([lib], out, log=logs.append, **kw)
    rows = {r.key: r for r in s2.rows}
    assert {k: r.status for k, r in rows.items()} == {"one.mkv": "skipped", "cover.png": "skipped",
                                                      "bad.mkv": "vanished"}, s2.table()
    assert "bad.mkv" not in journal(out) and s2.exit_code == 0
    forget = [m for m in logs if m.startswith("forget")]
    assert len(forget) == 1 and f"forget   bad.mkv: its source {lib / 'bad.mkv'} no longer exists" in forget[0], logs
    table = s2.table()
    assert re.search(r"^vanished +- +- +-  bad\.mkv: its source .* no longer exists; its failed record is dropped "
                     r"from the journal \(it had failed: .*bad\.mkv", table, re.M), table
    assert table.splitlines()[-1] == ("3 files: 0 done, 2 skipped, 0 failed, 1 vanished; nothing to do: 2 files already "
                                      "done"), table
    assert "fps" not in table.splitlines()[-1]

    s3 = run_batch([lib], out, log=lambda m: None, **kw)  # said once: the record is gone
    assert [r.status for r in s3.rows] == ["skipped", "skipped"]
    assert s3.table().splitlines()[-1] == "2 files: 0 done, 2 skipped, 0 failed; nothing to do: all 2 files already done"
    assert s3.as_json()["batch"]["fps"] is None and s3.as_json()["batch"]["nothing_to_do"] and s3.reuse is None
