"""ATSC A/53 closed captions (CEA-608/708 in H.264 SEI: FFmpeg's ``A53_CC`` frame side data), common in broadcast
captures. The upscaled frames are new pictures and PyAV 19 gives a frame's side data to read only, so the encoder's
own ``a53cc`` (libx264, libx265) is given none: the reader reads each frame's captions and the writer puts them into
the frame's packet as the SEI that option writes (``metadata.with_captions``); other encoders lose them, said in a
notice. The input is real H.264 (libx264) with a registered-user-data SEI before each slice, as broadcast encoders
write it; the frames' captions differ, so a caption on the wrong frame is seen."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from esrgan_video.testing import run_cli
from esrgan_video.video.nal_count import escaped


def _cc(k: int) -> bytes:
    """Frame ``k``'s cc_data: two CEA-608 triplets, the second's bytes ``k``'s own."""
    return bytes([0xFC, 0x94, 0x2C, 0xFC, 0x80 | k, 0x81 + k])


def _cc_sei(k: int) -> bytes:
    """An SEI NAL (Annex B) of user_data_registered_itu_t_t35: ATSC's GA94 cc_data of :func:`_cc` ``k``."""
    payload = bytes([0xB5, 0x00, 0x31]) + b"GA94" + bytes([0x03, 0x40 | 2, 0xFF]) + _cc(k) + bytes([0xFF])
    body = bytes([4, len(payload)]) + payload + bytes([0x80])  # payload type 4, its size, rbsp trailing bits
    return b"\x00\x00\x00\x01\x06" + escaped(body)


def _captioned(path: Path, frames: int = 6, first: int = 0, keyint: int | None = None) -> Path:
    """``frames`` pictures, frame ``k`` from ``first`` on carrying :func:`_cc` ``k`` (a keyframe every ``keyint``
    frames where given: clean cuts for batch segments)."""
    raw = path.with_suffix(".h264")
    with av.open(str(raw), "w", format="h264") as c:
        s = c.add_stream("libx264", rate=25)
        s.width = s.height = 64
        s.pix_fmt = "yuv420p"
        gop = "" if keyint is None else f":keyint={keyint}:min-keyint={keyint}:scenecut=0"
        s.options = {"bf": "0", "x264-params": "log-level=error" + gop}
        for i in range(frames):
            f = av.VideoFrame.from_ndarray(np.full((64, 64, 3), i * 30 % 256, np.uint8), format="rgb24")
            f.pts = i
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    nals = [n for n in raw.read_bytes().replace(b"\x00\x00\x00\x01", b"\x00\x00\x01").split(b"\x00\x00\x01") if n]
    units, k = [], 0
    for n in nals:  # one slice a picture (bf=0: decode order is presentation order)
        if n[0] & 0x1F in (1, 5):
            if k >= first:
                units.append(_cc_sei(k))
            k += 1
        units.append(b"\x00\x00\x00\x01" + n)
    raw.write_bytes(b"".join(units))
    with av.open(str(raw), format="h264") as i, av.open(str(path), "w") as o:
        so = o.add_stream_from_template(i.streams.video[0])
        for k, p in enumerate(q for q in i.demux(video=0) if q.size):
            p.pts = p.dts = k
            p.duration = 1
            p.time_base = Fraction(1, 25)
            p.stream = so
            o.mux(p)
    raw.unlink()
    return path


def _captions(path: Path) -> list[bytes | None]:
    with av.open(str(path)) as c:
        got = [(f.pts, f.side_data.get(av.sidedata.sidedata.Type.A53_CC)) for f in c.decode(video=0)]
    return [None if cc is None else bytes(cc) for _, cc in sorted(got, key=lambda x: x[0])]


def _run(capfd, model, src: Path, dst: Path, *args: str):
    p = run_cli(capfd, src, dst, "--model", model, "--backend", "torch", "--progress", "none", *args)
    assert p.returncode == 0, p.stderr
    return p


@pytest.mark.parametrize("codec", ["libx264", "libx265", "h264"])
@pytest.mark.parametrize("ext", [".mkv", ".mp4", ".ts"])
def test_closed_captions_are_kept(tmp_path: Path, capfd, near_identity_file, ext, codec):
    src = _captioned(tmp_path / "in.mkv")
    assert _captions(src) == [_cc(k) for k in range(6)]
    dst = tmp_path / f"out{ext}"
    p = _run(capfd, near_identity_file(2), src, dst, "--codec", codec)
    assert "closed captions" not in p.stderr, p.stderr
    assert _captions(dst) == [_cc(k) for k in range(6)]  # each frame's own, B-frames reordered or not


@pytest.mark.parametrize("ext", [".mkv", ".webm"])
def test_captions_that_begin_after_the_first_frame_are_kept_or_said(tmp_path: Path, capfd, near_identity_file, ext):
    src = _captioned(tmp_path / "in.mkv", first=2)  # a capture whose captions begin later: the first frame has none
    assert _captions(src) == [None, None] + [_cc(k) for k in range(2, 6)]
    dst = tmp_path / f"out{ext}"
    p = _run(capfd, near_identity_file(2), src, dst)
    if ext == ".mkv":
        assert "closed captions" not in p.stderr, p.stderr
        assert _captions(dst) == [None, None] + [_cc(k) for k in range(2, 6)]
    else:
        assert p.stderr.count("closed captions") == 1, p.stderr
        assert (f"{dst}: the closed captions in in.mkv's video (ATSC A/53 CEA-608/708 in its SEI) are not kept: "
                "libvpx-vp9 is given no captions (libx264 and libx265 carry them)") in p.stderr, p.stderr


def test_closed_captions_of_a_trim_are_its_frames(tmp_path: Path, capfd, near_identity_file):
    src = _captioned(tmp_path / "in.mkv")
    dst = tmp_path / "out.mkv"
    _run(capfd, near_identity_file(2), src, dst, "--start", "0.08")
    assert _captions(dst) == [_cc(k) for k in range(2, 6)]


def test_closed_captions_an_encoder_cannot_carry_are_said(tmp_path: Path, capfd, near_identity_file):
    src = _captioned(tmp_path / "in.mkv")
    dst = tmp_path / "out.webm"
    p = _run(capfd, near_identity_file(2), src, dst)
    assert (f"{dst}: the closed captions in in.mkv's video (ATSC A/53 CEA-608/708 in its SEI) are not kept: "
            "libvpx-vp9 is given no captions (libx264 and libx265 carry them)") in p.stderr, p.stderr


def test_no_captions_no_notice_and_none_written(tmp_path: Path, capfd, near_identity_file):
    from media import make_clip

    src = make_clip(tmp_path / "in.mkv", frames=3)
    dst = tmp_path / "out.mkv"
    p = _run(capfd, near_identity_file(2), src, dst)
    assert "closed captions" not in p.stderr, p.stderr
    assert _captions(dst) == [None] * 3


def test_the_sei_is_put_before_the_first_slice():
    from esrgan_video.video.metadata import a53_sei, with_captions

    aud, sps, idr = b"\x00\x00\x00\x01\x09\xf0", b"\x00\x00\x00\x01\x67\x42", b"\x00\x00\x01\x65\x88"
    sei = a53_sei(_cc(0), "h264")
    assert with_captions(aud + sps + idr, _cc(0), "h264") == aud + sps + sei + idr
    assert with_captions(b"\x67\x42", _cc(0), "h264") is None  # not Annex B: left alone
    assert with_captions(aud + sps, _cc(0), "h264") is None  # no slice
    hevc_idr = b"\x00\x00\x00\x01\x26\x01\xaf"  # IDR_W_RADL (19)
    vps = b"\x00\x00\x00\x01\x40\x01\x0c"
    assert with_captions(vps + hevc_idr, _cc(0), "hevc") == vps + a53_sei(_cc(0), "hevc") + hevc_idr
    assert a53_sei(b"\x00\x00\x00" * 2, "h264").count(b"\x00\x00\x03") >= 1  # emulation prevention


@pytest.mark.parametrize("ext", [".mkv", ".mp4", ".ts"])
def test_closed_captions_of_a_segmented_batch_run_are_each_frames(tmp_path: Path, near_identity_file, ext):
    """A batch run cuts the clip into segments (a clean cut every 4 frames, 0.16 s: 3 segments), renders each
    separately and joins them by packet copy: every frame keeps its own caption, the SEI copied with its packet."""
    from esrgan_video.batch import run_batch

    (tmp_path / "src").mkdir()
    src = _captioned(tmp_path / "src" / "in.mkv", frames=12, keyint=4)
    assert _captions(src) == [_cc(k) for k in range(12)]
    said: list[str] = []
    res = run_batch([src], tmp_path / "out", model=str(near_identity_file(2)), devices="cpu", threads=1, ext=ext,
                    segment_seconds=0.16, log=said.append, codec="libx264")
    assert res.exit_code == 0, res.table()
    assert res.rows[0].segments == 3
    assert not any("closed captions" in m for m in said), said
    assert _captions(tmp_path / "out" / f"in{ext}") == [_cc(k) for k in range(12)]
