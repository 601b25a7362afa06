"""Every codec the CLI offers encodes 1, 2 and 3 frames in every container that takes it (#14.4).

One- and two-frame previews are what users run first. libx265 used to fail about half of them: for an encode of
no more frames than its B-frame delay, x265 4.x computes each packet's DTS from an uninitialised member
(``m_bframeDelayTime``), so the muxer saw ``pts (0) < dts (-4637…)`` and refused it (``video.writer.DtsRepair``
now repairs such DTS). The pairs a container cannot hold are refused with one line before anything is written.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

import media
from esrgan_video.errors import OutputError
from esrgan_video.testing import near_identity_model
from esrgan_video.upscaler import Upscaler
from esrgan_video.video.reader import open_input
from esrgan_video.video.writer import DtsRepair, OutputVideo, check_output

CODECS = {"libx264": None, "libx265": None, "libsvtav1": None, "ffv1": None, "prores_ks": "yuv422p10le"}
CONTAINERS = (".mkv", ".mp4", ".mov")
INVALID = {("prores_ks", ".mp4"), ("ffv1", ".mov"), ("libsvtav1", ".mov")}
"""Pairs FFmpeg's muxers refuse: MP4 has no ProRes; MOV has no FFV1 and no AV1 (FFmpeg's mov muxer writes av1C
only in MP4 mode)."""


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    return media.make_clip(tmp_path_factory.mktemp("matrix") / "src.mp4", size=(64, 48), frames=6,
                           audio=[media.AudioTrack()])


def encode(src: Path, dst: Path, codec: str, frames: int, pix_fmt: str | None) -> None:
    with open_input(src) as inp:
        with OutputVideo(dst, template=inp, codec=codec, pix_fmt=pix_fmt, end=frames, overwrite=True) as out:
            for f in inp.frames(end=frames):
                planes = f.planes if out.pix_fmt == inp.info.pix_fmt else media.frame_planes(out.pix_fmt, out.size, f.index)
                out.write(planes, f.pts)


def decoded_count(path: Path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


@pytest.mark.parametrize("ext", CONTAINERS)
@pytest.mark.parametrize("codec", list(CODECS))
def test_one_two_three_frames(tmp_path, source, codec, ext):
    if (codec, ext) in INVALID:
        dst = tmp_path / f"out{ext}"
        with pytest.raises(OutputError, match=rf"out\{ext}: the \{ext} container cannot hold {codec} video; use \.mkv"):
            check_output(dst, codec)
        with open_input(source) as inp, pytest.raises(OutputError, match=rf"cannot hold {codec} video"):
            OutputVideo(dst, template=inp, codec=codec, pix_fmt=CODECS[codec])
        assert list(tmp_path.iterdir()) == []  # nothing started
        return
    # x265's failure was random (about half of the 1- and 2-frame encodes): repeat those
    repeats = 4 if codec == "libx265" else 1
    for frames in (1, 2, 3):
        for r in range(repeats if frames < 3 else 1):
            dst = tmp_path / f"{codec}_{frames}_{r}{ext}"
            encode(source, dst, codec, frames, CODECS[codec])
            assert decoded_count(dst) == frames, dst


def test_dts_repair_passes_good_streams_and_mends_garbage():
    # a B-frame stream as x264 writes it: DTS trail PTS by the reorder delay, monotonic
    good = [(0, -1024), (1536, -512), (512, 0), (1024, 512), (3072, 1024), (2048, 1536)]
    fix = DtsRepair(Fraction(1, 12800))
    assert [fix(p, d) for p, d in good] == [d for _, d in good] and fix.repaired == 0
    # what libx265 gave for 2 frames (pts minus uninitialised memory), and a DTS after its PTS
    fix = DtsRepair(Fraction(1, 12800))
    assert [fix(0, -4637229872563879936), fix(512, -4637229872563879424)] == [0, 512] and fix.repaired == 2
    fix = DtsRepair(Fraction(1, 12800))
    assert [fix(0, 94528415273336), fix(512, None)] == [0, 512]
    # variable frame rate with a long still: a legitimate DTS 40 s behind its PTS is left alone
    fix = DtsRepair(Fraction(1, 1000))
    assert [fix(p, d) for p, d in [(0, -80), (40_000, -40), (40, 0), (40_080, 40_000)]] == [-80, -40, 0, 40_000]


def test_libx265_two_frame_preview_through_the_pipeline(tmp_path, source):
    """The issue's case end to end: an upscaled 2-frame libx265 encode into .mkv and .mp4 (with audio)."""
    from esrgan_video.pipeline import upscale_video

    with Upscaler(near_identity_model(2), device="cpu") as up:
        for ext in (".mkv", ".mp4"):
            for r in range(3):
                dst = tmp_path / f"t{r}{ext}"
                result = upscale_video(source, dst, upscaler=up, codec="libx265", end=2)
                assert result.frames == 2 and decoded_count(dst) == 2
                with av.open(str(dst)) as c:
                    pkts = [p for p in c.demux(video=0) if p.size]
                dts = [p.dts for p in pkts if p.dts is not None]  # Matroska stores none; MP4 does
                assert all(p.dts is None or p.dts <= p.pts for p in pkts) and np.all(np.diff(dts) > 0)


def test_refused_before_any_work(tmp_path, source):
    """prores_ks into .mp4: one line, exit 6, before the model is even loaded (a model path that does not exist
    would be exit 4 if it were)."""
    import subprocess
    import sys

    dst = tmp_path / "out.mp4"
    p = subprocess.run([sys.executable, "-m", "esrgan_video", str(source), str(dst), "--codec", "prores_ks",
                        "--model", str(tmp_path / "no-such-model.pth"), "--offline"],
                       capture_output=True, text=True, timeout=300)
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert p.returncode == 6 and len(lines) == 1, p.stderr
    assert "cannot hold prores_ks video; use .mkv instead" in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_animated_sources_and_outputs(tmp_path):
    """An animated GIF (palette frames decoded as bgra, per-frame durations) upscales, with no --codec, into each
    container's usual encoder — WebM: VP9, whose encoder lists alpha formats its library cannot open (the nearest
    it opens is taken); APNG; animated WebP; Matroska: H.264 — with every frame's time kept; a .gif output is
    refused in one line before any work, naming what to write instead."""
    from PIL import Image

    from esrgan_video.pipeline import upscale_video

    rng = np.random.default_rng(3)
    pics = [Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).convert("P") for _ in range(4)]
    src = tmp_path / "anim.gif"
    pics[0].save(src, save_all=True, append_images=pics[1:], duration=[100, 200, 100, 300], loop=0)
    with pytest.raises(OutputError, match=r"out\.gif: GIF holds 256 colours.*\.apng.*\.webp"):
        check_output(tmp_path / "out.gif", "gif")
    with Upscaler(near_identity_model(2), device="cpu") as up:
        # no --codec: each container's usual encoder
        for name, codec in (("out.webm", "vp9"), ("out.apng", "apng"), ("out.webp", "webp_anim"), ("out.mkv", "h264")):
            result = upscale_video(src, tmp_path / name, upscaler=up)
            assert result.frames == 4
            with av.open(str(tmp_path / name)) as c:
                assert c.streams.video[0].codec_context.name == codec, name
                frames = list(c.decode(video=0))
            if codec != "webp_anim":  # FFmpeg's webp demuxer reads an animation as one picture
                assert [round(float(f.time), 2) for f in frames] == [0.0, 0.1, 0.3, 0.4], name
            assert (frames[0].width, frames[0].height) == (64, 48)
    # an encoder asked for is kept, and refused where the container cannot hold it
    with pytest.raises(OutputError, match=r"the \.webm container cannot hold libx264 video"):
        check_output(tmp_path / "x.webm", "libx264")


def _gifs(tmp_path: Path) -> tuple[Path, Path]:
    """(an opaque animated GIF whose later frames keep unchanged pixels through a transparent index, as Pillow
    writes them; one whose top-left 8×8 is see-through on every frame)."""
    from PIL import Image

    opaque = [Image.fromarray(np.full((24, 32, 3), 40 * i, np.uint8)) for i in range(3)]
    opaque[1].paste((200, 10, 10), (0, 0, 8, 8))
    opaque[0].save(tmp_path / "opaque.gif", save_all=True, append_images=opaque[1:], duration=100, loop=0)
    clear = []
    for i in range(3):
        a = np.zeros((24, 32, 4), np.uint8)
        a[..., 0], a[..., 3] = 100 + 40 * i, 255
        a[:8, :8, 3] = 0
        clear.append(Image.fromarray(a, "RGBA"))
    clear[0].save(tmp_path / "clear.gif", save_all=True, append_images=clear[1:], duration=100, loop=0, disposal=2)
    return tmp_path / "opaque.gif", tmp_path / "clear.gif"


def _alpha_min(path: Path, decoder: str | None = None) -> int:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        if decoder is None:
            return min(int(f.to_ndarray(format="rgba")[..., 3].min()) for f in c.decode(s))
        dec = av.CodecContext.create(decoder, "r")  # libvpx's own decoder reads VP9's alpha (FFmpeg's vp9 does not)
        return min(int(f.to_ndarray(format="rgba")[..., 3].min()) for p in c.demux(s) for f in dec.decode(p))


def test_gif_alpha_is_alpha_only_when_something_is_see_through(tmp_path):
    """FFmpeg decodes every GIF as bgra. An opaque one into .webm said "the alpha channel is dropped ... use --codec
    ffv1" (which WebM cannot hold): its alpha is filler (told from the file's blocks, not by decoding it twice), and
    nothing is said. A transparent one into .webm was written gbrp, its alpha lost: VP9 in WebM carries it
    (yuva420p). Into .mp4 the alpha is dropped, and the advice names an output that holds it."""
    from esrgan_video.pipeline import upscale_video
    from esrgan_video.video.probe import gif_transparent

    opaque, clear = _gifs(tmp_path)
    assert (_alpha_min(opaque), _alpha_min(clear)) == (255, 0)  # as FFmpeg decodes them
    assert (gif_transparent(opaque), gif_transparent(clear), gif_transparent(tmp_path / "none.gif")) == \
        (False, True, None)
    with Upscaler(near_identity_model(2), device="cpu") as up:
        said: list[str] = []
        upscale_video(opaque, tmp_path / "o.webm", upscaler=up, notice=said.append)
        with av.open(str(tmp_path / "o.webm")) as c:
            assert c.streams.video[0].codec_context.pix_fmt == "gbrp"
        assert not [s for s in said if "alpha" in s or "ffv1" in s], said
        said.clear()
        upscale_video(clear, tmp_path / "c.webm", upscaler=up, notice=said.append)
        with av.open(str(tmp_path / "c.webm")) as c:
            assert c.streams.video[0].metadata.get("alpha_mode") == "1"
        assert _alpha_min(tmp_path / "c.webm", "libvpx-vp9") == 0
        assert said == ["libvpx-vp9 cannot encode 8-bit RGB (bgra); writing yuva420p (8-bit YUV 4:2:0) instead; write "
                        "a .mkv output with --codec ffv1 (WebM holds VP8, VP9 and AV1 only) to keep it"], said
        said.clear()
        upscale_video(clear, tmp_path / "c.mp4", upscaler=up, notice=said.append)
        dropped = [s for s in said if "alpha channel is dropped" in s]
        assert len(dropped) == 1 and dropped[0].endswith(
            "write a .mkv output with --codec ffv1 (or a .mov with --codec prores_ks --pix-fmt yuva444p10le) to keep it")
