"""video.packet_index: one demux pass, checked against a decode of the same files (PyAV), shared and cached."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import pytest

from esrgan_video.video.keyframes import scan_keyframes
from esrgan_video.errors import InputError
from esrgan_video.video import packet_index as packet_index_module
from esrgan_video.video.packet_index import NOPTS, clear_cache, read_packet_index
from esrgan_video.video.probe import Demux, container_duration, probe
from esrgan_video.video.reader import open_input
from esrgan_video.video.trim import check_trim

from media import AudioTrack, make_audio_only, make_clip, make_corrupt, make_not_media, make_truncated

VFR_PTS = [0, 40, 90, 100, 250, 260, 400, 433, 600]


@pytest.fixture(autouse=True)
def _fresh_cache():
    clear_cache()
    yield
    clear_cache()


@pytest.fixture()
def scans(monkeypatch):
    """Counts the demux passes (the real scan runs; only the number of calls is recorded)."""
    calls: list[Path] = []
    real = packet_index_module._scan

    def counting(path, stream_index):
        calls.append(Path(path))
        return real(path, stream_index)

    monkeypatch.setattr(packet_index_module, "_scan", counting)
    return calls


def _decoded(path: Path) -> list[av.VideoFrame]:
    with av.open(str(path)) as c:
        return list(c.decode(video=0))


def test_gop_clip_matches_a_decode(tmp_path):
    clip = make_clip(tmp_path / "g.mkv", frames=12, fps=25,
                     options={"bf": "2", "x264-params": "keyint=4:min-keyint=4:scenecut=0"})
    index = read_packet_index(clip)
    frames = _decoded(clip)
    assert index.complete and index.error is None
    assert index.packet_count == len(frames) == 12
    assert index.presentation_pts() == sorted(f.pts for f in frames)
    assert index.media_times() == [f.pts * Fraction(f.time_base) for f in frames]
    assert index.keyframe_count == 3 and bool(index.keyframes[0])  # keyint 4: frames 0, 4, 8
    assert index.has_all_pts
    dts = [d for d in index.dts if d != NOPTS]  # Matroska stores no dts: the demuxer derives them after the delay
    assert dts and dts == sorted(dts)  # decode order
    assert list(index.pts) != sorted(index.pts)  # B-frames: presentation order differs
    assert index.duration == Fraction(12, 25)
    assert index.time_base == Fraction(1, 1000) and index.stream_index == 0


def test_vfr_and_the_streams_other_than_video(tmp_path):
    clip = make_clip(tmp_path / "v.mkv", pts=VFR_PTS, time_base=Fraction(1, 1000), frames=len(VFR_PTS),
                     audio=[AudioTrack()])
    index = read_packet_index(clip)
    assert index.presentation_pts() == VFR_PTS  # audio packets are not in the video's index
    assert index.media_times() == [Fraction(p, 1000) for p in VFR_PTS]
    with av.open(str(clip)) as c:
        audio = c.streams.audio[0].index
        assert c.streams[index.stream_index].type == "video"
    with pytest.raises(InputError, match="not video"):
        read_packet_index(clip, audio)
    with pytest.raises(InputError, match="no stream #9"):
        read_packet_index(clip, 9)


def test_mp4_start_time_is_the_media_time_origin(tmp_path):
    clip = make_clip(tmp_path / "m.mp4", frames=5, fps=25, options={"bf": "0"})
    index = read_packet_index(clip)
    with open_input(clip) as inp:
        assert index.start_time == inp.info.start_time
        assert index.media_times() == inp.frame_times()
        assert index.packet_count == inp.info.frame_count == probe(clip)["frames"] == 5
    assert container_duration(clip) == index.duration == Fraction(1, 5)
    mkv = make_clip(tmp_path / "m.mkv", frames=5, fps=25)
    assert probe(mkv)["frames"] == 0 and read_packet_index(mkv).packet_count == 5  # Matroska keeps no count


def test_truncated_file_ends_the_index_where_the_demuxer_stops(tmp_path):
    whole = make_clip(tmp_path / "w.mkv", frames=30, size=(64, 48))
    cut = make_truncated(whole, tmp_path / "cut.mkv", keep=0.5)
    full, part = read_packet_index(whole), read_packet_index(cut)
    assert 0 < part.packet_count < full.packet_count
    assert list(part.pts) == list(full.pts[: part.packet_count])  # the same packets, in decode order
    assert part.complete == (part.error is None)  # a demuxer error, if any, is kept as the reason
    assert part.duration < full.duration


def test_demux_ends_quietly_at_a_demuxer_error_and_keeps_its_message():
    class Damaged:  # a container whose demuxer stops at damaged data after two packets
        def demux(self, *streams):
            yield from ("p0", "p1")
            raise av.InvalidDataError(1094995529, "Invalid data found when processing input")

    demux = Demux(Damaged())
    assert list(demux) == ["p0", "p1"] and "Invalid data found" in demux.error
    assert next(demux, None) is None  # and stays ended

    class Whole:
        def demux(self, *streams):
            yield from ("p0", "p1")

    demux = Demux(Whole())
    assert list(demux) == ["p0", "p1"] and demux.error is None


def test_unreadable_inputs_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="cannot be read as a video"):
        read_packet_index(make_not_media(tmp_path / "n.mkv"))
    with pytest.raises(InputError, match="cannot be read"):
        read_packet_index(tmp_path / "missing.mkv")
    audio_only = tmp_path / "a.mka"
    make_audio_only(audio_only)
    with pytest.raises(InputError, match="no video stream"):
        read_packet_index(audio_only)
    with pytest.raises(InputError, match="no video stream"):
        probe(audio_only)
    assert container_duration(tmp_path / "missing.mkv") is None


def test_one_run_demuxes_once(tmp_path, scans):
    """Seeking, the trim range, a second reader of the same file and the batch keyframe scan share one pass."""
    clip = make_clip(tmp_path / "s.mkv", frames=12, options={"x264-params": "keyint=4:min-keyint=4:scenecut=0"})
    with open_input(clip) as inp:
        assert inp.resolve_range(5, 9)[0] == inp.frame_times()[5]
        run = inp.frames(start=5, end=9)
        got = [f.index for f in run]
        assert got == [5, 6, 7, 8] and run.stats.seeked
    with open_input(clip) as again:
        assert [f.index for f in again.frames(start=8)] == [8, 9, 10, 11]
    keys = scan_keyframes(clip)
    assert keys.frame_count == 12 and len(keys.cuts) == 2
    assert scans == [clip]


def test_a_file_changed_on_disk_is_read_again(tmp_path, scans):
    path = tmp_path / "c.mkv"
    make_clip(path, frames=6)
    first = read_packet_index(path)
    assert read_packet_index(path) is first
    make_clip(tmp_path / "tmp.mkv", frames=9)
    os.replace(tmp_path / "tmp.mkv", path)
    assert read_packet_index(path).packet_count == 9
    assert len(scans) == 2


def test_avi_packets_are_timed_in_decode_order(tmp_path):
    """AVI has no presentation times: the index keeps each packet's decode-order counter, whose sorted values are
    the frames' times as the reader gives them, and a closed GOP's keyframe is at its own counter."""
    src = make_clip(tmp_path / "bf.avi", frames=48, options={"g": "12"})  # x264: B-frames, closed GOPs
    index = read_packet_index(src)
    assert index.decode_order and index.has_all_pts
    assert list(index.pts) == list(index.dts) == list(range(48))
    with open_input(src) as inp:
        assert index.media_times() == [Fraction(f.pts, 25) for f in inp.frames()] == inp.frame_times()
    assert scan_keyframes(src).cuts == (12, 24, 36)
    assert not read_packet_index(make_clip(tmp_path / "bf.mkv", frames=12, options={"g": "12"})).decode_order


def _open_gop_cut(tmp_path: Path, codec: str = "libx264", *, gops: int = 3, at: int = 2) -> Path:
    """An open-GOP transport stream (``gops`` GOPs of 12 frames) cut at its keyframe ``at`` (from 0; default the
    third): the B-frames after that keyframe in decode order that show before it refer to the GOP cut off, and the
    decoder drops them (H.264 here: one; MPEG-2, bf 2: two)."""
    options = {"x264-params": "open-gop=1:keyint=12:min-keyint=12:bframes=3:b-pyramid=0:scenecut=0"} \
        if codec == "libx264" else {"bf": "2", "g": "12"}  # FFmpeg's MPEG-2 encoder: open GOPs unless +cgop
    src = make_clip(tmp_path / f"og_{codec}.ts", codec=codec, frames=12 * gops, format="mpegts", size=(64, 48),
                    options=options)
    with av.open(str(src)) as c:
        keys = [p.pos for p in c.demux(c.streams.video[0]) if p.size and p.is_keyframe]
    data = src.read_bytes()
    cut = tmp_path / f"og_{codec}_cut.ts"
    cut.write_bytes(data[:2 * 188] + data[keys[at] - keys[at] % 188:])  # the PAT/PMT, then from that keyframe
    return cut


def test_packets_the_decoder_drops_are_no_frames(tmp_path):
    """An MP4 whose edit list starts the video two packets in (frames at -0.08 s and -0.04 s: the packets are flagged
    discard) and an open-GOP cut's leading B-frame give no frame: the index keeps them for the keyframe scan but not
    among the frames' times, and the reader counts none of them lost."""
    edit = make_clip(tmp_path / "edit.mp4", pts=[-80 + 40 * i for i in range(10)], audio=[AudioTrack()])
    cut, mpeg2 = _open_gop_cut(tmp_path), _open_gop_cut(tmp_path, "mpeg2video")
    for src, dropped in ((mpeg2, 2), (cut, 1), (edit, 2)):
        index = read_packet_index(src)
        with open_input(src) as inp:
            run = inp.frames()
            frames = [inp.media_time(f.pts, f.time_base) for f in run]
            assert run.stats.lost_frames == 0 and run.stats.report() is None, run.stats.report()
            assert inp.frame_times() == frames and len(frames) == index.packet_count - dropped
            assert check_trim(inp, 1, None) == len(frames) - 1
        assert index.presentation_pts() == sorted(f.pts for f in _decoded(src))
        assert len(index.keyframe_packets()) == index.packet_count  # the keyframe scan sees every packet
    # a truly damaged file still reports its loss
    bad = make_corrupt(edit, tmp_path / "bad.mp4", frames=[5])
    with open_input(bad) as inp:
        run = inp.frames()
        n = sum(1 for _ in run)
        assert run.stats.lost_frames >= 1 and run.stats.report(), (n, run.stats)
