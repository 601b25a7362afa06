"""Any damage in the input is reported, never hidden — and reported once, as what it is (README "Damaged inputs":
one line, exit status 9):

- MPEG-TS with B-frames and one corrupt packet: the parser merges it with the next, the decoder gives a frame the
  time of a picture decoded before it; that is damage (one lost frame), not a join of two recordings, and no frame
  is hidden by the times going astray;
- a decoder that conceals damage flags the same frames corrupt in every run (one codec thread): the line counts
  what a plain decode flags;
- a file whose first video packet is corrupt is read, and the damage reported; one in which nothing decodes is
  refused in one line.
"""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

import av
import pytest

import media
from esrgan_video.errors import InputError
from esrgan_video.testing import run_cli
from esrgan_video.video.reader import open_input

read = media.read_frames


@pytest.fixture(scope="module")
def tiny_model(near_identity_file) -> Path:
    return near_identity_file(2)


# -- MPEG-TS with B-frames: one corrupt packet -----------------------------------------------------------------


@pytest.fixture(scope="module")
def bframes_ts(tmp_path_factory) -> Path:
    return media.make_clip(tmp_path_factory.mktemp("ts") / "good.ts", frames=48, options={"g": "12", "bf": "2"},
                           format="mpegts")


def _times(frames) -> list[Fraction]:
    return [f.time - frames[0].time for f in frames]


@pytest.mark.parametrize("packet", [3, 5, 6])  # a P-frame (merged with a B-frame after it), a B-frame, a P-frame
def test_ts_with_b_frames_and_a_corrupt_packet_is_one_lost_frame_not_a_join(tmp_path, bframes_ts, packet):
    """Packet 5 made the decoder give the next P-frame's picture the B-frame's time, 0.12 s back: the reader took
    it for joined recordings ('its timestamps jump back from 0.280 s to 0.160 s'), moved every later frame 4 frames
    on and said 5 frames lost; packets 3 and 6 said nothing at all (the merged packet leaves a half-step of the
    decoder's times, which no constant-rate gap rule judges): 47 of 48 frames and no word of damage."""
    bad = media.make_corrupt(bframes_ts, tmp_path / "bad.ts", frames=[packet])
    frames, stats, said = read(bad)
    good = _times(read(bframes_ts)[0])
    times = _times(frames)
    assert len(good) == 48 and len(frames) == 47
    assert all(a < b for a, b in zip(times, times[1:])) and times[-1] <= good[-1]  # nothing moved on
    first = next(t for t in good if t not in times)
    assert stats.lost_frames == stats.gap_frames == 1 and not stats.truncated
    assert said == [f"bad.ts: 1 frame(s) could not be decoded and were skipped, the first at {float(first):.3f} s "
                    "(gaps in the timestamps)"]


def test_cli_ts_with_b_frames_and_a_corrupt_packet_one_line_exit_9(tmp_path, bframes_ts, tiny_model, capfd):
    bad = media.make_corrupt(bframes_ts, tmp_path / "bad.ts", frames=[5])
    dst = tmp_path / "out.mkv"
    p = run_cli(capfd, bad, dst, "--model", tiny_model, "--device", "cpu", "--progress", "none")
    assert p.returncode == 9, p.stderr
    lines = [x for x in p.stderr.splitlines() if "bad.ts" in x]
    assert lines == ["esrgan-video: bad.ts: 1 frame(s) could not be decoded and were skipped, the first at 0.160 s "
                     "(gaps in the timestamps)"], p.stderr
    with av.open(str(dst)) as c:
        times = [f.time for f in c.decode(video=0)]
    assert len(times) == 47 and times[-1] - times[0] == pytest.approx(47 * 0.04, abs=1e-3)  # not 4 frames longer


# -- concealed frames: counted as the decoder flags them --------------------------------------------------------


def _decoder_says(path: Path) -> tuple[int, int]:
    """(frames decoded whole, frames lost) by a plain one-thread decode: frames flagged corrupt, packets refused and
    packets that gave no frame are lost."""
    whole = packets = frames = 0
    with av.open(str(path)) as c:
        st = c.streams.video[0]
        st.codec_context.thread_count = 1
        for pkt in c.demux(st):
            packets += bool(pkt.size)
            try:
                for f in pkt.decode():
                    frames += 1
                    whole += not f.is_corrupt
            except av.FFmpegError:
                pass
    return whole, packets - whole


def test_concealed_frames_in_matroska_are_counted_as_the_decoder_flags_them(tmp_path):
    """MPEG-4 Part 2 conceals the two corrupt packets and what refers to them: a plain decode flags 4 frames corrupt.
    Decoded with frame threads the reader's decoder flagged 3 (a frame thread hands a picture on before its
    concealment has run; now and then 2), so it upscaled a concealed picture and said 3 frames lost."""
    good = media.make_clip(tmp_path / "good.mkv", codec="mpeg4", size=(160, 96), frames=24,
                           options={"g": "12", "bf": "2"})
    bad = media.make_corrupt(good, tmp_path / "bad.mkv", frames=[3, 4])
    whole, lost = _decoder_says(bad)
    assert (whole, lost) == (20, 4)
    for _ in range(3):  # every run the same
        frames, stats, said = read(bad)
        assert len(frames) == whole and stats.lost_frames == lost and not stats.truncated
        assert said == [f"bad.mkv: {lost} frame(s) could not be decoded and were skipped, the first at 0.080 s"]


# -- the first video packet corrupt -----------------------------------------------------------------------------


@pytest.mark.parametrize("name,options", [("bad.mkv", {"g": "12"}), ("bad.mp4", {"g": "12", "bf": "2"}),
                                          ("intra.mkv", {"g": "1"})])
def test_a_corrupt_first_packet_is_read_and_reported(tmp_path, name, options):
    """The probe decoded the first packet only: its error refused the whole file ('the video stream cannot be
    decoded'), though everything from the next keyframe on decodes."""
    good = media.make_clip(tmp_path / f"good{Path(name).suffix}", frames=24, options=options)
    bad = media.make_corrupt(good, tmp_path / name, frames=[0])
    frames, stats, said = read(bad)
    lost = 1 if options["g"] == "1" else 12  # the keyframe, and the GOP that refers to it
    assert len(frames) == 24 - lost and stats.lost_frames == lost and not stats.truncated
    assert said == [f"{name}: {lost} frame(s) could not be decoded and were skipped, the first at 0.000 s"]
    good_first = read(good)[0][lost]
    assert frames[0].time == good_first.time and all((a == b).all() for a, b in zip(frames[0].planes,
                                                                                    good_first.planes))


def test_cli_a_corrupt_first_packet_exit_9(tmp_path, tiny_model, capfd):
    good = media.make_clip(tmp_path / "good.mkv", frames=24, options={"g": "12"})
    bad = media.make_corrupt(good, tmp_path / "bad.mkv", frames=[0])
    dst = tmp_path / "out.mkv"
    p = run_cli(capfd, bad, dst, "--model", tiny_model, "--device", "cpu", "--progress", "none")
    assert p.returncode == 9, p.stderr
    assert [x for x in p.stderr.splitlines() if "bad.mkv" in x] == [
        "esrgan-video: bad.mkv: 12 frame(s) could not be decoded and were skipped, the first at 0.000 s"]
    with av.open(str(dst)) as c:
        assert sum(1 for _ in c.decode(video=0)) == 12


@pytest.mark.parametrize("name,options", [("bad.mp4", {"g": "12", "bf": "2"}), ("bad.mkv", {"g": "12"})])
def test_nothing_decodes_is_refused_in_one_line(tmp_path, tiny_model, capfd, name, options):
    """Every packet noise: the decoder refuses each (FFmpeg's message) or conceals some, none whole (the Matroska
    file was read then: 0 frames, 'ends early … (the file is truncated); 21 frame(s) could not be decoded'). Which of
    the two varies from run to run with the noise (FFmpeg's decoding of garbage)."""
    good = media.make_clip(tmp_path / f"good{Path(name).suffix}", frames=24, options=options)
    bad = media.make_corrupt(good, tmp_path / name, frames=range(24))
    with pytest.raises(InputError, match=rf"^{re.escape(str(tmp_path / name))}: the video stream cannot be decoded"
                                         r"( \(.*Invalid data.*\)|: none of its frames decodes whole \(\d+ decoded "
                                         r"corrupt, \d+ packet\(s\) refused\))$"):
        open_input(bad)
    dst = tmp_path / "out.mkv"
    p = run_cli(capfd, bad, dst, "--model", tiny_model, "--device", "cpu", "--progress", "none")
    assert p.returncode not in (0, 9) and not dst.exists(), p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr, p.stderr


# -- leftovers ---------------------------------------------------------------------------------------------------


def test_unsupported_format_lists_what_is_read_as_a_supported_one(tmp_path):
    """The list comes from ``READ_AS`` (it was the table written out again by hand)."""
    from esrgan_video.frames.pixel_formats import READ_AS

    clip = media.make_clip(tmp_path / "y410.mkv", codec="ffv1", pix_fmt="yuv410p", frames=2)
    with pytest.raises(InputError) as e:
        open_input(clip)
    said = str(e.value)
    assert said.endswith("; read as those: uyvy422 and yuyv422 (as yuv422p), pal8 (as rgb24/rgba)"), said
    assert all(name in said.split("read as those: ")[1] for name in READ_AS)


def test_fill_times_steps_by_a_whole_tick_at_least():
    """Frames without a timestamp: before the first, one step apart; after the last, by the file's spacing (never 0,
    it is set only where the times increase), else by the step."""
    from esrgan_video.video.reader import fill_times

    got = [p for _, p, _ in fill_times([(i, None, None) for i in range(3)] + [(3, 10, None), (4, None, None)], 1)]
    assert got == [7, 8, 9, 10, 11]
    got = [p for _, p, _ in fill_times([(0, 0, None), (1, 4, None), (2, None, None), (3, None, None)], 1)]
    assert got == [0, 4, 8, 12]  # the spacing the file gave (4), not the step

