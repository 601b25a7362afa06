"""MPEG-4 Part 2 (Xvid/DivX, FFmpeg's ``mpeg4``) sources: N-VOPs, empty AVI chunks, packed bitstreams, raw ``.m4v``.

An N-VOP (a not-coded VOP: the picture before repeats) gives no frame: the reader counted it as a lost frame ("2
frame(s) could not be decoded") and, in AVI, gave its tick to the next frame, so every frame after it came one tick
early. An empty chunk (a frame an encoder dropped; the ticks between a variable rate's frames) counted in the AVI's
frame count, and the file was said to be truncated. A packed bitstream (DivX/Xvid: P and B in one packet, an N-VOP
placeholder after it) gives a frame for the placeholder and must keep doing so. A raw ``.m4v`` at 29.97 fps read at
FFmpeg's 25. The files are made here with PyAV's mpeg4 encoder and muxed packet by packet; nothing is mocked.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import pytest

from esrgan_video.video.mpeg4_vops import VopCounter, time_increment_bits, vops
from esrgan_video.video.reader import open_input
from esrgan_video.video.writer import OutputVideo

from media import make_clip, read_frames, remux_with

NTSC = Fraction(30000, 1001)


def n_vop(bits: int, increment: int = 0) -> bytes:
    """A not-coded P-VOP: start code, vop_coding_type 01, modulo_time_base 0, marker, vop_time_increment, marker,
    vop_coded 0, stuffing (a 0 then 1s to the byte)."""
    b = "01" + "0" + "1" + format(increment, f"0{bits}b") + "1" + "0"
    b += "0" + "1" * ((8 - (len(b) + 1) % 8) % 8)
    return bytes.fromhex("000001b6") + int(b, 2).to_bytes(len(b) // 8, "big")


def remuxed_avi(src: Path, dst: Path, replace) -> Path:
    """``src`` remuxed (``media.remux_with``), its video packet ``i`` (in decode order) replaced by ``replace(i, data,
    bits)`` when that gives bytes (empty bytes: an empty chunk), kept when it gives None."""
    with av.open(str(src)) as inp:
        bits = time_increment_bits(inp.streams.video[0].codec_context.extradata)
    return remux_with(src, dst, replace=lambda i, data: replace(i, data, bits))


def times(path: Path) -> tuple[list[Fraction], int, list[str]]:
    frames, stats, said = read_frames(path)
    return [f.pts * f.time_base for f in frames], stats.lost_frames, said


@pytest.fixture
def xvid(tmp_path: Path) -> Path:
    return make_clip(tmp_path / "xvid.avi", codec="mpeg4", fps=25, frames=10)


def test_n_vops_are_repeats_not_losses(tmp_path: Path, xvid: Path) -> None:
    src = remuxed_avi(xvid, tmp_path / "nvop.avi", lambda i, data, bits: n_vop(bits, i) if i in (4, 7) else None)
    with av.open(str(src)) as c:  # FFmpeg gives no frame for them
        assert sorted(f.pts for f in c.decode(video=0)) == [0, 1, 2, 3, 5, 6, 8, 9]
    got, lost, said = times(src)  # were 0..7 (each frame after an N-VOP a tick early), 2 lost
    assert got == [Fraction(i, 25) for i in (0, 1, 2, 3, 5, 6, 8, 9)] and lost == 0 and said == []
    with open_input(src) as inp:  # the packet index (trims, seeking, batch segments) says the same
        assert inp.frame_times() == got
        assert [f.time for f in inp.frames(start=4)] == got[4:]
    dst = tmp_path / "out.mkv"
    with open_input(src) as inp, OutputVideo(dst, template=inp, copy_streams=False) as out:
        for f in inp.frames():
            out.write(f.planes, f.pts)
    with av.open(str(dst)) as c:  # the repeated pictures keep showing for their ticks
        assert sorted(f.pts for f in c.decode(video=0)) == [0, 40, 80, 120, 200, 240, 320, 360]


def test_empty_chunks_are_no_truncation(tmp_path: Path, xvid: Path) -> None:
    src = remuxed_avi(xvid, tmp_path / "empty.avi", lambda i, data, bits: b"" if i in (4, 7) else None)
    with av.open(str(src)) as c:
        assert c.streams.video[0].frames == 10  # the header counts the empty chunks
    got, lost, said = times(src)  # was "ends early: 8 of 10 frames decoded (the file is truncated)"
    assert got == [Fraction(i, 25) for i in (0, 1, 2, 3, 5, 6, 8, 9)] and lost == 0 and said == []


def test_a_variable_rate_avi_is_no_truncation(tmp_path: Path) -> None:
    """The writer's own AVI of a variable rate (1/1000 ticks, an empty chunk for each tick without a frame) said
    330 frames for 6: 'ends early: 6 of 330 frames decoded (the file is truncated)'."""
    pts = [0, 40, 90, 100, 250, 290]
    src = make_clip(tmp_path / "in.mkv", pts=pts, time_base=Fraction(1, 1000))
    dst = tmp_path / "out.avi"
    with open_input(src) as inp, OutputVideo(dst, template=inp, copy_streams=False, codec="ffv1") as out:
        for f in inp.frames():
            out.write(f.planes, f.pts)
    got, lost, said = times(dst)
    assert got == [Fraction(p, 1000) for p in pts] and lost == 0 and said == []


def test_a_cut_avi_is_still_truncated(tmp_path: Path) -> None:
    """The empty ticks counted are only those before the last frame read: a cut file's missing tail still counts."""
    src = make_clip(tmp_path / "xvid.avi", codec="mpeg4", fps=25, frames=60, size=(160, 120))
    cut = tmp_path / "cut.avi"
    data = src.read_bytes()
    cut.write_bytes(data[:len(data) - 2500])  # the index (16 bytes a frame) and the last packets gone
    _, _, said = times(cut)
    assert len(said) == 1 and said[0].startswith("cut.avi ends early: ") and "truncated" in said[0], said


def test_packed_bitstream_placeholders_give_their_frames(tmp_path: Path) -> None:
    """DivX/Xvid packed bitstream: each B-VOP rides in the packet of the P-VOP before it and an N-VOP placeholder
    takes its place; FFmpeg gives the held B-VOP's frame for the placeholder, so it is no repeat."""
    src = make_clip(tmp_path / "bf.avi", codec="mpeg4", fps=25, frames=12, options={"bf": "1", "g": "12"})
    with av.open(str(src)) as c:
        st = c.streams.video[0]
        packets = [(p.pts, p.dts, bytes(p), p.is_keyframe) for p in c.demux(st) if p.size]
        bits = time_increment_bits(st.codec_context.extradata)
    packed = []  # decode order I P B P B ...: a B (shown before the P sent before it) joins that P
    i = 0
    while i < len(packets):
        pts, dts, data, key = packets[i]
        if i == 0:  # DivX's user data says "packed" ('p'): FFmpeg's decoder reads it before the first VOP
            at = data.find(bytes.fromhex("000001b6"))
            data = data[:at] + bytes.fromhex("000001b2") + b"DivX503b1393p" + data[at:]
        if i + 1 < len(packets) and packets[i + 1][0] < pts:
            packed += [(dts, data + packets[i + 1][2], key), (packets[i + 1][1], n_vop(bits), False)]
            i += 2
        else:
            packed.append((dts, data, key))
            i += 1
    assert sum(1 for _, d, _ in packed if len(d) < 8) == 5
    dst = tmp_path / "packed.avi"
    with av.open(str(src)) as c, av.open(str(dst), "w", format="avi") as out:
        ost = out.add_stream_from_template(c.streams.video[0])
        for dts, data, key in packed:
            pkt = av.Packet(data)
            pkt.stream, pkt.time_base, pkt.pts, pkt.dts, pkt.is_keyframe = ost, Fraction(1, 25), dts, dts, key
            out.mux(pkt)
    with av.open(str(dst)) as c:
        assert len(list(c.decode(video=0))) == 12
    got, lost, said = times(dst)
    assert got == [Fraction(i, 25) for i in range(12)] and lost == 0 and said == []


@pytest.mark.parametrize("fps", [NTSC, Fraction(25), Fraction(50)])
def test_raw_m4v_reads_at_its_rate(tmp_path: Path, fps: Fraction) -> None:
    """A raw MPEG-4 Part 2 stream: FFmpeg's demuxer says 25 fps for any (its framerate option) and the decoder the
    VOL's time resolution (30000 for 29.97): a 29.97 fps .m4v read at 25, and an FFV1 .mkv of it said 25 fps."""
    src = make_clip(tmp_path / "in.m4v", codec="mpeg4", format="m4v", fps=fps, frames=8, time_base=1 / fps)
    with open_input(src) as inp:
        assert inp.info.frame_rate == fps and inp.notices() == []
        assert [f.time for f in inp.frames()] == [Fraction(i) / fps for i in range(8)]
    dst = tmp_path / "out.mkv"
    with open_input(src) as inp, OutputVideo(dst, template=inp, copy_streams=False, codec="ffv1") as out:
        for f in inp.frames():
            out.write(f.planes, f.pts)
    with av.open(str(dst)) as c:
        assert c.streams.video[0].average_rate == fps


def test_vop_parsing(tmp_path) -> None:
    assert n_vop(5, 4) == bytes.fromhex("000001b6") + bytes([0b01010010, 0b01001111])
    assert vops(n_vop(5, 4), 5) == [False] and vops(n_vop(15, 1001), 15) == [False]
    counter = VopCounter()
    assert counter.gives_frame(n_vop(5)) and counter.bits is None  # no VOL seen yet: every packet counts
    with av.open(str(make_clip(tmp_path / "vop.m4v", codec="mpeg4", format="m4v", frames=1))) as c:
        first = bytes(next(p for p in c.demux(video=0) if p.size))
    assert time_increment_bits(first) == 5  # 25 fps: a resolution of 25, 5 bits
    assert counter.gives_frame(first) and counter.bits == 5 and not counter.gives_frame(n_vop(5))
