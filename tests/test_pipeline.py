"""The streaming core end to end: real media made with PyAV, tiny near-identity models.

Each test checks a promise of the "nothing lost" list: frames, timestamps, other streams,
colour tags, bit depth, and that the pipeline adds no error of its own.
"""

from __future__ import annotations

import threading
import warnings
from fractions import Fraction

import av
import numpy as np
import pytest
import torch

import media
from esrgan_video.frames import color
from esrgan_video.errors import InputError, OutputError
from esrgan_video.pipeline import upscale_video
from esrgan_video.frames.pixel_formats import pixel_format
from esrgan_video.testing import decoded_planes, near_identity_model, psnr
from esrgan_video.upscaler import Upscaler


@pytest.fixture(scope="module")
def up4():
    with Upscaler(near_identity_model(4), device="cpu") as up:
        yield up


@pytest.fixture(scope="module")
def up1():
    with Upscaler(near_identity_model(1), device="cpu") as up:
        yield up


def decode(path):
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        frames = list(c.decode(s))
        return s, frames


def model_on_planes(up, frame: av.VideoFrame, spec) -> torch.Tensor:
    """The reference: decoded input planes → RGB → model, with no pipeline in between."""
    fmt = pixel_format(frame.format.name)
    planes = [torch.from_numpy(p) for p in decoded_planes(frame)]
    rgb = color.planes_to_rgb(planes, fmt, spec)
    with torch.inference_mode():
        return up.model(rgb)


@pytest.mark.parametrize(
    "codec,pix_fmt,ext,options",
    [("ffv1", "gbrp10le", ".mkv", {}), ("ffv1", "yuv444p", ".mkv", {}), ("libx264", "yuv444p", ".mp4", {"qp": "0"})],
)
def test_pipeline_adds_no_error_of_its_own(tmp_path, up4, codec, pix_fmt, ext, options):
    src = media.make_clip(tmp_path / f"in{ext}", codec=codec, pix_fmt=pix_fmt, size=(40, 30), frames=4,
                          options=options, matrix=None if pix_fmt.startswith("gbrp") else 1, full_range=False if not pix_fmt.startswith("gbrp") else None)
    dst = tmp_path / f"out{ext}"
    r = upscale_video(src, dst, upscaler=up4, codec=codec, encoder_opts=options)
    assert r.frames == 4
    _, fin = decode(src)
    s_out, fout = decode(dst)
    assert (s_out.codec_context.width, s_out.codec_context.height) == (160, 120)
    assert fout[0].format.name == pix_fmt
    in_fmt = pixel_format(pix_fmt)
    spec = color.ColorSpec(matrix=0 if pix_fmt.startswith("gbrp") else 1).resolved(40, 30, in_fmt)
    for a, b in zip(fin, fout):
        ref = model_on_planes(up4, a, spec)
        got = color.planes_to_rgb([torch.from_numpy(p) for p in decoded_planes(b)], pixel_format(b.format.name), spec)
        p = psnr(ref, got, data_range=1.0)
        assert p >= 45, f"{codec}/{pix_fmt}: PSNR {p:.1f} dB against the model applied directly"


def test_every_frame_and_vfr_timestamp_kept_with_audio_and_subtitles(tmp_path, up4):
    pts = [0, 40, 90, 100, 250, 260, 400]
    src = media.make_clip(tmp_path / "vfr.mkv", pts=pts, time_base=Fraction(1, 1000), size=(32, 24),
                          audio=[media.AudioTrack(), media.AudioTrack(codec="flac", layout="mono", language="fra")],
                          subtitles=[media.SubtitleTrack("ass"), media.SubtitleTrack("subrip", language="eng")],
                          chapters=[media.Chapter(0, 0.2, "Intro"), media.Chapter(0.2, 0.45, "Main")],
                          metadata={"title": "vfr test"})
    dst = tmp_path / "out.mkv"
    r = upscale_video(src, dst, upscaler=up4)
    assert r.frames == len(pts)
    s, frames = decode(dst)
    assert [int(f.pts * f.time_base * 1000) for f in frames] == pts
    with av.open(str(src)) as a, av.open(str(dst)) as b:
        assert [x.type for x in a.streams] == [x.type for x in b.streams]
        assert b.metadata.get("title") == "vfr test"
        for sa, sb in zip(a.streams, b.streams):
            if sa.type in ("audio", "subtitle"):
                assert sa.codec_context.name == sb.codec_context.name
                assert sa.metadata.get("language") == sb.metadata.get("language")
        for sa, sb in zip(a.streams, b.streams):
            if sa.type not in ("audio", "subtitle"):
                continue
            with av.open(str(src)) as a2, av.open(str(dst)) as b2:
                pa = [bytes(p) for p in a2.demux(a2.streams[sa.index]) if p.size]
                pb = [bytes(p) for p in b2.demux(b2.streams[sb.index]) if p.size]
            assert pa == pb, f"{sa.type} stream {sa.index} not copied byte for byte"
        assert [c["metadata"].get("title") for c in b.chapters()] == ["Intro", "Main"]


def test_ten_bit_hevc_bt2020_stays_ten_bit_with_tags(tmp_path, up4):
    src = media.make_clip(tmp_path / "in.mkv", codec="libx265", pix_fmt="yuv420p10le", size=(32, 24), frames=3,
                          matrix=9, primaries=9, transfer=14, options={"x265-params": "log-level=error"})
    dst = tmp_path / "out.mkv"
    upscale_video(src, dst, upscaler=up4, codec="libx265", encoder_opts={"x265-params": "log-level=error"})
    s, frames = decode(dst)
    assert frames[0].format.name == "yuv420p10le"
    cc = s.codec_context
    assert (cc.colorspace, cc.color_primaries, cc.color_trc) == (9, 9, 14)
    assert len(frames) == 3


def test_prores_422_10bit_mov(tmp_path, up4):
    src = media.make_clip(tmp_path / "in.mov", codec="prores_ks", pix_fmt="yuv422p10le", size=(32, 24), frames=3)
    dst = tmp_path / "out.mov"
    upscale_video(src, dst, upscaler=up4, codec="prores_ks")
    s, frames = decode(dst)
    assert frames[0].format.name == "yuv422p10le"
    assert (frames[0].width, frames[0].height) == (128, 96)


def test_odd_size_444_and_full_range(tmp_path, up4):
    src = media.make_clip(tmp_path / "in.mkv", codec="libx264", pix_fmt="yuv444p", size=(33, 21), frames=2,
                          matrix=1, full_range=True, options={"qp": "0"})
    dst = tmp_path / "out.mkv"
    upscale_video(src, dst, upscaler=up4, encoder_opts={"qp": "0"})
    s, frames = decode(dst)
    assert (frames[0].width, frames[0].height) == (132, 84)
    assert s.codec_context.color_range == 2  # full range kept
    assert frames[0].format.name in ("yuv444p", "yuvj444p")  # FFmpeg names full-range 4:4:4 yuvj444p


def test_scale_and_size_round_to_the_pixel_format(tmp_path, up4):
    src = media.make_clip(tmp_path / "in.mp4", size=(34, 26), frames=2)
    dst = tmp_path / "out.mp4"
    upscale_video(src, dst, upscaler=up4, scale=3)
    _, frames = decode(dst)
    assert (frames[0].width, frames[0].height) == (102, 78)
    upscale_video(src, dst, upscaler=up4, size=(101, None), overwrite=True)
    _, frames = decode(dst)
    assert frames[0].width == 102 and frames[0].height % 2 == 0  # 4:2:0 needs even sizes


def test_resize_after_model_matches_reference(tmp_path, up4):
    """--scale 2 with a x4 model: the model's output, resized on the device with an antialiased filter."""
    src = media.make_clip(tmp_path / "in.mkv", codec="ffv1", pix_fmt="gbrp16le", size=(24, 16), frames=1)
    dst = tmp_path / "out.mkv"
    upscale_video(src, dst, upscaler=up4, codec="ffv1", scale=2)
    _, fin = decode(src)
    _, fout = decode(dst)
    spec = color.ColorSpec(matrix=0).resolved(24, 16, pixel_format("gbrp16le"))
    ref = torch.nn.functional.interpolate(model_on_planes(up4, fin[0], spec), size=(32, 48), mode="bicubic",
                                          antialias=True, align_corners=False).clamp(0, 1)
    got = color.planes_to_rgb([torch.from_numpy(p) for p in decoded_planes(fout[0])], pixel_format("gbrp16le"), spec)
    assert (ref - got).abs().max().item() <= 1 / 65535 + 1e-6


def test_trim_keeps_the_range_and_shifts_audio(tmp_path, up4):
    src = media.make_clip(tmp_path / "in.mkv", size=(32, 24), frames=12, fps=25, audio=[media.AudioTrack()])
    dst = tmp_path / "out.mkv"
    r = upscale_video(src, dst, upscaler=up4, start=Fraction(4, 25), end=Fraction(10, 25))
    assert r.frames == 6
    _, frames = decode(dst)
    assert len(frames) == 6
    assert frames[0].time == pytest.approx(0, abs=0.002)
    with av.open(str(dst)) as c:
        first_audio = next(p for p in c.demux(audio=0) if p.pts is not None)
        assert float(first_audio.pts * first_audio.time_base) < 0.05
    r = upscale_video(src, dst, upscaler=up4, start=2, end=5, overwrite=True)
    assert r.frames == 3


def test_one_frame_clip(tmp_path, up4):
    src = media.make_clip(tmp_path / "one.mp4", size=(32, 24), frames=1)
    r = upscale_video(src, tmp_path / "out.mp4", upscaler=up4)
    assert r.frames == 1
    assert len(decode(tmp_path / "out.mp4")[1]) == 1


def test_corrupt_packets_skip_frames_and_keep_timestamps(tmp_path, up4):
    good = media.make_clip(tmp_path / "good.mkv", codec="ffv1", pix_fmt="yuv420p", size=(32, 24), frames=10)
    bad = media.make_corrupt(good, tmp_path / "bad.mkv", frames=[4])
    dst = tmp_path / "out.mkv"
    notices = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # one channel for notices: no Python warning (#14.8)
        r = upscale_video(bad, dst, upscaler=up4, codec="ffv1", notice=notices.append)
    assert r.lost_frames >= 1 and r.frames == 10 - r.lost_frames
    assert [n for n in notices if "could not be decoded" in n] == [r.damage]  # said once
    assert r.damaged and not r.truncated
    _, fin = decode(good)
    _, fout = decode(dst)
    kept = {f.pts for f in fout}
    assert kept <= {f.pts for f in fin} and len(kept) == r.frames


def test_bad_inputs_raise_one_line_errors(tmp_path, up4):
    with pytest.raises(InputError, match="missing.mp4"):
        upscale_video(tmp_path / "missing.mp4", tmp_path / "o.mp4", upscaler=up4)
    with pytest.raises(InputError, match="empty"):
        upscale_video(media.make_empty(tmp_path / "e.mp4"), tmp_path / "o.mp4", upscaler=up4)
    with pytest.raises(InputError):
        upscale_video(media.make_not_media(tmp_path / "n.mp4"), tmp_path / "o.mp4", upscaler=up4)
    with pytest.raises(InputError, match="no video"):
        upscale_video(media.make_audio_only(tmp_path / "a.m4a"), tmp_path / "o.mp4", upscaler=up4)
    assert not (tmp_path / "o.mp4").exists()
    src = media.make_clip(tmp_path / "in.mp4", size=(32, 24), frames=2)
    with pytest.raises(OutputError):
        upscale_video(src, src, upscaler=up4, overwrite=True)


def test_failure_midway_leaves_no_output(tmp_path):
    """A model that goes non-finite on the third frame: nothing at dst, no temp file left."""
    model = near_identity_model(4)
    src = media.make_clip(tmp_path / "in.mp4", size=(32, 24), frames=6)
    calls = {"n": 0}
    orig = model.forward

    def flaky(x):
        calls["n"] += 1
        y = orig(x)
        return y * float("nan") if calls["n"] == 3 else y

    model.forward = flaky
    model.clamp = True
    dst = tmp_path / "out.mp4"
    with Upscaler(model, device="cpu", backend="torch") as up, pytest.raises(Exception) as ei:
        upscale_video(src, dst, upscaler=up)
    assert "non-finite" in str(ei.value) or "NaN" in str(ei.value)
    assert not dst.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["in.mp4"]


def test_real_clip_with_six_channel_audio(tmp_path, sample_clip_path, up1):
    """Big Buck Bunny (1280×720, 6-channel AAC): 0.2 s through a ×1 model keeps frames, audio and size."""
    dst = tmp_path / "bbb.mp4"
    r = upscale_video(sample_clip_path, dst, upscaler=up1, end=Fraction(1, 5), preset="ultrafast")
    assert r.frames == 5
    with av.open(str(dst)) as c:
        v = c.streams.video[0]
        assert (v.codec_context.width, v.codec_context.height) == (1280, 720)
        a = c.streams.audio[0]
        assert a.codec_context.channels == 6
        assert sum(1 for _ in c.decode(v)) == 5


def test_upscaler_is_thread_safe(up4):
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (20, 28, 3), dtype=np.uint8) for _ in range(6)]
    expected = [up4.upscale(f) for f in frames]
    results = [None] * len(frames)

    def work(i):
        results[i] = up4.upscale(frames[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(frames))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for e, r in zip(expected, results):
        assert np.array_equal(e, r)


def test_upscaler_kinds(up4):
    x8 = np.full((10, 12, 3), 200, np.uint8)
    y8 = up4.upscale(x8)
    assert y8.dtype == np.uint8 and y8.shape == (40, 48, 3)
    assert abs(int(y8.mean()) - 200) < 12  # near-identity: an upscaled copy, not black
    x16 = x8.astype(np.uint16) * 257
    y16 = up4.upscale(x16)
    assert y16.dtype == np.uint16 and abs(int(y16.mean()) - 200 * 257) < 12 * 257
    xf = torch.rand(2, 3, 10, 12)
    yf = up4.upscale(xf)
    assert yf.shape == (2, 3, 40, 48) and yf.dtype == torch.float32
    with pytest.raises(InputError):  # (an H×W grey array is upscaled as grey since 7c02454: tests/test_api_user.py)
        up4.upscale(np.zeros((10, 12, 2), np.uint8))


def test_rgb_input_to_yuv_codec_and_back(tmp_path, up4):
    """RGB FFV1 into libx264 (YUV only) gets a YUV matrix with a notice; YUV into RGB FFV1 gets the identity."""
    src = media.make_clip(tmp_path / "rgb.mkv", codec="ffv1", pix_fmt="gbrp10le", size=(32, 24), frames=2)
    notices = []
    upscale_video(src, tmp_path / "o.mp4", upscaler=up4, notice=notices.append)
    assert any("libx264" in n and "ffv1" in n for n in notices)
    s, frames = decode(tmp_path / "o.mp4")
    assert frames[0].format.name == "yuv444p10le"
    assert s.codec_context.colorspace in (1, 5, 6)
    src = media.make_clip(tmp_path / "yuv.mkv", codec="ffv1", pix_fmt="yuv444p10le", size=(32, 24), frames=2, matrix=1)
    upscale_video(src, tmp_path / "o.mkv", upscaler=up4, codec="ffv1", pix_fmt="gbrp10le")
    _, fin = decode(src)
    _, fout = decode(tmp_path / "o.mkv")
    assert fout[0].format.name == "gbrp10le"
    spec = color.ColorSpec(matrix=1).resolved(32, 24, pixel_format("yuv444p10le"))
    ref = model_on_planes(up4, fin[0], spec)
    got = color.planes_to_rgb([torch.from_numpy(p) for p in decoded_planes(fout[0])], pixel_format("gbrp10le"),
                              color.ColorSpec(matrix=0).resolved(128, 96, pixel_format("gbrp10le")))
    assert psnr(ref, got, data_range=1.0) >= 45


def test_alpha_channel_upscaled_and_kept(tmp_path, up4):
    src = media.make_clip(tmp_path / "a.mkv", codec="ffv1", pix_fmt="yuva420p", size=(32, 24), frames=2)
    upscale_video(src, tmp_path / "o.mkv", upscaler=up4, codec="ffv1")
    _, fin = decode(src)
    _, fout = decode(tmp_path / "o.mkv")
    assert fout[0].format.name == "yuva420p"
    a_in = decoded_planes(fin[0])[3].astype(np.float64)
    a_out = decoded_planes(fout[0])[3].astype(np.float64)
    assert a_out.shape == (96, 128)
    # near-identity model: the alpha plane is an upscaled copy of the input's
    assert np.abs(a_out[1::4, 1::4] - a_in).mean() < 8
    notices = []
    upscale_video(src, tmp_path / "o.mp4", upscaler=up4, notice=notices.append)
    assert any("alpha" in n for n in notices)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (torch.cuda.is_available() is False)")
@pytest.mark.parametrize("streams", [1, 3])
def test_cuda_streaming_matches_the_cpu(tmp_path, streams):
    """The GPU path (pinned uploads, per-worker CUDA streams, frames in flight) gives the CPU's frames
    (fp16 on the GPU vs fp32 on the CPU: ≥ 40 dB), in order, with every timestamp."""
    src = media.make_clip(tmp_path / "in.mkv", codec="ffv1", pix_fmt="yuv444p10le", size=(48, 32), frames=9,
                          pts=[0, 40, 90, 100, 250, 260, 400, 410, 500], audio=[media.AudioTrack()])
    model = near_identity_model(4)
    with Upscaler(model, device="cpu") as cpu:
        upscale_video(src, tmp_path / "cpu.mkv", upscaler=cpu, codec="ffv1")
    with Upscaler(near_identity_model(4), device="cuda", streams=streams) as gpu:
        r = upscale_video(src, tmp_path / "gpu.mkv", upscaler=gpu, codec="ffv1")
    assert r.frames == 9 and r.backend in ("torch", "tensorrt")
    _, fc = decode(tmp_path / "cpu.mkv")
    _, fg = decode(tmp_path / "gpu.mkv")
    assert [f.pts for f in fc] == [f.pts for f in fg]
    for a, b in zip(fc, fg):
        for pa, pb in zip(decoded_planes(a), decoded_planes(b)):
            assert psnr(pa, pb, data_range=1023.0) >= 40


def test_a_backend_that_fails_to_open_fails_before_the_output_is_started(tmp_path, monkeypatch):
    """The backend for the frame size (a TensorRT build, an ONNX export) is made before the output file is opened:
    when it fails, no partial file was ever started and nothing is left."""
    from esrgan_video import upscaler as upscaler_mod
    from esrgan_video.errors import BackendError
    from esrgan_video.runtime.base import CommonOptions
    from esrgan_video.runtime.torch_backend import TorchBackend

    src = media.make_clip(tmp_path / "in.mp4", size=(32, 24), frames=3)
    dst = tmp_path / "out" / "o.mkv"
    dst.parent.mkdir()
    opened_with: list[list[str]] = []

    class BuildFails(TorchBackend):
        def open(self):
            opened_with.append(sorted(p.name for p in dst.parent.iterdir()))
            raise BackendError("engine build failed: out of memory (as a TensorRT build can)")

    cpu32 = CommonOptions(device=torch.device("cpu"), precision="fp32")
    monkeypatch.setattr(upscaler_mod, "make_backend", lambda model, **kw: BuildFails(model, cpu32))
    with Upscaler(near_identity_model(4), device="cpu") as up, pytest.raises(BackendError, match="engine build"):
        upscale_video(src, dst, upscaler=up)
    assert opened_with == [[]]  # open() ran once, with nothing in the output folder yet
    assert list(dst.parent.iterdir()) == []


def test_orchestrator_keeps_order_and_bounds_frames_in_flight(tmp_path, up4):
    """Frames come back in order with workers that finish them out of order (three workers; each frame of a group
    of three waits less than the one before it), and no more than the bounded deque's depth are ever decoded ahead
    of the encoder."""
    import time

    from esrgan_video import pipeline

    src = media.make_clip(tmp_path / "in.mkv", codec="ffv1", pix_fmt="yuv444p", size=(16, 12), frames=12)
    ref = upscale_video(src, tmp_path / "ref.mkv", upscaler=up4, codec="ffv1", reuse="off")
    assert ref.frames == 12
    seen = {"in_flight": 0, "max": 0}
    finished: list[int] = []
    lock = threading.Lock()
    real_write = pipeline.OutputVideo.write

    def counting_write(self, planes, pts, **kw):
        with lock:
            seen["in_flight"] -= 1
        return real_write(self, planes, pts, **kw)

    real_call = pipeline.FrameTransform.__call__

    def out_of_order(self, planes, *, seq=None, **kw):
        with lock:
            seen["in_flight"] += 1
            seen["max"] = max(seen["max"], seen["in_flight"])
        time.sleep(0.05 * (2 - seq % 3))
        out = real_call(self, planes, seq=seq, **kw)
        with lock:
            finished.append(seq)
        return out

    class ThreeWorkers(pipeline.FrameTransform):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.slots = 3  # the orchestrator runs one worker thread per slot

    with pytest.MonkeyPatch.context() as m:
        m.setattr(pipeline.OutputVideo, "write", counting_write)
        m.setattr(pipeline.FrameTransform, "__call__", out_of_order)
        m.setattr(pipeline, "FrameTransform", ThreeWorkers)
        upscale_video(src, tmp_path / "o.mkv", upscaler=up4, codec="ffv1", reuse="off")
    assert sorted(finished) == list(range(12)) and finished != sorted(finished)  # they did finish out of order
    assert 1 <= seen["max"] <= 2 * 3 + 2  # depth = 2 × workers + 2
    _, a = decode(tmp_path / "ref.mkv")
    _, b = decode(tmp_path / "o.mkv")
    assert [f.pts for f in a] == [f.pts for f in b]
    assert all(np.array_equal(x.to_ndarray(), y.to_ndarray()) for x, y in zip(a, b))
