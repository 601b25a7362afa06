"""A batch file whose output its encoder cannot take is refused up front, alone (``batch.driver._output_refused``).

The driver judges each file's output as ``upscale_video`` does before its model (``output_plan.check_plan``, the one
rule set): a 2x2 input x4 is 8x8, which libx265 does not open on (16x16 at least). That file fails before any worker
starts, in the one line a single run says (naming its output), and is not journalled; the others are written. Without
the check it went to a worker, which failed it there and journalled it failed.
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
    s = run_batch([lib], out, model=str(near_identity_file(4)), devices="cpu", codec="libx265", threads=1,
                  segment_seconds=0, log=lambda m: None)
    rows = {r.key: r for r in s.rows}
    assert {k: r.status for k, r in rows.items()} == {"tiny.mkv": "failed", "fine.mkv": "done"}
    assert rows["tiny.mkv"].error == (f"{out / 'tiny.mkv'}: libx265 cannot encode frames smaller than 16x16, got 8x8; "
                                      "use --codec libx264, or a larger --scale or --size")
    assert s.exit_code == BATCH_FAILED_EXIT
    assert not (out / "tiny.mkv").exists() and (out / "fine.mkv").exists()
    records = parse_lines((out / JOURNAL_NAME).read_text())
    assert "tiny.mkv" not in records and records["fine.mkv"]["state"] == "done"  # no worker ever had it
