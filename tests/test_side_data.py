"""Side data the pipeline does not carry over (``video.side_data``): HDR10+, Dolby Vision, stereo 3D, timecodes,
AFD, … An input that has them gets one notice naming what its output is written without; a stereo 3D layout is kept
into Matroska (its StereoMode). The inputs are real libx264/libx265 streams with SEI NAL units put before each
slice as broadcast and HDR encoders write them, or MP4/Matroska files whose boxes/elements declare them, and each
test first checks FFmpeg's decoder reports the side data (so none can pass on an input without it)."""

from __future__ import annotations

import struct
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from av.sidedata.sidedata import Type

from esrgan_video.testing import run_cli
from esrgan_video.video.nal_count import escaped
from esrgan_video.video.side_data import side_data_kinds, side_data_notice, stereo_mode

from media import make_clip


class _Bits:
    def __init__(self):
        self.value, self.count = 0, 0

    def put(self, value: int, n: int) -> _Bits:
        self.value, self.count = self.value << n | value & ((1 << n) - 1), self.count + n
        return self

    def bytes(self) -> bytes:
        pad = -self.count % 8
        return (self.value << pad).to_bytes((self.count + pad) // 8, "big")


def _sei(payload_type: int, payload: bytes, codec: str) -> bytes:
    """An Annex B SEI NAL (H.264 type 6, HEVC prefix SEI) of one message."""
    body = bytes([payload_type, len(payload)]) + payload + b"\x80"
    return b"\x00\x00\x00\x01" + (b"\x4e\x01" if codec == "hevc" else b"\x06") + escaped(body)


def _hdr10plus(k: int = 0, windows: int = 1) -> bytes:
    """ST 2094-40 in user_data_registered_itu_t_t35 (payload type 4): ``windows`` windows (the second 8×8 pixels at
    the top left), 400 nits target, frame ``k``'s own brightest light."""
    b = _Bits().put(0xB5, 8).put(0x003C, 16).put(0x0001, 16).put(4, 8).put(1, 8).put(windows, 2)
    for _ in range(1, windows):  # the window's corners, its ellipse's centre, angle, axes; no overlap process
        b.put(0, 16).put(0, 16).put(7, 16).put(7, 16).put(4, 16).put(4, 16).put(0, 8).put(2, 16).put(4, 16)
        b.put(4, 16).put(0, 1)
    b.put(400, 27).put(0, 1)
    for _ in range(windows):
        for v in (1000 + k, 1000, 1000, 500):  # maxscl (R, G, B), average_maxrgb
            b.put(v, 17)
        b.put(3, 4)
        for p in (1, 50, 99):
            b.put(p, 7).put(100 * p, 17)
        b.put(10, 10)  # fraction of bright pixels
    b.put(0, 1)  # no mastering display peak luminance
    for _ in range(windows):
        b.put(0, 1).put(0, 1)  # no tone mapping, no colour saturation mapping
    return b.bytes()


def _timecode(k: int) -> bytes:
    """HEVC time_code SEI (type 136): one full clock timestamp, 01:00:00 and ``k`` frames."""
    b = _Bits().put(1, 2).put(1, 1).put(0, 1).put(0, 5).put(1, 1).put(0, 1).put(0, 1)
    return b.put(k, 9).put(0, 6).put(0, 6).put(1, 5).put(0, 5).bytes()


_AFD = bytes([0xB5, 0x00, 0x31]) + b"DTG1" + bytes([0x41, 0xF8])  # ATSC A/53 AFD 8 (full frame), type 4


def _with_sei(path: Path, codec: str, seis, options: dict[str, str], frames: int = 3) -> Path:
    """A Matroska file of ``frames`` ``codec`` pictures, each slice after the SEI NALs ``seis(k)`` of its picture."""
    raw = path.with_suffix(".raw")
    nal = "hevc" if codec == "libx265" else "h264"
    with av.open(str(raw), "w", format=nal) as c:
        s = c.add_stream(codec, rate=25)
        s.width, s.height, s.pix_fmt, s.options = 64, 48, "yuv420p", options
        for i in range(frames):
            f = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 40, np.uint8), format="rgb24")
            f.pts = i
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    units, k = [], 0
    for n in (n for n in raw.read_bytes().replace(b"\x00\x00\x00\x01", b"\x00\x00\x01").split(b"\x00\x00\x01") if n):
        if ((n[0] >> 1) & 0x3F) < 32 if nal == "hevc" else n[0] & 0x1F in (1, 5):  # a slice: no B-frames, one each
            units += seis(k)
            k += 1
        units.append(b"\x00\x00\x00\x01" + n)
    raw.write_bytes(b"".join(units))
    with av.open(str(raw), format=nal) as i, av.open(str(path), "w") as o:
        so = o.add_stream_from_template(i.streams.video[0])
        for k, p in enumerate(q for q in i.demux(video=0) if q.size):
            p.pts = p.dts = k
            p.duration, p.time_base, p.stream = 1, Fraction(1, 25), so
            o.mux(p)
    raw.unlink()
    return path


def _side(path: Path) -> tuple[dict[str, bytes], set[str]]:
    """The side data FFmpeg reports for ``path``'s video: the stream's (coded, by name), and every frame's types."""
    with av.open(str(path)) as c:
        coded = dict(c.streams.video[0].codec_context.coded_side_data)
        frames = {t.name for f in c.decode(video=0) for t in f.side_data}
    return coded, frames


def _run(capfd, model, src: Path, dst: Path, *args: str):
    p = run_cli(capfd, src, dst, "--model", model, "--backend", "torch", "--progress", "none", *args)
    assert p.returncode == 0, p.stderr
    return p


def _notices(stderr: str) -> list[str]:
    return [line.removeprefix("esrgan-video: ") for line in stderr.splitlines() if "not kept: the upscaled" in line]


def _hdr10plus_of(path: Path) -> list[bytes | None]:
    """Each frame's DYNAMIC_HDR_PLUS side data, in presentation order."""
    with av.open(str(path)) as c:
        got = [(f.pts, f.side_data.get(Type.DYNAMIC_HDR_PLUS)) for f in c.decode(video=0)]
    return [None if sd is None else bytes(sd) for _, sd in sorted(got, key=lambda x: x[0])]


def _hdr_input(tmp_path: Path, windows: int = 1) -> Path:
    seis = lambda k: [_sei(4, _hdr10plus(k, windows), "hevc"), _sei(136, _timecode(k), "hevc"),  # noqa: E731
                      _sei(148, struct.pack(">IHH", 314, 15635, 16450), "hevc")]
    src = _with_sei(tmp_path / "hdr.mkv", "libx265", seis, {"x265-params": "log-level=error:bframes=0"})
    assert {"DYNAMIC_HDR_PLUS", "S12M_TIMECODE", "AMBIENT_VIEWING_ENVIRONMENT"} <= _side(src)[1]
    return src


@pytest.mark.parametrize("codec", ["libx265", "libx264"])
def test_hdr10plus_is_kept_into_libx265_and_timecodes_and_ambient_light_are_said(tmp_path: Path, capfd,
                                                                                  near_identity_file, codec):
    src = _hdr_input(tmp_path)
    want = _hdr10plus_of(src)
    assert len(set(want)) == 3 and None not in want  # every frame's own
    dst = tmp_path / "out.mkv"
    p = _run(capfd, near_identity_file(2), src, dst, "--codec", codec)
    if codec == "libx265":
        assert _notices(p.stderr) == [
            f"{dst}: the SMPTE 12M timecodes and ambient viewing environment in hdr.mkv's video are not kept: the "
            "upscaled frames are written without them"], p.stderr
        assert _hdr10plus_of(dst) == want  # each frame's, serialized back as it was parsed
    else:
        assert _notices(p.stderr) == [
            f"{dst}: the HDR10+ dynamic metadata (SMPTE ST 2094-40), SMPTE 12M timecodes and ambient viewing "
            "environment in hdr.mkv's video are not kept: the upscaled frames are written without them; libx265 "
            "keeps HDR10+"], p.stderr
        assert _hdr10plus_of(dst) == [None] * 3
    assert not {"S12M_TIMECODE", "AMBIENT_VIEWING_ENVIRONMENT"} & _side(dst)[1]  # truly lost


def test_hdr10plus_of_several_windows_is_said(tmp_path: Path, capfd, near_identity_file):
    src = _hdr_input(tmp_path, windows=2)
    with av.open(str(src)) as c:
        assert bytes(next(c.decode(video=0)).side_data[Type.DYNAMIC_HDR_PLUS])[2] == 2  # num_windows
    dst = tmp_path / "out.mkv"
    p = _run(capfd, near_identity_file(2), src, dst, "--codec", "libx265")
    assert p.stderr.count("HDR10+") == 1, p.stderr
    assert (f"{dst}: the HDR10+ dynamic metadata (SMPTE ST 2094-40) in hdr.mkv's video is not kept where a frame's "
            "has more than one processing window (they are placed in the source's pixels)") in p.stderr, p.stderr
    assert _hdr10plus_of(dst) == [None] * 3


@pytest.mark.parametrize("ext", [".mkv", ".mp4"])
def test_frame_packing_is_kept_into_matroska_and_afd_is_said(tmp_path: Path, capfd, near_identity_file, ext):
    # libx264's frame-packing SEI (side by side) on its keyframe, an AFD before every slice
    src = _with_sei(tmp_path / "sbs.mkv", "libx264", lambda k: [_sei(4, _AFD, "h264")],
                    {"bf": "0", "x264-params": "log-level=error:frame-packing=3"})
    assert {"STEREO3D", "AFD"} <= _side(src)[1]
    dst = tmp_path / f"out{ext}"
    p = _run(capfd, near_identity_file(2), src, dst)
    if ext == ".mkv":
        assert _notices(p.stderr) == [f"{dst}: the active format description (AFD) in sbs.mkv's video is not kept: "
                                      "the upscaled frames are written without it"], p.stderr
        assert stereo_mode(_side(dst)[0].get("stereo_3d")) == "left_right"
    else:
        assert _notices(p.stderr) == [
            f"{dst}: the stereoscopic 3D layout and active format description (AFD) in sbs.mkv's video are not kept: "
            "the upscaled frames are written without them; .mkv keeps the 3D layout"], p.stderr
        assert not {"STEREO3D", "AFD"} & _side(dst)[1]


@pytest.mark.parametrize("ext", [".mkv", ".mp4", ".webm"])
def test_matroska_stereo_mode_is_kept_or_said(tmp_path: Path, capfd, near_identity_file, ext):
    src = make_clip(tmp_path / "tb.mkv", frames=2, video_metadata={"stereo_mode": "bottom_top"})
    assert stereo_mode(_side(src)[0].get("stereo_3d")) == "bottom_top"
    dst = tmp_path / f"out{ext}"
    p = _run(capfd, near_identity_file(2), src, dst)
    coded, frames = _side(dst)
    if ext == ".mkv":
        assert _notices(p.stderr) == [], p.stderr
        assert stereo_mode(coded.get("stereo_3d")) == "bottom_top"
    else:
        assert _notices(p.stderr) == [
            f"{dst}: the stereoscopic 3D layout in tb.mkv's video is not kept: the upscaled frames are written without "
            "it; .mkv keeps the 3D layout"], p.stderr
        assert "stereo_3d" not in coded and "STEREO3D" not in frames


def _with_box(data: bytes, path: list[bytes], box: bytes) -> bytes:
    """MP4 ``data`` with ``box`` appended inside the box at ``path`` (every box on the way grown by its size);
    ``stsd`` holds its entries after 8 bytes, a visual sample entry its boxes after 78."""
    skip = {b"stsd": 8, b"hev1": 78, b"avc1": 78}

    def walk(buf: bytes, names: list[bytes]) -> bytes:
        i, out = 0, b""
        while i + 8 <= len(buf):
            size, name = struct.unpack(">I4s", buf[i:i + 8])
            body = buf[i + 8:i + size]
            if name == names[0]:
                head, rest = body[:skip.get(name, 0)], body[skip.get(name, 0):]
                body = head + (walk(rest, names[1:]) if len(names) > 1 else rest + box)
            out += struct.pack(">I4s", len(body) + 8, name) + body
            i += size
        return out + buf[i:]

    return walk(data, path)


def _box(name: bytes, body: bytes, *, full: bool = False) -> bytes:
    body = bytes(4) + body if full else body  # a full box: version 0, no flags
    return struct.pack(">I4s", 8 + len(body), name) + body


# dvcC: version 1.0, profile 8, level 1, RPU and base layer present, compatible with HDR10 (id 1)
_DVCC = _box(b"dvcC", struct.pack(">BBHB", 1, 0, 8 << 9 | 1 << 3 | 1 << 2 | 1, 1 << 4) + bytes(19))
# sv3d: an equirectangular projection, no rotation, no crop
_SV3D = _box(b"sv3d", _box(b"svhd", b"\0", full=True) + _box(b"proj", _box(b"prhd", bytes(12), full=True)
                                                             + _box(b"equi", bytes(16), full=True)))


@pytest.mark.parametrize("codec, entry, box, key, what", [
    ("libx265", b"hev1", _DVCC, "dovi_conf", "Dolby Vision metadata (its RPU and configuration record)"),
    ("libx264", b"avc1", _SV3D, "spherical", "spherical (360°) projection"),
])
def test_stream_side_data_of_an_mp4_is_said(tmp_path: Path, capfd, near_identity_file, codec, entry, box, key, what):
    options = {"x265-params": "log-level=error:bframes=0"} if codec == "libx265" else {"bf": "0"}
    plain = _with_sei(tmp_path / "plain.mp4", codec, lambda k: [], options, frames=2)
    src = tmp_path / "in.mp4"
    src.write_bytes(_with_box(plain.read_bytes(), [b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd", entry], box))
    assert key in _side(src)[0]
    dst = tmp_path / "out.mkv"
    p = _run(capfd, near_identity_file(2), src, dst)
    assert _notices(p.stderr) == [f"{dst}: the {what} in in.mp4's video is not kept: the upscaled frames are written "
                                  "without it"], p.stderr
    assert key not in _side(dst)[0]


def test_encoder_version_strings_and_empty_pan_scan_are_no_loss():
    x264 = bytes.fromhex("dc45e9bde6d948b7962cd820d923eeef") + b"x264 - core 165"
    other = bytes(range(16)) + b"camera serial 1234"
    gop_zero, gop_set = struct.pack("<q", 1 << 12 | 1), struct.pack("<q", 1 << 19 | 1 << 12)  # 00:00:00:01, 01:00:00:00
    assert side_data_kinds({"SEI_UNREGISTERED": x264, "PANSCAN": bytes(24), "GOP_TIMECODE": gop_zero}, {}) == ()
    assert side_data_kinds({"SEI_UNREGISTERED": other, "PANSCAN": b"\x01" + bytes(23), "GOP_TIMECODE": gop_set},
                           {"spherical": b"x"}) == ("spherical", "gop_timecode", "panscan", "user_data")
    assert side_data_notice("o.mkv", "i.mp4", ()) is None
    assert stereo_mode(struct.pack("<ii", 2, 1) + bytes(28)) == "bottom_top"
    assert stereo_mode(struct.pack("<ii", 3, 0) + bytes(28)) is None  # frame-sequential: no StereoMode
    assert Type.STEREO3D.name == "STEREO3D"  # the names side_data_kinds keys by are PyAV's


def test_side_data_that_begins_after_the_first_frame_is_said_when_it_begins(tmp_path: Path, capfd,
                                                                              near_identity_file):
    # a timecode from the first frame, an AFD from frame 2 (0.080 s) and HDR10+ from frame 3 (0.120 s): each kind
    # named once, though every later frame has it
    seis = lambda k: ([_sei(136, _timecode(k), "hevc")] + ([_sei(4, _AFD, "hevc")] if k >= 2 else [])  # noqa: E731
                      + ([_sei(4, _hdr10plus(k), "hevc")] if k >= 3 else []))
    src = _with_sei(tmp_path / "late.mkv", "libx265", seis, {"x265-params": "log-level=error:bframes=0"}, frames=5)
    with av.open(str(src)) as c:
        assert [sorted(t.name for t in f.side_data if t.name != "SEI_UNREGISTERED") for f in c.decode(video=0)] == \
            [["S12M_TIMECODE"]] * 2 + [["AFD", "S12M_TIMECODE"]] + [["AFD", "DYNAMIC_HDR_PLUS", "S12M_TIMECODE"]] * 2
    dst = tmp_path / "out.mkv"
    p = _run(capfd, near_identity_file(2), src, dst, "--codec", "libx264")
    assert _notices(p.stderr) == [
        f"{dst}: the SMPTE 12M timecodes in late.mkv's video is not kept: the upscaled frames are written without it",
        f"{dst}: the active format description (AFD) in late.mkv's video from 0.080 s on is not kept: the upscaled "
        "frames are written without it",
        f"{dst}: the HDR10+ dynamic metadata (SMPTE ST 2094-40) in late.mkv's video from 0.120 s on is not kept: the "
        "upscaled frames are written without it; libx265 keeps HDR10+"], p.stderr
    assert p.stderr.count("HDR10+") == 2, p.stderr  # the line above only (its hint says HDR10+ again)
    dst = tmp_path / "kept.mkv"
    # no B-frames: FFmpeg's HEVC decoder gives a frame decoded after one with HDR10+ that frame's (frame 2, after 3)
    p = _run(capfd, near_identity_file(2), src, dst, "--codec", "libx265", "--encoder-opt", "x265-params=bframes=0")
    assert [n.split(" in ")[0] for n in _notices(p.stderr)] == [f"{dst}: the SMPTE 12M timecodes",
                                                                 f"{dst}: the active format description (AFD)"]
    assert "HDR10+" not in p.stderr, p.stderr
    assert _hdr10plus_of(dst) == _hdr10plus_of(src)  # kept from the frame it begins at


@pytest.mark.parametrize("fit", ["crop", "pad"])
def test_hdr10plus_of_one_window_is_kept_through_a_crop_or_pad(tmp_path: Path, capfd, near_identity_file, fit):
    # one window is the whole picture: the message holds no pixel position (window 0 has no corners in ST 2094-40),
    # only the picture's light and the target display's; FFmpeg's crop/pad/scale filters keep it too (its
    # DYNAMIC_HDR_PLUS is colour-dependent side data, not size-dependent, unlike pan-scan or regions of interest)
    src = _hdr_input(tmp_path)
    dst = tmp_path / "out.mkv"
    p = _run(capfd, near_identity_file(2), src, dst, "--codec", "libx265", "--size", "96x96", "--fit", fit)
    with av.open(str(dst)) as c:
        assert (c.streams.video[0].width, c.streams.video[0].height) == (96, 96)
    assert "HDR10+" not in p.stderr, p.stderr
    assert _hdr10plus_of(dst) == _hdr10plus_of(src)


def test_batch_segments_name_side_data_that_begins_later_once_per_file(tmp_path: Path, near_identity_file):
    """Each segment of a batch file meets an AFD that begins at frame 2 at its own first frame with it, with a time
    of its own ('from 0.080 s on', 'from 0.160 s on'): the file's log named it once per segment. Now once, 'from a
    later frame on'."""
    from esrgan_video.batch import run_batch

    seis = lambda k: [_sei(4, _AFD, "hevc")] if k >= 2 else []  # noqa: E731
    lib = tmp_path / "lib"
    lib.mkdir()
    _with_sei(lib / "late.mkv", "libx265", seis, {"x265-params": "log-level=error:bframes=0:keyint=2:min-keyint=2"},
              frames=6)
    log: list[str] = []
    s = run_batch([lib], tmp_path / "out", model=str(near_identity_file(2)), devices="cpu", threads=1,
                  codec="libx264", segment_seconds=0.04, max_attempts=1, log=log.append)
    assert s.exit_code == 0 and any("3 segments" in m for m in log), log
    afd = [m for m in log if "(AFD)" in m]
    assert afd == [f"notice   {tmp_path / 'out' / 'late.mkv'}: the active format description (AFD) in late.mkv's "
                   "video from a later frame on is not kept: the upscaled frames are written without it"], log
