"""A second real video stream (another angle) is not upscaled: the run says so in one line and writes the first,
where a cover picture (attached picture) beside it is kept without a word (stream_copy's video-stream notice)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from media import small_jpeg


def _two_angles(path: Path) -> Path:
    with av.open(str(path), "w") as out:
        streams = []
        for w, h in ((64, 48), (32, 24)):
            vs = out.add_stream("libx264", rate=25)
            vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
            streams.append(vs)
        streams[1].metadata["title"] = "Angle 2"
        out.add_attachment(name="cover.jpg", mimetype="image/jpeg", data=small_jpeg())
        for i in range(3):
            for vs in streams:
                f = av.VideoFrame.from_ndarray(np.full((vs.height, vs.width, 3), 40 * i, np.uint8), "rgb24")
                f.pts = i
                out.mux(vs.encode(f))
        for vs in streams:
            out.mux(vs.encode(None))
    return path


def test_a_second_angle_is_named_and_the_cover_kept(tmp_path: Path, capfd, near_identity_file) -> None:
    from esrgan_video.testing import run_cli

    src = _two_angles(tmp_path / "angles.mkv")
    with av.open(str(src)) as c:  # the demuxer shows the cover as an attached-picture video stream
        assert [(s.type, bool(s.disposition & av.stream.Disposition.attached_pic)) for s in c.streams] == [
            ("video", False), ("video", False), ("video", True)]
    dst = tmp_path / "out.mkv"
    r = run_cli(capfd, src, dst, "--model", near_identity_file(2), "--progress", "none")
    assert r.returncode == 0, r.stderr
    notes = [line for line in r.stderr.splitlines() if "not copied" in line]
    assert notes == [f"esrgan-video: {src}: video stream #1 is not copied (only the first video stream is upscaled)"]
    with av.open(str(dst)) as c:
        v = c.streams.video[0]
        assert (v.width, v.height, v.frames or 3) == (128, 96, 3)
        assert [s.metadata.get("filename") for s in c.streams if s.disposition & av.stream.Disposition.attached_pic] \
            == ["cover.jpg"]
