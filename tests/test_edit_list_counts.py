"""Packets the decoder drops whole (``packet_index.DecoderDrops``: an MP4 edit list's discarded packets, the leading
B-frames of an open-GOP cut) are no frames the user gets: every count that means frames — ``VideoInfo.frame_count``
and ``frame_count_in``, ``PacketIndex.frame_count`` and ``duration``, the keyframe scan's ``frame_count`` (batch's
segment plan and the file's progress total) and the ``--progress json`` total — counts the frames written, while
``PacketIndex.packet_count`` and the keyframe scan's cuts keep every packet. A packet that does fail to decode is
still reported lost, against the same total.

The inputs are built as stop 22's ``test_packets_the_decoder_drops_are_no_frames`` builds them: an MP4 whose frames
start at -0.08 s (PyAV's muxer writes the edit list that starts the video two packets in), and H.264 and MPEG-2
transport streams cut at an open GOP's keyframe (``_open_gop_cut``).
"""

from __future__ import annotations

import json
import re
from fractions import Fraction
from pathlib import Path

import av
import pytest

from esrgan_video.batch import run_batch
from esrgan_video.batch.segments import plan_segments
from esrgan_video.testing import run_cli
from esrgan_video.video.keyframes import scan_keyframes
from esrgan_video.video.packet_index import clear_cache, read_packet_index
from esrgan_video.video.reader import open_input

from media import AudioTrack, make_clip, make_corrupt
from test_packet_index import _open_gop_cut

FPS = 25


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, tuple[Path, int]]:
    """name: (file, packets the decoder drops). Several GOPs each, so batch cuts them into segments."""
    d = tmp_path_factory.mktemp("drops")
    edit = make_clip(d / "edit.mp4", pts=[-80 + 40 * i for i in range(30)], audio=[AudioTrack()], options={"g": "10"})
    return {"edit": (edit, 2),
            "h264": (_open_gop_cut(d, gops=4, at=1), 2),
            "mpeg2": (_open_gop_cut(d, "mpeg2video", gops=4, at=1), 2)}


@pytest.fixture(scope="module")
def model(near_identity_file) -> Path:
    return near_identity_file(2)


@pytest.fixture(autouse=True)
def _fresh_cache():
    clear_cache()
    yield
    clear_cache()


def _decoded(path: Path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


def _json_run(capfd, src: Path, dst: Path, model: Path):
    """The CLI with --progress json: (exit status, the frame lines' totals, the last frame line, the done line,
    the summary's frame count)."""
    p = run_cli(capfd, src, dst, "--model", model, "--device", "cpu", "--progress", "json")
    lines = [json.loads(line) for line in p.stderr.splitlines() if line.startswith("{")]
    ticks = [d for d in lines if "frame" in d and "total" in d]
    done = [d for d in lines if d.get("done")]
    summary = re.search(r"wrote \S+ \((\d+) frames", p.stderr)
    assert ticks and len(done) == 1 and summary, p.stderr
    return p.returncode, {d["total"] for d in ticks}, ticks[-1], done[0], int(summary[1])


@pytest.mark.parametrize("name", ["edit", "h264", "mpeg2"])
def test_the_counts_are_the_frames_written(tmp_path, sources, model, capfd, name):
    src, dropped = sources[name]
    n = _decoded(src)  # FFmpeg drops those packets' frames too
    index = read_packet_index(src)
    assert index.packet_count == n + dropped  # the raw packets stay: the keyframe scan and damage checks count them
    assert index.frame_count == n and index.duration == Fraction(n, FPS)  # was 30 and 1.2 s for 28 frames
    assert len(index.keyframe_packets()) == index.packet_count
    with open_input(src) as inp:
        assert inp.info.frame_count == (n if src.suffix == ".mp4" else None)  # the MP4 header says 30
        assert inp.frame_count_in() == n == len(inp.frame_times())
    scan = scan_keyframes(src)
    assert scan.frame_count == n  # batch's plan and its progress total (was 30, and 38 for the cuts' 36)
    segments = plan_segments(scan, seconds=Fraction(2, 5))
    assert len(segments) > 1 and sum(s.frame_count for s in segments) == n

    rc, totals, last, done, summary = _json_run(capfd, src, tmp_path / "out.mkv", model)
    assert rc == 0 and totals == {n} and last["frame"] == n  # the bar ended at 28/30
    assert done["frames"] == summary == n == _decoded(tmp_path / "out.mkv")
    assert done["lost_frames"] == 0 and not done["damaged"]


def test_a_batch_counts_the_frames_written(tmp_path, sources, model):
    """Each file cut into segments: its progress total (the plan's scan), its segments' frames and its row agree."""
    lib = tmp_path / "lib"
    lib.mkdir()
    expected = {}
    for name, (src, _) in sources.items():
        (lib / f"{name}{src.suffix}").write_bytes(src.read_bytes())
        expected[name] = _decoded(src)
    snaps = []
    s = run_batch([lib], tmp_path / "out", model=str(model), codec="ffv1", threads=1, segment_seconds=0.4,
                  log=lambda m: None, progress=snaps.append)
    assert s.exit_code == 0 and s.count("done") == 3
    rows = {Path(r.key).stem: r for r in s.rows}
    assert {k: (r.frames, r.segments > 1) for k, r in rows.items()} == {k: (n, True) for k, n in expected.items()}
    totals = {(Path(f.key).stem, f.total) for snap in snaps for f in snap.files}
    assert totals == set(expected.items())  # edit 30, the cuts 38, before
    assert snaps[-1].frames == sum(expected.values())
    for name in expected:
        assert _decoded(tmp_path / "out" / f"{name}.mkv") == expected[name]


def test_a_damaged_edit_list_mp4_still_reports_its_loss(tmp_path, sources, model, capfd):
    """A packet that does fail to decode is lost and said, against the frames the file should give (28, not the
    header's 30)."""
    edit, _ = sources["edit"]
    n = _decoded(edit)
    bad = make_corrupt(edit, tmp_path / "bad.mp4", frames=[5])
    with open_input(bad) as inp:
        assert inp.frame_count_in() == n
    rc, totals, last, done, summary = _json_run(capfd, bad, tmp_path / "out.mkv", model)
    assert rc == 9 and done["damaged"] and done["lost_frames"] >= 1 and "could not be decoded" in done["damage"]
    assert totals == {n} and done["frames"] == summary == last["frame"] == _decoded(tmp_path / "out.mkv")
    assert done["frames"] + done["lost_frames"] == n
