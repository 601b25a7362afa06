"""N-VOPs (not-coded VOPs: the picture before repeats; ``video/mpeg4_vops.py``) give no frame, and an AVI's header
frame count counts their chunks: every count that means frames (``VideoInfo.frame_count``, ``frame_count_in``, the
keyframe scan's, the ``--progress json`` total, the summary) is the frames written, as test_edit_list_counts checks
for the packets the decoder drops. The file is made as test_mpeg4_sources makes it: PyAV's mpeg4 encoder, two
packets replaced by N-VOPs."""

from __future__ import annotations

from pathlib import Path

import av

from esrgan_video.video.keyframes import scan_keyframes
from esrgan_video.video.packet_index import clear_cache
from esrgan_video.video.reader import open_input

from media import make_clip, read_frames
from test_edit_list_counts import _decoded, _json_run
from test_mpeg4_sources import n_vop, remuxed_avi


def test_n_vops_are_no_frames_in_the_counts(tmp_path: Path, capfd, near_identity_file) -> None:
    clear_cache()
    xvid = make_clip(tmp_path / "xvid.avi", codec="mpeg4", fps=25, frames=10)
    src = remuxed_avi(xvid, tmp_path / "nvop.avi", lambda i, data, bits: n_vop(bits, i) if i in (4, 7) else None)
    n = _decoded(src)
    assert n == 8
    with av.open(str(src)) as c:
        assert c.streams.video[0].frames == 10  # the AVI header counts the N-VOPs' chunks
    with open_input(src) as inp:
        assert inp.info.frame_count == n  # was 10
        assert inp.frame_count_in() == n == len(inp.frame_times())
    assert scan_keyframes(src).frame_count == n
    rc, totals, last, done, summary = _json_run(capfd, src, tmp_path / "out.mkv", near_identity_file(2))
    assert rc == 0 and totals == {n} and last["frame"] == n  # the bar ended at 8/10
    assert done["frames"] == summary == n == _decoded(tmp_path / "out.mkv")
    assert done["lost_frames"] == 0 and not done["damaged"]


def test_batchs_up_front_output_check_reads_no_packet_index(tmp_path: Path, monkeypatch) -> None:
    """The driver judges every file's output before its worker gets it (``_judged``): that needs no frame count, so it
    must not read an Xvid file's whole packet index for its N-VOPs (~65 µs a packet: seconds an episode, serially over
    a library, in the driver)."""
    from esrgan_video.batch import driver
    from esrgan_video.batch.inputs import Job
    from esrgan_video.options import UpscaleOptions
    from esrgan_video.video import reader

    clear_cache()
    xvid = make_clip(tmp_path / "xvid.avi", codec="mpeg4", fps=25, frames=10)
    src = remuxed_avi(xvid, tmp_path / "nvop.avi", lambda i, data, bits: n_vop(bits, i) if i in (4, 7) else None)
    reads = []
    real = reader.read_packet_index
    monkeypatch.setattr(reader, "read_packet_index", lambda *a, **k: reads.append(a) or real(*a, **k))
    job = Job(src=src, dst=tmp_path / "out" / "nvop.mkv", key="nvop.avi")
    assert driver._judged(UpscaleOptions(), job, 4, duration=True)[0] is None
    assert reads == []
    with open_input(src) as inp:  # a run's own open still counts exactly
        assert inp.info.frame_count == 8 and len(reads) == 1


def test_empty_avi_chunks_are_no_frames_in_the_counts(tmp_path: Path, capfd, near_identity_file) -> None:
    """Empty '00dc' chunks (frames an encoder dropped) hold no frame; the AVI header counts them. A whole read of an
    AVI reads the packet index anyway (its empty ticks, for the truncation check), so the probe's count costs no pass
    more in a CLI run. Here an H.264 AVI, so no N-VOP logic is involved."""
    clear_cache()
    x264 = make_clip(tmp_path / "x264.avi", codec="libx264", fps=25, frames=10)
    src = remuxed_avi(x264, tmp_path / "empty.avi", lambda i, data, bits: b"" if i in (4, 7) else None)
    n = _decoded(src)
    assert n == 8
    with av.open(str(src)) as c:
        assert c.streams.video[0].frames == 10  # the AVI header counts the empty chunks
    with open_input(src) as inp:
        assert inp.info.frame_count == n  # was 10
        assert inp.frame_count_in() == n == len(inp.frame_times())
    clear_cache()
    with open_input(src, exact_count=False) as inp:  # no pass: the header's count
        assert inp.info.frame_count == 10
    rc, totals, last, done, summary = _json_run(capfd, src, tmp_path / "out.mkv", near_identity_file(2))
    assert rc == 0 and totals == {n} and last["frame"] == n  # the bar ended at 8/10
    assert done["frames"] == summary == n == _decoded(tmp_path / "out.mkv")
    assert done["lost_frames"] == 0 and not done["damaged"]


def _edit_list_mpeg4(path: Path) -> Path:
    """An MPEG-4 Part 2 MP4 with B-frames whose frames start at -0.08 s: the edit list discards two packets, the
    keyframe and a B-frame (decode order I P B P B …)."""
    return make_clip(path, codec="mpeg4", pts=[-80 + 40 * i for i in range(12)], options={"bf": "1", "g": "6"})


def test_an_n_vop_the_edit_list_discards_is_left_out_once(tmp_path: Path) -> None:
    """The probe took the packets the decoder drops (an edit list's discarded ones) and the N-VOPs off the header's
    count separately, and an N-VOP that the edit list also discards came off twice (9 where 10 frames decode)."""
    clear_cache()
    src = _edit_list_mpeg4(tmp_path / "edit.mp4")
    with av.open(str(src)) as c:
        discarded = [i for i, p in enumerate(q for q in c.demux(video=0) if q.size) if p.is_discard]
    assert len(discarded) == 2
    b = discarded[-1]  # the B-frame: no other frame refers to it
    nvop = remuxed_avi(src, tmp_path / "nvop.mp4", lambda i, data, bits: n_vop(bits, i) if i == b else None)
    n = _decoded(nvop)
    assert n == 10
    frames, stats, said = read_frames(nvop)
    assert len(frames) == n and stats.lost_frames == 0 and said == []
    with open_input(nvop) as inp:
        assert inp.info.frame_count == n == inp.frame_count_in()  # was 9


def test_n_vops_in_an_mp4_are_no_truncation(tmp_path: Path) -> None:
    """An MP4's sample count counts its N-VOPs: the read's truncation check left them out of the frames the stream
    held, and 3 N-VOPs of 12 read as 'ends early: 9 of 12 frames decoded (the file is truncated)'."""
    clear_cache()
    src = make_clip(tmp_path / "m4.mp4", codec="mpeg4", fps=25, frames=12)
    nvop = remuxed_avi(src, tmp_path / "nvop.mp4", lambda i, data, bits: n_vop(bits, i) if i in (3, 5, 7) else None)
    n = _decoded(nvop)
    assert n == 9
    frames, stats, said = read_frames(nvop)
    assert len(frames) == n and stats.lost_frames == 0 and not stats.truncated and said == []
    with open_input(nvop) as inp:
        assert inp.info.frame_count == n
        run = inp.frames(start=6)  # after a seek the N-VOPs before it count too
        assert len(list(run)) == n - 6
    assert run.stats.seeked and not run.stats.truncated and run.stats.lost_frames == 0


def test_an_empty_chunk_at_the_end_of_an_avi_is_no_frame(tmp_path: Path) -> None:
    """The probe took off the header's count the ticks no packet holds up to the last packet: an empty chunk after
    it stayed counted (10 where 9 frames decode; the progress bar ended at 9/10)."""
    clear_cache()
    x264 = make_clip(tmp_path / "x264.avi", codec="libx264", fps=25, frames=10)
    src = remuxed_avi(x264, tmp_path / "empty.avi", lambda i, data, bits: b"" if i == 9 else None)
    n = _decoded(src)
    assert n == 9
    with open_input(src) as inp:
        assert inp.info.frame_count == n == len(inp.frame_times())  # was 10


def test_opening_an_avi_demuxes_only_its_first_frame(tmp_path: Path, monkeypatch) -> None:
    """``open_input`` of an AVI (or of an MPEG-4 Part 2 stream) demuxed the whole file for ``frame_count`` (~65 µs a
    packet: 12 s for a 2-hour AVI) even when nothing asked for it; the packet index now counts when first asked."""
    from esrgan_video.video import packet_index

    clear_cache()
    demuxed: list[int] = []

    class Counting(packet_index.Demux):
        def __next__(self):
            pkt = super().__next__()
            demuxed.append(pkt.size)
            return pkt

    monkeypatch.setattr(packet_index, "Demux", Counting)
    xvid = make_clip(tmp_path / "xvid.avi", codec="mpeg4", fps=25, frames=10)
    src = remuxed_avi(xvid, tmp_path / "nvop.avi", lambda i, data, bits: n_vop(bits, i) if i in (4, 7) else None)
    with open_input(src) as inp:
        assert inp.info.width == 64 and demuxed == []  # was 11 packets (the whole file) before anything asked
        assert inp.info.frame_count == 8 and len([s for s in demuxed if s]) == 10
        assert inp.info.frame_count == 8 and len([s for s in demuxed if s]) == 10  # counted once
