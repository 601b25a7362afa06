"""video.writer: what the output container is told besides the pictures — a variable rate into AVI, SVT-AV1 above
240 fps, cover art where it has no place, an interlaced input's field order. Inputs are real clips written by PyAV
(``media.make_clip``); nothing is mocked."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import pytest

from esrgan_video.errors import OutputError
from esrgan_video.video.encoder_formats import choose_pix_fmt, encoder_opens, encoder_reorders
from esrgan_video.video.reader import open_input
from esrgan_video.video.writer import OutputVideo, check_output, field_order_kept, sar_kept

import media
from media import AudioTrack, frame_planes, make_clip, read_frames, small_jpeg

VFR_PTS = [0, 40, 90, 100, 250, 290]  # ms


def remux(src: Path, dst: Path, **writer_kw) -> list[str]:
    """``media.remux``'s notices."""
    return media.remux(src, dst, **writer_kw).notices


def decoded_times(path: Path) -> list[Fraction]:
    """Every frame's time as FFmpeg decodes it, from the first, sorted."""
    with av.open(str(path)) as c:
        got = sorted(f.pts * f.time_base for f in c.decode(video=0))
    return [t - got[0] for t in got]


def reader_times(path: Path) -> list[Fraction]:
    """Every frame's media time as the project's reader gives it (an AVI's: from the packets' decode order)."""
    got = [f.pts * f.time_base for f in read_frames(path)[0]]
    return [t - got[0] for t in got]


# -- a variable frame rate into AVI ------------------------------------------------------------------------------

def test_avi_refuses_b_frames_of_a_variable_rate_before_writing(tmp_path: Path) -> None:
    """AVI keeps one time per packet, in decode order: libx264's B-frames of the 0, 40, 90, 100, 250, 290 ms clip
    read back at 0, 40, 90, 130, 180, 190 ms, without a word. Now one line, before any file is made."""
    src = make_clip(tmp_path / "in.mkv", pts=VFR_PTS, time_base=Fraction(1, 1000))
    dst = tmp_path / "out.avi"
    with pytest.raises(OutputError) as e:
        remux(src, dst, codec="libx264")
    assert str(e.value) == (f"{dst}: AVI stores no presentation times and in.mkv has a variable frame rate, so "
                            "libx264's B-frames would be written at wrong times; use .mkv or .mp4, "
                            "or --encoder-opt bf=0")
    assert list(tmp_path.iterdir()) == [src]  # no output, no partial file
    # what the line offers works: frames in display order keep every time, in AVI as in Matroska
    remux(src, dst, codec="libx264", options={"bf": "0"})
    assert reader_times(dst) == [Fraction(p, 1000) for p in VFR_PTS]
    remux(src, tmp_path / "out.mkv", codec="libx264")
    assert decoded_times(tmp_path / "out.mkv") == [Fraction(p, 1000) for p in VFR_PTS]


def test_avi_still_takes_b_frames_of_a_constant_rate(tmp_path: Path) -> None:
    src = make_clip(tmp_path / "in.mp4", frames=8, fps=25)
    remux(src, tmp_path / "out.avi", codec="libx264")
    assert reader_times(tmp_path / "out.avi") == [Fraction(i, 25) for i in range(8)]


def test_encoder_reorders() -> None:
    assert encoder_reorders("libx264", "yuv420p") and not encoder_reorders("libx264", "yuv420p", (("bf", "0"),))
    assert encoder_reorders("libx265", "yuv420p")  # x265 does not say so (has_b_frames): its packets do
    assert encoder_reorders("mpeg4", "yuv420p", (("bf", "2"),)) and not encoder_reorders("mpeg4", "yuv420p")
    assert not encoder_reorders("ffv1", "yuv420p")


# -- SVT-AV1 above 240 fps ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("fps, time_base, name", [
    (300, Fraction(1, 19200), "in.mp4"),
    (250, Fraction(1, 1000), "in.mkv"),
])
@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_svtav1_above_240_fps(tmp_path: Path, capfd, fps, time_base, name, suffix) -> None:
    """SVT-AV1 refuses a frame rate above 240 ("Svt[error]: The maximum allowed frame rate is 240 fps"): a 250 or
    300 fps input failed with 'cannot set up the libsvtav1 encoder (Invalid argument ...)'. Its rate control is now
    told 240 fps; the file says the input's rate and the frames keep their times."""
    if "libsvtav1" not in av.codecs_available:
        pytest.skip("this FFmpeg has no libsvtav1")
    src = make_clip(tmp_path / name, frames=8, fps=fps, time_base=time_base)
    dst = tmp_path / f"out{suffix}"
    capfd.readouterr()
    notices = remux(src, dst, codec="libsvtav1")
    assert "Svt[error]" not in capfd.readouterr().err
    assert notices == [f"{dst}: libsvtav1 takes at most 240 fps; its rate control is told 240 fps (the {fps} fps "
                       "frames keep their times)"]
    with av.open(str(dst)) as c:
        assert c.streams.video[0].average_rate == fps
    want = decoded_times(src)
    got = decoded_times(dst)
    assert len(got) == 8 and all(abs(a - b) <= Fraction(1, 1000) for a, b in zip(got, want))


# -- cover art where the container has no place for it ------------------------------------------------------------

@pytest.mark.parametrize("source", ["in.mkv", "in.mp4"])
@pytest.mark.parametrize("suffix, codec", [
    (".webm", "libvpx-vp9"), (".ts", "libx264"),  # refused the whole output
    (".mov", "libx264"),  # dropped without a word
    (".avi", "libx264"), (".nut", "libx264"),  # a plain second video stream, no cover flag
])
def test_cover_art_left_out_with_a_notice(tmp_path: Path, source: str, suffix: str, codec: str) -> None:
    """A cover (an MKV's cover.jpg attachment, an MP4's attached picture) refused the whole output: 'the .webm
    container cannot hold the video stream #2 (mjpeg); use .mkv instead'; .mov lost it silently, .avi and .nut made
    it a second video stream. Now it is left out where it cannot stay cover art, said in one line."""
    mkv = make_clip(tmp_path / "in.mkv", frames=3, attachments=[("cover.jpg", "image/jpeg", small_jpeg())],
                    audio=[AudioTrack(codec="libopus" if suffix == ".webm" else "aac")])
    src = mkv
    if source == "in.mp4":  # the writer's own .mp4 of it: the cover as an attached picture stream
        src = tmp_path / "in.mp4"
        remux(mkv, src, copy_streams=True)
    with av.open(str(src)) as c:
        cover = [s.index for s in c.streams if s.disposition & av.stream.Disposition.attached_pic]
    assert cover == [2]
    dst = tmp_path / f"out{suffix}"
    notices = remux(src, dst, codec=codec, copy_streams=True)
    assert notices == [f"{src}: the cover art (stream #2, mjpeg) cannot go into {suffix} files and is not copied "
                       "(.mkv and .mp4 keep it)"]
    with av.open(str(dst)) as c:
        assert [s.type for s in c.streams] == ["video", "audio"]
        assert sum(1 for p in c.demux(c.streams.audio[0]) if p.size) > 0
    with open_input(dst) as out:
        assert len(list(out.frames())) == 3


# -- an interlaced input's field order ----------------------------------------------------------------------------

def field_order(path: Path) -> str:
    with open_input(path) as inp:
        return inp.info.field_order


@pytest.mark.parametrize("codec, suffix", [
    ("libx264", ".mkv"), ("libx264", ".mp4"), ("libx264", ".ts"),  # x264 says it in its stream (fake-interlaced)
    ("ffv1", ".mkv"), ("libx265", ".mp4"), ("libx265", ".mov"),  # the container does: FieldOrder, fiel
])
def test_field_order_kept(tmp_path: Path, codec: str, suffix: str) -> None:
    """A top-field-first input came out flagged progressive (libx264: its SPS) or unflagged (others)."""
    src = make_clip(tmp_path / "in.mkv", frames=4, interlaced=True)
    assert field_order(src) == "tt"
    dst = tmp_path / f"out{suffix}"
    assert remux(src, dst, codec=codec) == []
    assert field_order(dst) == "tt"
    with open_input(dst) as out:
        assert len(list(out.frames())) == 4


@pytest.mark.parametrize("codec, suffix, reads", [
    ("mpeg2video", ".mpg", "progressive"),  # MPEG-2 takes it from frame flags PyAV cannot set
    ("libvpx-vp9", ".webm", "no order"),     # WebM has no FieldOrder
    ("ffv1", ".avi", "no order"),
])
def test_field_order_lost_with_a_notice(tmp_path: Path, codec: str, suffix: str, reads: str) -> None:
    src = make_clip(tmp_path / "in.mkv", frames=4, interlaced=True)
    dst = tmp_path / f"out{suffix}"
    assert remux(src, dst, codec=codec) == [
        f"{dst}: the input's field order (top field first) cannot be written for {codec} in {suffix} files (it "
        f"reads back as {reads}); .mkv keeps it"]


def test_progressive_input_unchanged(tmp_path: Path) -> None:
    src = make_clip(tmp_path / "in.mkv", frames=4)
    remux(src, tmp_path / "out.mp4", codec="libx264")
    assert field_order(tmp_path / "out.mp4") == "progressive"
    assert field_order_kept("matroska", "ffv1", "yuv420p", "bb") == "bb"


SAR_CODECS = ("libx264", "libx265", "libsvtav1", "libvpx", "libvpx-vp9", "ffv1", "prores_ks", "mpeg4", "mjpeg",
              "mpeg1video", "mpeg2video", "utvideo", "huffyuv", "ffvhuff", "rawvideo", "libwebp_anim")
SAR_CONTAINERS = (".mkv", ".webm", ".mp4", ".mov", ".avi", ".nut", ".ts", ".mpg", ".flv", ".webp")


def test_sar_kept_is_what_reads_back(tmp_path) -> None:
    """``writer.sar_kept`` says what a file reads back: a 2-frame 72x48 SAR 32:27 clip of every codec the writer
    offers, in every container that holds it (VP8 into .avi or .nut read back 0:1 where sar_kept said kept: AVI and
    NUT take the SAR from the stream, which PyAV never sets; only a SAR in the bitstream survives there)."""
    sar, written, wrong = Fraction(32, 27), [], []
    for codec in SAR_CODECS:
        try:
            pix_fmt, _ = choose_pix_fmt(codec, "yuv420p")
        except OutputError:
            continue
        if not encoder_opens(codec, pix_fmt):
            continue
        for ext in SAR_CONTAINERS:
            dst = tmp_path / f"{codec}{ext}"
            try:
                fmt = check_output(dst, codec)
            except OutputError:
                continue
            try:
                with OutputVideo(dst, codec=codec, pix_fmt=pix_fmt, size=(72, 48), time_base=Fraction(1, 25),
                                 rate=Fraction(25), sar=sar, copy_streams=False, notice=lambda m: None) as out:
                    for i in range(8 if ext == ".ts" else 2):  # a 2-frame MPEG-TS is too short to probe
                        out.write(frame_planes(pix_fmt, (72, 48), i), i)
            except OutputError:
                continue  # the writer refused it in one line (a container that cannot hold the encoder's frames)
            with av.open(str(dst)) as c:
                got = c.streams.video[0].sample_aspect_ratio if c.streams.video else "no video"
            written.append((codec, ext))
            if (got == sar) != sar_kept(codec, fmt):
                wrong.append((codec, ext, str(got), sar_kept(codec, fmt)))
    assert ("libvpx", ".avi") in written and ("libvpx", ".nut") in written and len(written) > 40, written
    assert wrong == []
