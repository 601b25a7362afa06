"""A VP8/VP9 WebM with an alpha track (Matroska's AlphaMode 1, the alpha in BlockAdditional) is read with its alpha.

FFmpeg's native vp8/vp9 decoders ignore the alpha (yuv420p); the reader decodes such a stream with libvpx
(``probe.video_decoder``), which gives yuva420p, and the CLI keeps it where the output can. An opaque VP9 stream stays
on the native decoder.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from esrgan_video.testing import run_cli
from esrgan_video.video.probe import video_decoder
from esrgan_video.video.reader import open_input

W, H, N = 64, 48, 8


def _alpha(k: int) -> np.ndarray:
    """A gradient alpha: 0 at the top to 235 at the bottom, moving a little with the frame."""
    return np.tile((np.arange(H) * 5 + k)[:, None], (1, W)).clip(0, 255).astype(np.uint8)


def _write(path: Path, codec: str, pix_fmt: str) -> Path:
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=24)
        s.width, s.height, s.pix_fmt = W, H, pix_fmt
        s.codec_context.gop_size = 4  # keyframes at 0, 4: a seek has somewhere to land
        if codec == "libvpx" and pix_fmt == "yuva420p":
            s.options = {"auto-alt-ref": "0"}  # libvpx's VP8 encodes no alpha with alt-ref frames
        for k in range(N):
            f = av.VideoFrame(W, H, pix_fmt)
            for i, p in enumerate(f.planes):
                a = np.full((p.height, p.line_size), 128, np.uint8)
                if i == 0:
                    a[:, :p.width] = np.tile(np.arange(p.width) * 3 + 2 * k, (p.height, 1))
                elif i == 3:
                    a[:, :p.width] = _alpha(k)
                p.update(a.tobytes())
            for pkt in s.encode(f):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    return path


def _libvpx_frames(path: Path, decoder: str) -> list[av.VideoFrame]:
    """The file's frames as the libvpx decoder gives them from its packets (the reference)."""
    with av.open(str(path)) as c:
        st = c.streams.video[0]
        ctx = av.CodecContext.create(decoder, "r")
        return [f for pkt in c.demux(st) for f in ctx.decode(pkt)]


def _planes(frame: av.VideoFrame) -> list[np.ndarray]:
    return [np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)[:, :p.width].copy() for p in frame.planes]


@pytest.mark.parametrize("codec,decoder", [("libvpx-vp9", "libvpx-vp9"), ("libvpx", "libvpx")])
def test_alpha_webm_reads_as_yuva420p_with_libvpx_planes(tmp_path, codec, decoder):
    src = _write(tmp_path / f"alpha_{codec}.webm", codec, "yuva420p")
    with av.open(str(src)) as c:  # the file is what the defect is about: tagged, and FFmpeg's own decoder drops it
        st = c.streams.video[0]
        assert st.metadata.get("alpha_mode") == "1"
        assert next(c.decode(st)).format.name == "yuv420p"
    ref = _libvpx_frames(src, decoder)
    assert len(ref) == N and ref[0].format.name == "yuva420p"
    with open_input(src) as inp:
        assert (inp.info.pix_fmt, inp.info.source_pix_fmt, inp.info.codec) == ("yuva420p", None, codec.replace(
            "libvpx-vp9", "vp9").replace("libvpx", "vp8"))
        assert "alpha_mode" not in inp.info.stream_metadata  # the muxer writes it from the format, never copied
        run = inp.frames()
        frames = list(run)
        assert run.stats.lost_frames == 0 and not run.stats.truncated
        assert [f.pts for f in frames] == [f.pts for f in ref]
        for got, want in zip(frames, ref):
            assert len(got.planes) == 4
            for g, w in zip(got.planes, _planes(want)):
                assert np.array_equal(g, w)
        assert np.abs(frames[0].planes[3].astype(int) - _alpha(0)).max() <= 8  # the gradient, not 255
        run = inp.frames(start=5)  # a seek (to the keyframe at 4) decodes with libvpx too
        later = list(run)
        assert run.stats.seeked and [f.index for f in later] == [5, 6, 7]
        for got, want in zip(later, ref[5:]):
            assert np.array_equal(got.planes[3], _planes(want)[3])


def test_opaque_vp9_stays_on_the_native_decoder(tmp_path):
    src = _write(tmp_path / "opaque.webm", "libvpx-vp9", "yuv420p")
    with av.open(str(src)) as c:
        st = c.streams.video[0]
        assert "alpha_mode" not in st.metadata
        assert video_decoder(st) is st.codec_context and st.codec_context.name == "vp9"
    with open_input(src) as inp:
        assert inp.info.pix_fmt == "yuv420p"
        run = inp.frames()
        assert len(list(run)) == N and run.stats.lost_frames == 0


def _block_mean(a: np.ndarray, s: int) -> np.ndarray:
    return a.reshape(a.shape[0] // s, s, a.shape[1] // s, s).astype(float).mean(axis=(1, 3))


@pytest.mark.parametrize("ext,args", [(".webm", ()), (".mkv", ("--codec", "ffv1"))])
def test_cli_keeps_the_alpha(tmp_path, near_identity_file, capfd, ext, args):
    src = _write(tmp_path / "alpha.webm", "libvpx-vp9", "yuva420p")
    want = [_planes(f)[3] for f in _libvpx_frames(src, "libvpx-vp9")]
    dst = tmp_path / f"out{ext}"
    p = run_cli(capfd, src, dst, "--model", near_identity_file(2), "--device", "cpu", *args, "-q")
    assert p.returncode == 0, p.stderr
    with av.open(str(dst)) as c:
        st = c.streams.video[0]
        decoder = {"vp9": "libvpx-vp9"}.get(st.codec_context.name)
        ctx = av.CodecContext.create(decoder, "r") if decoder else st.codec_context
        out = [f for pkt in c.demux(st) for f in ctx.decode(pkt)]
    assert len(out) == N
    assert (out[0].format.name, out[0].width, out[0].height) == ("yuva420p", 2 * W, 2 * H)
    for f, a in zip(out, want):  # the alpha, upscaled: each 2x2 block averages to the input's pixel
        assert np.abs(_block_mean(_planes(f)[3], 2) - a).mean() < 3


def test_an_opaque_output_of_an_alpha_input_is_not_tagged_alpha(tmp_path, near_identity_file, capfd):
    """``alpha_mode`` is the muxer's to write (from a yuva420p stream): copied from the input it marked an opaque
    output as having an alpha track (ALPHA_MODE 1 on a yuv420p VP9 stream)."""
    src = _write(tmp_path / "alpha.webm", "libvpx-vp9", "yuva420p")
    dst = tmp_path / "opaque.webm"
    p = run_cli(capfd, src, dst, "--model", near_identity_file(2), "--device", "cpu", "--pix-fmt", "yuv420p", "-q")
    assert p.returncode == 0, p.stderr
    with av.open(str(dst)) as c:
        st = c.streams.video[0]
        assert st.codec_context.pix_fmt == "yuv420p"
        assert not any(k.lower() == "alpha_mode" for k in st.metadata), st.metadata
