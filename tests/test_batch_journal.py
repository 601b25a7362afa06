"""The batch journal: last record wins, torn lines are ignored, one driver per output folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from esrgan_video.batch.journal import JOURNAL_NAME, Journal, parse_lines
from esrgan_video.errors import OutputError
from esrgan_video.testing import save_near_identity


def test_last_record_per_key_wins_and_survives_reopen(tmp_path: Path) -> None:
    with Journal(tmp_path) as j:
        j.record("a.mkv", "running", owner="h:1/worker-0@cpu", heartbeat=1.0)
        j.record("b.mkv", "failed", error="b.mkv: not a video")
        j.record("a.mkv", "done", size=10, mtime_ns=5, frames=12)
    with Journal(tmp_path) as j:
        assert j.get("a.mkv")["state"] == "done" and j.get("a.mkv")["frames"] == 12
        assert j.get("b.mkv")["error"] == "b.mkv: not a video"
        assert j.get("c.mkv") is None
    # reopening compacts the file to one line per key
    lines = (tmp_path / JOURNAL_NAME).read_text().splitlines()
    assert sorted(json.loads(x)["key"] for x in lines) == ["a.mkv", "b.mkv"]


def test_torn_last_line_is_ignored_and_dropped(tmp_path: Path) -> None:
    with Journal(tmp_path) as j:
        j.record("a.mkv", "done", size=1)
    path = tmp_path / JOURNAL_NAME
    with open(path, "a") as f:
        f.write('{"key":"a.mkv","state":"fail')  # the driver died mid-write
    with Journal(tmp_path) as j:
        assert j.get("a.mkv")["state"] == "done"
        j.record("b.mkv", "pending")
    assert parse_lines(path.read_text()).keys() == {"a.mkv", "b.mkv"}
    assert all(json.loads(x) for x in path.read_text().splitlines())


def test_parse_lines_skips_junk() -> None:
    text = '{"key":"a","state":"done"}\nnot json\n[1]\n{"key":"a","state":"weird"}\n{"state":"done"}\n'
    assert parse_lines(text) == {"a": {"key": "a", "state": "done"}}


def test_second_driver_on_the_same_folder_is_refused(tmp_path: Path) -> None:
    with Journal(tmp_path):
        with pytest.raises(OutputError, match="another batch is already running"):
            Journal(tmp_path).open()
    with Journal(tmp_path):  # released on close
        pass


def test_unknown_state_is_rejected(tmp_path: Path) -> None:
    with Journal(tmp_path) as j, pytest.raises(ValueError, match="state"):
        j.record("a", "finished")


def test_an_output_folder_that_is_a_file_is_a_one_line_error(tmp_path: Path, capfd) -> None:
    """``batch in.mkv -o in.mkv``: exit 6 and one line naming the folder, not mkdir's traceback."""

    from esrgan_video.cli.main import main
    from media import make_clip

    model = tmp_path / "tiny.safetensors"
    save_near_identity(model, 2)
    src = make_clip(tmp_path / "in.mkv", frames=2)
    capfd.readouterr()
    assert main(["batch", str(src), "-o", str(src), "--model", str(model), "--devices", "cpu"]) == 6
    lines = [l for l in capfd.readouterr().err.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("esrgan-video: error:") and "it is a file" in lines[0], lines


_FULL_DISK_CHILD = """
import resource, signal, sys
from pathlib import Path
import pytest
from esrgan_video.batch.journal import JOURNAL_NAME, Journal, parse_lines
from esrgan_video.errors import OutputError

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past RLIMIT_FSIZE then fails with EFBIG, as on a full disk
hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
folder = Path(sys.argv[1])
with Journal(folder) as j:
    for i in range(20):
        j.record(f"file{i}.mkv", "failed", error="x" * 40)
size = (folder / JOURNAL_NAME).stat().st_size
resource.setrlimit(resource.RLIMIT_FSIZE, (100, hard))  # the compacted copy cannot be written
with pytest.raises(OutputError, match="cannot write the batch journal"):
    Journal(folder).open()
resource.setrlimit(resource.RLIMIT_FSIZE, (size, hard))  # compaction writes exactly as much; no room to append
with Journal(folder) as j:
    with pytest.raises(OutputError, match="cannot write the batch journal.*rerun the same command"):
        j.record("late.mkv", "done", size=1)
assert len(parse_lines((folder / JOURNAL_NAME).read_text())) == 20
with Journal(folder):  # the lock was released
    pass
"""


def test_a_journal_that_cannot_be_written_is_a_one_line_output_error(tmp_path: Path) -> None:
    """A full disk when the batch starts (compaction) or under it (an append): OutputError (exit 6, one line), not
    an OSError traceback; the journal on disk keeps what it had. In a child process: RLIMIT_FSIZE holds for every
    file the process writes, pytest's own output (redirected to a file) included."""
    r = subprocess.run([sys.executable, "-c", _FULL_DISK_CHILD, str(tmp_path)], capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1])), timeout=120)
    assert r.returncode == 0, r.stderr


def test_forget_drops_records_and_later_records_still_reach_the_file(tmp_path: Path) -> None:
    """``forget`` rewrites the journal without the keys (the file is renamed over): the records appended after it
    go to the new file, not to the old one's unlinked inode."""
    with Journal(tmp_path) as j:
        j.record("gone.mkv", "failed", error="x", src="/lib/gone.mkv")
        j.record("gone.mkv#seg0000", "done", size=1)
        j.record("kept.mkv", "done", size=2)
        j.forget(["gone.mkv", "gone.mkv#seg0000"])
        assert j.get("gone.mkv") is None
        j.record("later.mkv", "failed", error="y")
    assert set(parse_lines((tmp_path / JOURNAL_NAME).read_text())) == {"kept.mkv", "later.mkv"}
