"""``--codec rawvideo`` writes only pixel formats its container gives back. AVI and MOV store uncompressed video under
a tag for a few layouts only, NUT for most, Matroska few: a yuv444p AVI, a 10-bit MOV or a p010le NUT was written with
exit 0 and read back as bgr24, rgb555le or nothing. Now the input's format is kept where the container keeps it, else
the nearest one it keeps is written with a notice, and a ``--pix-fmt`` it cannot keep is refused in one line."""

from __future__ import annotations

import av
import pytest

import media
from esrgan_video.testing import run_cli
from esrgan_video.video.encoder_formats import choose_pix_fmt, raw_kept


def test_raw_kept_is_what_reads_back():
    assert raw_kept("nut", "yuv420p10le") and raw_kept("nut", "gray16le") and raw_kept("avi", "yuv420p")
    assert not raw_kept("nut", "p010le")  # NUT has no tag for it: read back as rgb555le
    assert not raw_kept("avi", "yuv444p") and not raw_kept("mov", "yuv420p10le")


def test_choose_keeps_the_input_where_the_container_does():
    assert choose_pix_fmt("rawvideo", "yuv420p10le", container="nut") == ("yuv420p10le", None)
    fmt, notice = choose_pix_fmt("rawvideo", "yuv444p", container="avi")
    assert raw_kept("avi", fmt) and fmt != "yuv444p"
    assert notice.startswith("the avi container cannot carry rawvideo video in 8-bit YUV 4:4:4 (yuv444p)")
    assert "a .nut output, or --codec ffv1 keeps it" in notice
    assert choose_pix_fmt("rawvideo", "p010le", container="nut")[0] == "yuv420p10le"  # the same samples


@pytest.mark.parametrize("pix_fmt, suffix", [("yuv444p", ".avi"), ("yuv420p10le", ".mov"), ("gray16le", ".avi"),
                                             ("yuv420p10le", ".nut"), ("yuv420p", ".avi")])
def test_the_cli_writes_what_reads_back(tmp_path, capfd, near_identity_file, pix_fmt, suffix):
    src = media.make_clip(tmp_path / "in.mkv", codec="ffv1", pix_fmt=pix_fmt, size=(16, 8), frames=2)
    dst = tmp_path / f"out{suffix}"
    p = run_cli(capfd, src, dst, "--model", near_identity_file(1), "--codec", "rawvideo")
    assert p.returncode == 0, p.stderr
    written, _ = choose_pix_fmt("rawvideo", pix_fmt, container=av.open(str(dst)).format.name.split(",")[0])
    with av.open(str(dst)) as c:
        st = c.streams.video[0]
        assert st.codec_context.pix_fmt == written
        frames = list(c.decode(st))
    assert len(frames) == 2 and (frames[0].width, frames[0].height) == (16, 8)
    assert ("container cannot carry rawvideo" in p.stderr) == (written != pix_fmt)


def test_a_pix_fmt_the_container_cannot_keep_is_refused(tmp_path, capfd, near_identity_file):
    src = media.make_clip(tmp_path / "in.mkv", codec="ffv1", pix_fmt="yuv420p10le", size=(16, 8), frames=2)
    dst = tmp_path / "out.nut"
    p = run_cli(capfd, src, dst, "--model", near_identity_file(1), "--codec", "rawvideo", "--pix-fmt", "p010le")
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert p.returncode == 6 and len(lines) == 1, p.stderr
    assert lines[0] == ("esrgan-video: error: the nut container cannot carry rawvideo video in p010le (it would read "
                        "back as another format); use another --pix-fmt or --codec ffv1")
    assert not dst.exists()
