"""A trim's timecode: the first frame written carries the timecode of that frame, not the input's first
(``stream_copy.advance_timecode``, drop-frame included; the writer applies it to the video stream's and the
container's ``timecode`` tag, from which MOV/MP4 write their timecode track)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import pytest

from esrgan_video.video.reader import open_input
from esrgan_video.video.stream_copy import advance_timecode, advanced_timecodes
from esrgan_video.video.writer import OutputVideo

from media import make_clip

NTSC = Fraction(30000, 1001)
NTSC60 = Fraction(60000, 1001)


@pytest.mark.parametrize("tc, frames, rate, want", [
    ("01:00:00:00", 25, Fraction(25), "01:00:01:00"),
    ("01:00:00:00", 0, Fraction(25), "01:00:00:00"),
    ("00:59:59:24", 1, Fraction(25), "01:00:00:00"),
    ("23:59:59:24", 1, Fraction(25), "00:00:00:00"),        # FFmpeg wraps at 24 hours
    ("10:00:00:00", 24 * 60, Fraction(24000, 1001), "10:01:00:00"),  # 23.976: non-drop, 24 a second
    ("00:00:00:00", 30, NTSC, "00:00:01:00"),               # non-drop at 29.97: nominal 30
    ("00:00:59;29", 1, NTSC, "00:01:00;02"),                # drop-frame: ;00 and ;01 of minute 1 do not exist
    ("00:00:00;00", 1800, NTSC, "00:01:00;02"),
    ("00:09:59;29", 1, NTSC, "00:10:00;00"),                # every tenth minute keeps them
    ("00:00:00;00", 17982, NTSC, "00:10:00;00"),            # ten minutes of 29.97 fps
    ("01:00:00;00", 30 * 3600 - 108, NTSC, "02:00:00;00"),  # an hour: 108 frame numbers dropped
    ("00:00:59;59", 1, NTSC60, "00:01:00;04"),              # 59.94: four a minute
    ("00:00:59.29", 1, NTSC, "00:01:00.02"),                # FFmpeg's other drop-frame separator, kept
    ("23:59:59;29", 1, NTSC, "00:00:00;00"),
])
def test_advance_timecode(tc: str, frames: int, rate: Fraction, want: str) -> None:
    assert advance_timecode(tc, frames, rate) == want


@pytest.mark.parametrize("tc, rate", [
    ("01:00:00;00", Fraction(25)),      # drop-frame exists at multiples of 29.97 only
    ("01:00:00:25", Fraction(25)),      # no frame 25 at 25 fps
    ("00:01:00;00", NTSC),              # a frame number drop-frame skips
    ("not a timecode", Fraction(25)),
])
def test_advance_timecode_refuses_what_is_no_timecode_of_the_rate(tc: str, rate: Fraction) -> None:
    assert advance_timecode(tc, 1, rate) is None
    assert advanced_timecodes({"timecode": tc}, 1, rate) == {"timecode": tc}  # left as it was


def test_advanced_timecodes_touches_only_the_timecode() -> None:
    meta = {"TIMECODE": "01:00:00:00", "language": "eng"}
    assert advanced_timecodes(meta, 50, Fraction(25)) == {"TIMECODE": "01:00:02:00", "language": "eng"}
    assert advanced_timecodes(meta, 0, Fraction(25)) is meta and advanced_timecodes(meta, 5, None) is meta


def _timecodes(path: Path) -> list[tuple[str, str | None]]:
    with av.open(str(path)) as c:
        return [(s.type, {k.lower(): v for k, v in s.metadata.items()}.get("timecode")) for s in c.streams]


def _trimmed(src: Path, dst: Path, start) -> int:
    with open_input(src) as inp, OutputVideo(dst, template=inp, start=start, codec="libx264") as out:
        for f in inp.frames(start=start):
            out.write(f.planes, f.pts)
    return out.frames_written


@pytest.mark.parametrize("ext", [".mov", ".mkv"])
def test_a_trim_starts_at_its_own_timecode(tmp_path: Path, ext: str) -> None:
    """``--start 1`` of a 25 fps MOV at 01:00:00:00 wrote 01:00:00:00 (the input's first frame's)."""
    src = make_clip(tmp_path / "in.mov", frames=30, video_metadata={"timecode": "01:00:00:00"})
    dst = tmp_path / f"out{ext}"
    assert _trimmed(src, dst, Fraction(1)) == 5
    tmcd = [("data", "01:00:01:00")] if ext == ".mov" else []
    assert _timecodes(dst) == [("video", "01:00:01:00"), *tmcd]


def test_a_trim_of_drop_frame_ntsc(tmp_path: Path) -> None:
    src = make_clip(tmp_path / "in.mov", frames=6, fps=NTSC, video_metadata={"timecode": "00:00:59;28"})
    dst = tmp_path / "out.mov"
    assert _trimmed(src, dst, 3) == 3  # from the fourth frame: ;28 ;29 ;02 ;03 — the fourth is 00:01:00;03
    assert _timecodes(dst) == [("video", "00:01:00;03"), ("data", "00:01:00;03")]


def test_no_trim_keeps_the_timecode(tmp_path: Path) -> None:
    src = make_clip(tmp_path / "in.mov", frames=5, video_metadata={"timecode": "01:00:00:00"})
    dst = tmp_path / "out.mov"
    assert _trimmed(src, dst, None) == 5
    assert _timecodes(dst) == [("video", "01:00:00:00"), ("data", "01:00:00:00")]


def test_cli_start_advances_the_timecode(tmp_path: Path, capfd, near_identity_file) -> None:
    from esrgan_video.testing import run_cli

    src = make_clip(tmp_path / "in.mov", frames=30, video_metadata={"timecode": "01:00:00:00"})
    dst = tmp_path / "out.mov"
    r = run_cli(capfd, src, dst, "--model", near_identity_file(2), "--progress", "none", "--start", "1")
    assert r.returncode == 0, r.stderr
    assert _timecodes(dst) == [("video", "01:00:01:00"), ("data", "01:00:01:00")]
