"""The frame transform: the one per-frame path (upload → to-RGB → model → resize → from-RGB → download).

The oracle is the same chain written out with the colour module, the Upscaler's ``upscale_tensor`` and
``resize_rgb`` — what every face did by hand before the transform existed — so a transform that skipped,
reordered or re-implemented a step differs bit for bit.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

import media
from esrgan_video.frames import color
from esrgan_video.frames.pixel_formats import PixelFormat, pixel_format
from esrgan_video.frames.sizing import resize_rgb
from esrgan_video.frames.transform import FrameFormat, FrameTransform, hand_over
from esrgan_video.testing import near_identity_model
from esrgan_video.upscaler import Upscaler


@pytest.fixture(scope="module")
def up4():
    with Upscaler(near_identity_model(4), device="cpu") as up:
        yield up


def fmt_of(name: str, width: int, height: int, **tags) -> FrameFormat:
    f = pixel_format(name)
    return FrameFormat(f, color.ColorSpec(**tags).resolved(width, height, f))


def by_hand(up, planes, src: FrameFormat, dst: FrameFormat, out_size, *, alpha=False):
    """The chain the faces used to write themselves."""
    with torch.inference_mode():
        t = [torch.from_numpy(np.ascontiguousarray(p)) for p in planes]
        rgb = color.planes_to_rgb(t, src.pixel_format, src.color)
        y = resize_rgb(up.upscale_tensor(rgb), *out_size)
        a = None
        if alpha:
            i = next(i for i, n in enumerate(src.pixel_format.planes) if "A" in n)
            a = color.alpha_to_float(t[i], src.pixel_format)
            a = resize_rgb(up.upscale_tensor(a.expand(-1, 3, -1, -1)).mean(1, keepdim=True), *out_size)
        return [p.numpy() for p in color.rgb_to_planes(y, dst.pixel_format, dst.color, alpha=a)]


@pytest.mark.parametrize("name", ["yuv420p", "yuv422p10le", "gbrp16le", "yuv420p12le", "gray10le", "rgb24"])
def test_planes_in_planes_out_equal_the_chain_by_hand(up4, name):
    w, h = 20, 14
    fmt = fmt_of(name, w, h)
    planes = media.frame_planes(name, (w, h), 3)
    tr = FrameTransform(up4, src=fmt, dst=fmt, in_size=(w, h), out_size=(w * 4, h * 4))
    got = tr(planes)
    want = by_hand(up4, planes, fmt, fmt, (w * 4, h * 4))
    assert [p.shape for p in got] == [p.shape for p in want]
    for g, e in zip(got, want):
        assert g.dtype == e.dtype and np.array_equal(g, e)


def test_other_output_format_and_size(up4):
    """yuv420p in, yuv444p10le at 3× out: colour of the output side, the resize after the model."""
    w, h = 18, 12
    src = fmt_of("yuv420p", w, h, matrix=1)
    dst = fmt_of("yuv444p10le", w * 3, h * 3, matrix=1)
    planes = media.frame_planes("yuv420p", (w, h), 0)
    got = FrameTransform(up4, src=src, dst=dst, out_size=(w * 3, h * 3))(planes)
    want = by_hand(up4, planes, src, dst, (w * 3, h * 3))
    assert all(np.array_equal(g, e) for g, e in zip(got, want))
    assert got[0].shape == (h * 3, w * 3) and got[0].dtype == np.uint16


def test_alpha_is_upscaled_once_beside_the_colour(up4):
    w, h = 16, 12
    fmt = fmt_of("yuva420p", w, h)
    planes = media.frame_planes("yuva420p", (w, h), 1)
    got = FrameTransform(up4, src=fmt, dst=fmt)(planes)
    want = by_hand(up4, planes, fmt, fmt, (w * 4, h * 4), alpha=True)
    assert all(np.array_equal(g, e) for g, e in zip(got, want))
    # dropped when the output has no alpha plane
    out = FrameTransform(up4, src=fmt, dst=fmt_of("yuv420p", w * 4, h * 4))(planes)
    assert len(out) == 3


def test_packed_rgba_keeps_its_alpha(up4):
    w, h = 10, 8
    fmt = fmt_of("rgba", w, h)
    rng = np.random.default_rng(1)
    plane = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
    plane[..., 3] = 200
    (out,) = FrameTransform(up4, src=fmt, dst=fmt)([plane])
    assert out.shape == (h * 4, w * 4, 4)
    assert np.abs(out[..., 3].astype(int) - 200).max() <= 3  # near-identity model on a flat alpha


def test_float_rgb_planes_skip_the_colour_code(up4):
    rng = np.random.default_rng(2)
    planes = [rng.random((12, 16), dtype=np.float32) for _ in range(3)]
    tr = FrameTransform(up4, src=FrameFormat.float_rgb(), dst=FrameFormat.float_rgb())
    got = tr(planes)
    with torch.inference_mode():
        want = up4.upscale_tensor(torch.from_numpy(np.stack(planes))[None])[0].numpy()
    assert all(np.array_equal(g, e) for g, e in zip(got, want))
    half = FrameTransform(up4, src=FrameFormat.float_rgb(torch.float16), dst=FrameFormat.float_rgb(torch.float16))
    out = half([p.astype(np.float16) for p in planes])
    assert out[0].dtype == np.float16 and out[0].shape == (48, 64)



def test_float_rgb_with_alpha_upscales_the_fourth_plane_as_a_grey_image(up4):
    """VapourSynth's RGBS/RGBH with an ``_Alpha`` frame: a fourth float plane, upscaled and resized as the integer
    formats' alpha plane is; dropped for three-plane output, opaque (1.0) when the input has none."""
    rng = np.random.default_rng(3)
    planes = [rng.random((12, 16), dtype=np.float32) for _ in range(4)]
    rgba = FrameFormat.float_rgb(alpha=True)
    assert (rgba.planes, rgba.alpha, rgba.alpha_plane()) == (4, True, 3)
    got = FrameTransform(up4, src=rgba, dst=rgba, out_size=(40, 30))(planes)
    with torch.inference_mode():
        rgb = resize_rgb(up4.upscale_tensor(torch.from_numpy(np.stack(planes[:3]))[None]), 40, 30)[0]
        a = torch.from_numpy(planes[3])[None, None]
        a = resize_rgb(up4.upscale_tensor(a.expand(-1, 3, -1, -1)).mean(1, keepdim=True), 40, 30)[0]
    assert len(got) == 4 and all(np.array_equal(g, e) for g, e in zip(got, [*rgb.numpy(), a[0].numpy()]))
    dropped = FrameTransform(up4, src=rgba, dst=FrameFormat.float_rgb(), out_size=(40, 30))(planes)
    assert len(dropped) == 3 and all(np.array_equal(g, e) for g, e in zip(dropped, got))
    opaque = FrameTransform(up4, src=FrameFormat.float_rgb(), dst=rgba)(planes[:3])
    assert len(opaque) == 4 and np.all(opaque[3] == 1.0)
    with pytest.raises(ValueError, match="float_alpha is for float RGB"):
        FrameFormat(pixel_format("yuva420p"), color.ColorSpec().resolved(16, 12, pixel_format("yuva420p")),
                    float_alpha=True)

def test_read_only_strided_planes_as_vapoursynth_gives_them(up4):
    """VapourSynth hands out read-only views with padded rows; they are copied, never written."""
    w, h = 16, 12
    fmt = fmt_of("yuv444p", w, h)
    planes = media.frame_planes("yuv444p", (w, h), 2)
    views = []
    for p in planes:
        wide = np.zeros((h, w + 16), np.uint8)
        wide[:, :w] = p
        v = wide[:, :w]
        v.flags.writeable = False
        views.append(v)
    got = FrameTransform(up4, src=fmt, dst=fmt)(views)
    want = by_hand(up4, planes, fmt, fmt, (w * 4, h * 4))
    assert all(np.array_equal(g, e) for g, e in zip(got, want))


def test_batched_planes_and_device_tensors(up4):
    """Planes with a leading N axis give N frames; tensors on the transform's device give tensors."""
    w, h = 12, 10
    rgb_planar = PixelFormat("test:rgbp8", "rgb", 8, planes=("R", "G", "B"))
    fmt = FrameFormat(rgb_planar, color.ColorSpec().resolved(w, h, rgb_planar))
    x = torch.randint(0, 256, (2, 3, h, w), dtype=torch.uint8)
    tr = FrameTransform(up4, src=fmt, dst=fmt)
    out = tr(list(x.unbind(1)))
    assert all(isinstance(p, torch.Tensor) and p.shape == (2, h * 4, w * 4) for p in out)
    for i in range(2):
        one = tr([x[i, c].numpy() for c in range(3)])
        assert all(np.array_equal(out[c][i].numpy(), one[c]) for c in range(3))


def test_without_an_upscaler_it_is_colour_and_resize_only():
    w, h = 32, 24
    fmt = fmt_of("yuv420p", w, h)
    small = fmt_of("yuv420p", 16, 12)
    planes = media.frame_planes("yuv420p", (w, h), 0)
    got = FrameTransform(None, src=fmt, dst=small, out_size=(16, 12))(planes)
    rgb = color.planes_to_rgb([torch.from_numpy(p) for p in planes], fmt.pixel_format, fmt.color)
    want = color.rgb_to_planes(resize_rgb(rgb, 16, 12), small.pixel_format, small.color)
    assert all(np.array_equal(g, e.numpy()) for g, e in zip(got, want))


def test_concurrent_calls_give_the_serial_results(up4):
    w, h = 16, 12
    fmt = fmt_of("yuv420p", w, h)
    tr = FrameTransform(up4, src=fmt, dst=fmt)
    frames = [media.frame_planes("yuv420p", (w, h), i) for i in range(6)]
    serial = [tr(f) for f in frames]
    results = [None] * len(frames)

    def work(i):
        results[i] = tr(frames[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(frames))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a, b in zip(serial, results):
        assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_clock_receives_convert_and_infer(up4):
    seen: dict[str, float] = {}
    fmt = fmt_of("yuv420p", 16, 12)
    tr = FrameTransform(up4, src=fmt, dst=fmt, clock=lambda stage, dt: seen.__setitem__(stage, seen.get(stage, 0) + dt))
    tr(media.frame_planes("yuv420p", (16, 12), 0))
    assert set(seen) == {"convert", "infer"} and seen["infer"] > 0


def test_wrong_plane_count_is_refused(up4):
    fmt = fmt_of("yuv420p", 16, 12)
    with pytest.raises(ValueError, match="expected 3 planes"):
        FrameTransform(up4, src=fmt, dst=fmt)([np.zeros((12, 16), np.uint8)])


class _FakeStream:
    def __init__(self, name, log):
        self.name, self.log = name, log

    def wait_stream(self, other):
        self.log.append(("wait", self.name, other.name))


class _FakeTensor:
    def __init__(self, name, log):
        self.name, self.log = name, log

    def record_stream(self, stream):
        self.log.append(("record", self.name, stream.name))


def test_hand_over_orders_the_consumer_and_records_the_tensors_on_it():
    """The ordering rule of #15.1, as pure logic: the consumer waits for the producer before it touches the
    tensors, and every tensor is recorded on the consumer (so the allocator keeps it until the consumer is done)."""
    log: list = []
    caller, slot = _FakeStream("caller", log), _FakeStream("slot", log)
    inputs = [_FakeTensor("y", log), _FakeTensor("uv", log)]
    hand_over(inputs, caller, slot)  # before the slot reads the caller's planes
    assert log == [("wait", "slot", "caller"), ("record", "y", "slot"), ("record", "uv", "slot")]
    log.clear()
    hand_over([_FakeTensor("out", log)], slot, caller)  # before the caller reads the result
    assert log == [("wait", "caller", "slot"), ("record", "out", "caller")]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (torch.cuda.is_available() is False)")
def test_cuda_device_tensors_are_ordered_against_the_callers_stream():
    """Input produced on a side stream still in flight, result read on it: equal to the CPU's (fp16 ≥ 40 dB)."""
    with Upscaler(near_identity_model(4), device="cuda", streams=2) as gpu, \
            Upscaler(near_identity_model(4), device="cpu") as cpu:
        w, h = 64, 48
        x = torch.rand(1, 3, h, w)
        want = cpu.upscale(x)
        side = torch.cuda.Stream()
        with torch.cuda.stream(side):
            torch.cuda._sleep(50_000_000)  # keep the producer busy: a missing wait reads unfinished data
            xd = x.to("cuda", non_blocking=False) * 1.0
            got = gpu.upscale(xd)
            got_host = got.cpu()
        mse = float(((got_host - want) ** 2).mean())
        assert mse == 0 or 10 * np.log10(1 / mse) >= 40


def test_integer_and_float_rgb_sides_mix():
    """A transform from an integer format to float RGB is a decode to RGB (training's data), one from float RGB to
    an integer format an encode's input (training's video degradation): bit for bit the colour code's own."""
    from esrgan_video.frames.color import ColorSpec, planes_to_rgb, rgb_to_planes

    rng = np.random.default_rng(5)
    for name, h, w in (("yuv420p", 24, 32), ("yuv422p10le", 16, 20)):
        fmt = pixel_format(name)
        spec = ColorSpec(matrix=1, primaries=1, transfer=1, full_range=False, chroma_location="left").resolved(w, h, fmt)
        rgb = torch.from_numpy(rng.random((3, h, w), dtype=np.float32))
        planes = FrameTransform(None, src=FrameFormat.float_rgb(), dst=FrameFormat(fmt, spec))(list(rgb))
        want = rgb_to_planes(rgb[None], fmt, spec)
        assert all(torch.equal(torch.as_tensor(a).reshape(b.shape[-2:]), b.reshape(b.shape[-2:]))
                   for a, b in zip(planes, want))
        back = FrameTransform(None, src=FrameFormat(fmt, spec), dst=FrameFormat.float_rgb())(planes)
        assert torch.equal(torch.stack([torch.as_tensor(p) for p in back]), planes_to_rgb(
            [torch.as_tensor(p) for p in planes], fmt, spec)[0])
