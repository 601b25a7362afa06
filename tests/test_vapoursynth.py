"""vsesrgan.upscale on real VapourSynth (the PyPI wheel, CPU): the filter must give exactly what the core gives.

The oracle for every format is the core itself, called the way the streaming core calls it: the input frame's
planes through ``color.planes_to_rgb`` (with an FFmpeg ``PixelFormat`` and a ColorSpec written out by hand from
the props the test set), an ``Upscaler`` of its own, ``sizing.resize_rgb`` and ``color.rgb_to_planes``. Colour
matrix and range are also checked against VapourSynth's own resizer (zimg), which reads the same props.
Models: a tiny near-identity RRDB saved to .safetensors and passed by path (as a script author would).
"""

from __future__ import annotations

import concurrent.futures
import os
import random
import shutil
import subprocess
import sys
import threading
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

vs = pytest.importorskip("vapoursynth")

import vsesrgan  # noqa: E402
from esrgan_video.frames.color import ColorSpec, planes_to_rgb, rgb_to_planes  # noqa: E402
from esrgan_video.frames.pixel_formats import pixel_format  # noqa: E402
from esrgan_video.frames.sizing import output_size, resize_rgb  # noqa: E402
from esrgan_video.testing import decoded_planes, near_identity_model  # noqa: E402
from esrgan_video.upscaler import Upscaler  # noqa: E402

pytestmark = pytest.mark.vapoursynth

core = vs.core
W, H, N = 32, 24, 4
EXAMPLES = Path(__file__).resolve().parents[1] / "plugins" / "vsesrgan" / "examples"


# fixtures -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    from safetensors.torch import save_file

    path = tmp_path_factory.mktemp("model") / "near_identity_x4.safetensors"
    save_file(near_identity_model(4).state_dict(), str(path))
    return path


@pytest.fixture(scope="module")
def oracle(model_path) -> Upscaler:
    """The core's Upscaler on the same weights, separate from the filter's."""
    return Upscaler(model_path, device="cpu")


def _content(n: int, width: int, height: int, seed: int = 0) -> np.ndarray:
    """n × 3 × h × w float32 frames: smooth colour fields, edges and noise, inside [0.1, 0.9]."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, 4, 5, generator=g)
    smooth = torch.nn.functional.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=False)
    edges = (torch.arange(width) % 7 < 3).float().expand(n, 3, height, width) * 0.2
    noise = torch.rand(n, 3, height, width, generator=g) * 0.1
    return (0.1 + 0.8 * ((smooth.clamp(0, 1) * 0.7 + edges + noise) / 1.0).clamp(0, 1)).numpy().astype(np.float32)


def rgbs_clip(n: int = N, width: int = W, height: int = H, seed: int = 0, **props) -> vs.VideoNode:
    """A real RGBS clip whose frames are :func:`_content` (written by a ModifyFrame callback)."""
    data = _content(n, width, height, seed)
    blank = core.std.BlankClip(width=width, height=height, format=vs.RGBS, length=n, fpsnum=24000, fpsden=1001)

    def fill(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        out = f.copy()
        for p in range(3):
            np.copyto(np.asarray(out[p]), data[n, p])
        return out

    clip = core.std.ModifyFrame(blank, blank, fill)
    return core.std.SetFrameProps(clip, **props) if props else clip


def to_format(clip: vs.VideoNode, fmt: int, **props) -> vs.VideoNode:
    """Convert an RGBS clip with zimg (BT.709 limited for YUV/GRAY), then set the given props."""
    family = core.get_video_format(fmt).color_family
    if family == vs.RGB:
        out = core.resize.Bicubic(clip, format=fmt)
    else:
        out = core.resize.Bicubic(clip, format=fmt, matrix_s="709", range_s="limited", dither_type="none")
    return core.std.SetFrameProps(out, **props) if props else out


def planes_of(frame: vs.VideoFrame) -> list[np.ndarray]:
    return [np.array(frame[i]) for i in range(frame.format.num_planes)]


def core_path(planes, ffmpeg_fmt: str, spec: ColorSpec, up: Upscaler, out_size: tuple[int, int]):
    """What the streaming core does with these planes (VapourSynth plane order R, G, B for RGB)."""
    fmt = pixel_format(ffmpeg_fmt)
    if fmt.family == "rgb":  # FFmpeg's gbrp stores G, B, R
        planes = [planes[1], planes[2], planes[0]]
    with torch.inference_mode():
        rgb = planes_to_rgb([torch.from_numpy(p) for p in planes], fmt, spec)
        y = resize_rgb(up.upscale_tensor(rgb), *out_size)
        out = [p.numpy() for p in rgb_to_planes(y, fmt, spec)]
    if fmt.family == "rgb":
        out = [out[2], out[0], out[1]]
    return out


@pytest.fixture
def threads():
    """Set core.num_threads for one test and put it back."""
    saved = core.num_threads

    def set_threads(n: int) -> None:
        core.num_threads = n

    yield set_threads
    core.num_threads = saved


# props ↔ ColorSpec (pure) ------------------------------------------------------------------------------
def test_props_map_to_the_cores_colour_spec():
    from vsesrgan.props import adjusted_sar, props_from_spec, spec_from_props

    assert spec_from_props({}) == ColorSpec()  # untagged stays unspecified until resolved
    spec = spec_from_props({"_Matrix": 9, "_Primaries": 9, "_Transfer": 18, "_Range": 1, "_ChromaLocation": 2})
    assert spec == ColorSpec(9, 9, 18, True, "topleft")
    assert spec_from_props({"_Range": 0}).full_range is False
    assert spec_from_props({"_ColorRange": 0}).full_range is True  # deprecated prop, inverted numbering
    assert spec_from_props({"_ColorRange": 1}).full_range is False
    assert spec_from_props({"_Range": 0, "_ColorRange": 0}).full_range is False  # _Range wins
    for vs_code, name in enumerate(["left", "center", "topleft", "top", "bottomleft", "bottom"]):
        assert spec_from_props({"_ChromaLocation": vs_code}).chroma_location == name
        assert props_from_spec(ColorSpec(1, 1, 1, False, name), chroma=True)["_ChromaLocation"] == vs_code
    assert props_from_spec(ColorSpec(6, 5, 1, True, "left"), chroma=False) == {
        "_Matrix": 6, "_Primaries": 5, "_Transfer": 1, "_Range": 1}
    assert adjusted_sar({"_SARNum": 8, "_SARDen": 9}, (720, 480), (2880, 1920)) is None
    # a 4:3 and a 16:9 NTSC DVD frame resized to their display aspect get square pixels
    assert adjusted_sar({"_SARNum": 8, "_SARDen": 9}, (720, 480), (1440, 1080)) == (1, 1)
    assert adjusted_sar({"_SARNum": 32, "_SARDen": 27}, (720, 480), (1920, 1080)) == (1, 1)
    assert adjusted_sar({"_SARNum": 1, "_SARDen": 1}, (720, 480), (1440, 1080)) == (9, 8)
    assert adjusted_sar({"_SARNum": 0, "_SARDen": 0}, (10, 10), (20, 10)) == (1, 2)


# float RGB: the Upscaler's own numpy entry is the oracle ---------------------------------------------
def test_rgbs_equals_the_core_upscaler(model_path, oracle):
    clip = rgbs_clip()
    out = vsesrgan.upscale(clip, model=model_path, device="cpu")
    assert (out.format.id, out.width, out.height, out.num_frames) == (vs.RGBS, W * 4, H * 4, N)
    assert (out.fps_num, out.fps_den) == (24000, 1001)
    for i, f in enumerate(out.frames()):
        src = np.stack(planes_of(clip.get_frame(i)), axis=-1)
        want = oracle.upscale(src)
        got = np.stack(planes_of(f), axis=-1)
        assert np.abs(got - want).max() <= 1e-4
        # and the model really upscaled: near-identity output is close to a nearest ×4 of the input
        nearest = src.repeat(4, axis=0).repeat(4, axis=1)
        assert np.abs(got - nearest).mean() < 0.05


def test_rgbh_matches_the_core_upscaler_in_half_precision(model_path, oracle):
    clip = core.resize.Point(rgbs_clip(n=2), format=vs.RGBH)
    out = vsesrgan.upscale(clip, model=model_path, device="cpu")
    assert out.format.id == vs.RGBH
    f = out.get_frame(1)
    assert planes_of(f)[0].dtype == np.float16
    src = np.stack(planes_of(clip.get_frame(1)), axis=-1).astype(np.float32)
    want = oracle.upscale(src)
    got = np.stack(planes_of(f), axis=-1).astype(np.float32)
    assert np.abs(got - want).max() <= 1e-3  # half-precision storage of the output


def test_the_default_model_by_name_on_a_real_photo_crop(real_weights_x4plus, sample_photo):
    """The registry name (the default ``model``) on real weights: a 16×12 crop of a real photo."""
    crop = np.ascontiguousarray(sample_photo[100:112, 200:216])  # H×W×3 uint8
    blank = core.std.BlankClip(width=16, height=12, format=vs.RGB24, length=1)

    def fill(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        out = f.copy()
        for p in range(3):
            np.copyto(np.asarray(out[p]), crop[..., p])
        return out

    clip = core.std.ModifyFrame(blank, blank, fill)
    got = np.stack(planes_of(vsesrgan.upscale(clip, device="cpu").get_frame(0)), axis=-1)
    want = Upscaler("RealESRGAN_x4plus", device="cpu").upscale(crop)
    assert got.shape == (48, 64, 3) and got.dtype == np.uint8
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1  # same float result, one rounding each


def test_a_loaded_model_and_a_path_give_the_same_frames(model_path):
    from esrgan_video import load_model

    clip = rgbs_clip(n=1)
    by_path = planes_of(vsesrgan.upscale(clip, model=str(model_path), device="cpu").get_frame(0))
    by_module = planes_of(vsesrgan.upscale(clip, model=load_model(model_path), device="cpu").get_frame(0))
    for a, b in zip(by_path, by_module):
        np.testing.assert_array_equal(a, b)


def test_tile_and_blend_options_reach_the_core(model_path, tmp_path):
    from safetensors.torch import save_file

    other = tmp_path / "other.safetensors"
    save_file(near_identity_model(4, seed=7, noise=0.1).state_dict(), str(other))
    clip = rgbs_clip(n=1)
    src = np.stack(planes_of(clip.get_frame(0)), axis=-1)
    options = dict(tile=16, tile_pad=4, blend=f"{other}:0.5")
    got = np.stack(planes_of(vsesrgan.upscale(clip, model=model_path, device="cpu", **options).get_frame(0)), axis=-1)
    want = Upscaler(model_path, device="cpu", **options).upscale(src)
    assert np.abs(got - want).max() <= 1e-4
    plain = np.stack(planes_of(vsesrgan.upscale(clip, model=model_path, device="cpu").get_frame(0)), axis=-1)
    assert np.abs(got - plain).max() > 1e-3  # the options changed something


# integer RGB, YUV and GRAY: the core's colour path is the oracle -------------------------------------
BT709_LIMITED = dict(_Matrix=1, _Primaries=1, _Transfer=1, _Range=0)

FORMATS = [
    # (VapourSynth format, FFmpeg name for the oracle, props set on the clip, the ColorSpec they mean)
    (vs.RGB24, "gbrp", {}, ColorSpec(0, 1, 13, True, None)),
    (vs.RGB30, "gbrp10le", {}, ColorSpec(0, 1, 13, True, None)),
    (vs.RGB48, "gbrp16le", {}, ColorSpec(0, 1, 13, True, None)),
    (vs.YUV420P8, "yuv420p", dict(BT709_LIMITED, _ChromaLocation=0), ColorSpec(1, 1, 1, False, "left")),
    (vs.YUV420P10, "yuv420p10le", dict(BT709_LIMITED, _ChromaLocation=2), ColorSpec(1, 1, 1, False, "topleft")),
    (vs.YUV422P10, "yuv422p10le", dict(_Matrix=6, _Primaries=6, _Transfer=6, _Range=1, _ChromaLocation=1),
     ColorSpec(6, 6, 6, True, "center")),
    (vs.RGB48, "gbrp16le", dict(_Range=0), ColorSpec(0, 1, 13, False, None)),  # limited-range RGB
    (vs.YUV444P16, "yuv444p16le", dict(_Matrix=9, _Primaries=9, _Transfer=16, _Range=0),
     ColorSpec(9, 9, 16, False, "left")),
    (vs.GRAY8, "gray", dict(_Matrix=1, _Range=0), ColorSpec(1, 1, 1, False, None)),
    (vs.GRAY16, "gray16le", dict(_Matrix=1, _Range=1), ColorSpec(1, 1, 1, True, None)),
]


@pytest.mark.parametrize("vs_fmt, ffmpeg_fmt, props, spec", FORMATS, ids=lambda v: getattr(v, "name", None))
def test_integer_formats_equal_the_core_colour_path(model_path, oracle, vs_fmt, ffmpeg_fmt, props, spec):
    clip = to_format(rgbs_clip(n=2), vs_fmt, **props)
    out = vsesrgan.upscale(clip, model=model_path, device="cpu")
    assert (out.format.id, out.width, out.height, out.num_frames) == (vs_fmt, W * 4, H * 4, 2)
    for i in range(2):
        got = planes_of(out.get_frame(i))
        want = core_path(planes_of(clip.get_frame(i)), ffmpeg_fmt, spec, oracle, (W * 4, H * 4))
        assert [g.dtype for g in got] == [w.dtype for w in want]
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize(
    "vs_fmt, bits, sub",
    [(vs.YUV411P8, 8, (2, 0)), (vs.YUV440P8, 8, (0, 1)), (vs.YUV410P8, 8, (2, 2)), (vs.YUV420P9, 9, (1, 1)),
     (vs.YUV422P14, 14, (1, 0))],
    ids=lambda v: getattr(v, "name", None),
)
def test_other_subsamplings_and_depths(model_path, oracle, vs_fmt, bits, sub):
    """Formats FFmpeg's table lacks: the oracle gets a PixelFormat written out from the format's definition."""
    from esrgan_video.frames.pixel_formats import PixelFormat

    clip = to_format(rgbs_clip(n=1), vs_fmt, **BT709_LIMITED, _ChromaLocation=1)
    out = vsesrgan.upscale(clip, model=model_path, device="cpu")
    assert (out.format.id, out.width, out.height) == (vs_fmt, W * 4, H * 4)
    fmt = PixelFormat("test", "yuv", bits, *sub, ("Y", "U", "V"))
    planes = planes_of(clip.get_frame(0))
    with torch.inference_mode():
        rgb = planes_to_rgb([torch.from_numpy(p) for p in planes], fmt, ColorSpec(1, 1, 1, False, "center"))
        want = rgb_to_planes(oracle.upscale_tensor(rgb), fmt, ColorSpec(1, 1, 1, False, "center"))
    for g, w in zip(planes_of(out.get_frame(0)), want):
        np.testing.assert_array_equal(g, w.numpy())


def test_gray_is_upscaled_as_neutral_rgb_and_returned_as_luma(model_path):
    clip = to_format(rgbs_clip(n=1), vs.GRAY16, _Matrix=1, _Range=1)
    y = planes_of(vsesrgan.upscale(clip, model=model_path, device="cpu").get_frame(0))
    assert len(y) == 1
    src = planes_of(clip.get_frame(0))[0].astype(np.float32) / 65535
    nearest = src.repeat(4, axis=0).repeat(4, axis=1)
    assert np.abs(y[0].astype(np.float32) / 65535 - nearest).mean() < 0.05


def test_untagged_yuv_follows_the_mpv_rule_and_tags_the_output(model_path, oracle):
    colour = ["_Matrix", "_Primaries", "_Transfer", "_Range", "_ChromaLocation"]
    clip = core.std.RemoveFrameProps(to_format(rgbs_clip(n=1), vs.YUV420P8), colour)
    out = vsesrgan.upscale(clip, model=model_path, device="cpu")
    f = out.get_frame(0)
    # 32×24 is SD: BT.601 (SMPTE 170M) matrix, BT.709 primaries for a non-standard height, limited, left
    spec = ColorSpec(6, 1, 1, False, "left")
    want = core_path(planes_of(clip.get_frame(0)), "yuv420p", spec, oracle, (W * 4, H * 4))
    for g, w in zip(planes_of(f), want):
        np.testing.assert_array_equal(g, w)
    # the output is 128×96, still SD; but say what was assumed so a later filter cannot guess otherwise
    assert (f.props["_Matrix"], f.props["_Primaries"], f.props["_Transfer"]) == (6, 1, 1)
    assert (f.props["_Range"], f.props["_ChromaLocation"]) == (0, 0)


@pytest.mark.filterwarnings("ignore:The _ColorRange frame property has been deprecated")
@pytest.mark.parametrize(
    "props, zimg",
    [
        (dict(_Matrix=1, _Range=1), dict(matrix_in_s="709", range_in_s="full")),
        (dict(_Matrix=6, _Range=0), dict(matrix_in_s="170m", range_in_s="limited")),
        (dict(_Matrix=9, _ColorRange=0), dict(matrix_in_s="2020ncl", range_in_s="full")),  # deprecated prop: 0 = full
        (dict(_Matrix=5, _ColorRange=1), dict(matrix_in_s="470bg", range_in_s="limited")),
    ],
    ids=["709-full", "170m-limited", "2020-legacy-full", "470bg-legacy-limited"],
)
def test_matrix_and_range_props_agree_with_vapoursynths_resizer(model_path, props, zimg):
    """Upscaling YUV 4:4:4 directly equals upscaling zimg's RGB conversion of it (same props, same meaning)."""
    yuv = core.resize.Point(rgbs_clip(n=1), format=vs.YUV444P16, matrix_s=zimg["matrix_in_s"],
                            range_s=zimg["range_in_s"])
    yuv = core.std.SetFrameProps(core.std.RemoveFrameProps(yuv, ["_Range", "_ColorRange"]), **props)
    direct = vsesrgan.upscale(yuv, model=model_path, device="cpu")
    direct_rgb = core.resize.Point(direct, format=vs.RGBS, **zimg)
    via_rgb = vsesrgan.upscale(core.resize.Point(yuv, format=vs.RGBS, **zimg), model=model_path, device="cpu")
    a = np.stack(planes_of(direct_rgb.get_frame(0)))
    b = np.stack(planes_of(via_rgb.get_frame(0)))
    assert np.abs(a - b).max() < 2e-3  # 16-bit rounding of the YUV output; a wrong matrix or range is >= 0.02


def test_chroma_location_prop_is_honoured(model_path):
    clip = to_format(rgbs_clip(n=1), vs.YUV420P10, _ChromaLocation=0)
    left = planes_of(vsesrgan.upscale(clip, model=model_path, device="cpu").get_frame(0))
    top = planes_of(vsesrgan.upscale(core.std.SetFrameProps(clip, _ChromaLocation=3), model=model_path,
                                     device="cpu").get_frame(0))
    assert not np.array_equal(left[0], top[0])


def test_interlaced_frames_are_upscaled_with_one_warning(model_path):
    messages: list[str] = []
    handle = core.add_log_handler(lambda kind, msg: messages.append(msg) if kind == vs.MESSAGE_TYPE_WARNING else None)
    try:
        clip = core.std.SetFrameProps(rgbs_clip(n=3), _FieldBased=2)
        out = vsesrgan.upscale(clip, model=model_path, device="cpu")
        for f in out.frames():
            assert f.props["_FieldBased"] == 2
    finally:
        core.remove_log_handler(handle)
    warnings = [m for m in messages if m.startswith("vsesrgan.upscale: ")]
    assert len(warnings) == 1 and "interlaced" in warnings[0] and "deinterlace first" in warnings[0]


# size, props, SAR --------------------------------------------------------------------------------------
def test_frame_props_are_kept(model_path):
    clip = core.std.SetFrameProps(rgbs_clip(), Name="shot 12", _SceneChangePrev=1, _FieldBased=0, _SARNum=8, _SARDen=9)
    out = vsesrgan.upscale(clip, model=model_path, device="cpu")
    assert out.num_frames == clip.num_frames and out.fps == clip.fps
    for a, b in zip(clip.frames(), out.frames()):
        assert dict(b.props) == dict(a.props)  # RGB: nothing to add; uniform ×4 keeps the SAR


def test_scale_below_the_models_resizes_on_the_device_like_the_cli(model_path, oracle):
    clip = to_format(rgbs_clip(n=1), vs.YUV420P8, **BT709_LIMITED, _ChromaLocation=0)
    out = vsesrgan.upscale(clip, model=model_path, scale=2, device="cpu")
    assert (out.width, out.height) == (W * 2, H * 2)
    want = core_path(planes_of(clip.get_frame(0)), "yuv420p", ColorSpec(1, 1, 1, False, "left"), oracle, (W * 2, H * 2))
    for g, w in zip(planes_of(out.get_frame(0)), want):
        np.testing.assert_array_equal(g, w)
    assert "_SARNum" not in out.get_frame(0).props


def test_non_uniform_scale_adjusts_the_sample_aspect_ratio(model_path):
    # 30×22 × 1.5 = 45×33: odd sides, rounded to even ones for 4:2:0 by the CLI's output_size,
    # so not one factor both ways
    src = to_format(rgbs_clip(n=2, width=30, height=22), vs.YUV420P8, _SARNum=16, _SARDen=15)
    out = vsesrgan.upscale(src, model=model_path, scale=1.5, device="cpu")
    ow, oh = output_size(30, 22, model_scale=4, scale=1.5, multiple=(2, 2))
    assert (out.width, out.height) == (ow, oh)
    assert ow % 2 == 0 and oh % 2 == 0 and Fraction(ow, 30) != Fraction(oh, 22)
    f = out.get_frame(1)
    sar = Fraction(f.props["_SARNum"], f.props["_SARDen"])
    # display aspect kept: width·SAR / height is the same before and after
    assert Fraction(ow) * sar / oh == Fraction(30) * Fraction(16, 15) / 22
    # untagged SAR counts as square
    square = vsesrgan.upscale(core.std.RemoveFrameProps(src, ["_SARNum", "_SARDen"]), model=model_path, scale=1.5,
                              device="cpu").get_frame(0)
    assert Fraction(square.props["_SARNum"], square.props["_SARDen"]) == Fraction(30 * oh, 22 * ow)


# a real file through a source plugin ------------------------------------------------------------------
@pytest.fixture(scope="module")
def carphone() -> Path:
    from esrgan_video.samples import sample_clip

    return sample_clip("carphone_pristine.mp4", progress=False)


def test_a_real_file_through_bestsource(model_path, oracle, carphone):
    assert hasattr(core, "bs"), "the BestSource plugin is missing: pip install vapoursynth-bestsource"
    src = core.bs.VideoSource(str(carphone), cachemode=0)
    assert (src.width, src.height, src.format.id) == (176, 144, vs.YUV420P8)
    clip = src.std.Crop(left=56, right=56, top=48, bottom=48).std.Trim(10, length=3)  # 64×48, 3 frames
    out = vsesrgan.upscale(clip, model=model_path, device="cpu")
    assert (out.width, out.height, out.num_frames) == (256, 192, 3)
    for i, (a, b) in enumerate(zip(clip.frames(), out.frames())):
        spec = vsesrgan.props.spec_from_props(a.props).resolved(64, 48, pixel_format("yuv420p"))
        want = core_path(planes_of(a), "yuv420p", spec, oracle, (256, 192))
        for g, w in zip(planes_of(b), want):
            np.testing.assert_array_equal(g, w)
        assert b.props["_PictType"] == a.props["_PictType"]


# alpha (an _Alpha frame prop, as BestSource attaches it) ------------------------------------------------
@pytest.mark.parametrize("pix_fmt, vs_fmt", [("yuva420p", vs.YUV420P8), ("gbrap16le", vs.RGB48)], ids=["yuva420p", "gbrap16le"])
def test_an_alpha_frame_is_upscaled_like_the_clis_alpha_plane(model_path, tmp_path, pix_fmt, vs_fmt):
    """A file with alpha through BestSource (``_Alpha`` on every frame) gives the CLI's output of that file bit for
    bit, colour and alpha; the input-sized alpha is not left on the upscaled frame."""
    import av

    import esrgan_video
    from media import make_clip

    src = make_clip(tmp_path / "alpha.mkv", codec="ffv1", pix_fmt=pix_fmt, size=(64, 48), frames=2)
    cli_out = tmp_path / "cli.mkv"
    esrgan_video.upscale_video(src, cli_out, model=model_path, device="cpu", codec="ffv1", pix_fmt=pix_fmt)
    with av.open(str(cli_out)) as c:
        cli = [[np.array(p) for p in decoded_planes(f)] for f in c.decode(video=0)]
    clip = core.bs.VideoSource(str(src), cachemode=0)
    assert clip.format.id == vs_fmt and "_Alpha" in clip.get_frame(0).props
    out = vsesrgan.upscale(clip, model=model_path, device="cpu")
    for i, f in enumerate(out.frames()):
        alpha = f.props["_Alpha"]
        assert (alpha.format.id, alpha.width, alpha.height) == (clip.get_frame(i).props["_Alpha"].format.id, 256, 192)
        want = cli[i] if pix_fmt.startswith("yuva") else [cli[i][k] for k in (2, 0, 1, 3)]  # gbrap: G, B, R, A
        assert np.ptp(want[-1].astype(np.int64)) > np.iinfo(want[-1].dtype).max // 4  # a real alpha, not opaque
        for g, w in zip([*planes_of(f), np.array(alpha[0])], want):
            np.testing.assert_array_equal(g, w)


def test_float_rgb_alpha_is_upscaled_as_a_grey_image(model_path, oracle):
    clip = rgbs_clip(n=2)
    alpha = core.std.ShufflePlanes(rgbs_clip(n=2, seed=4), 1, vs.GRAY)
    out = vsesrgan.upscale(core.std.ClipToProp(clip, alpha, prop="_Alpha"), model=model_path, device="cpu")
    f = out.get_frame(1)
    a = np.array(alpha.get_frame(1)[0])
    want = oracle.upscale(np.stack([a, a, a], axis=-1)).mean(axis=-1)  # as the core upscales an alpha plane
    got = f.props["_Alpha"]
    assert (got.format.id, got.width, got.height) == (vs.GRAYS, W * 4, H * 4)
    assert np.abs(np.array(got[0]) - want).max() <= 1e-5
    colour = np.stack(planes_of(f), axis=-1)
    assert np.abs(colour - oracle.upscale(np.stack(planes_of(clip.get_frame(1)), axis=-1))).max() <= 1e-4
    assert "_Alpha" not in vsesrgan.upscale(clip, model=model_path, device="cpu").get_frame(0).props


def test_an_alpha_of_another_depth_or_size_fails_the_frame_saying_what_it_must_be(model_path):
    clip = to_format(rgbs_clip(n=1), vs.RGB48)
    gray8 = core.std.BlankClip(clip, format=vs.GRAY8, color=128)
    with _raises("frame 0: its _Alpha frame is Gray8 32x24; the alpha of this clip must be Gray16 32x24"):
        vsesrgan.upscale(core.std.ClipToProp(clip, gray8, prop="_Alpha"), model=model_path, device="cpu").get_frame(0)
    with _raises("frame 0: its _Alpha prop holds int, not a frame"):
        vsesrgan.upscale(core.std.SetFrameProps(clip, _Alpha=1), model=model_path, device="cpu").get_frame(0)


# threads -----------------------------------------------------------------------------------------------
def test_concurrent_requests_give_the_single_threaded_frames(model_path, threads):
    clip = to_format(rgbs_clip(n=8, seed=3), vs.YUV420P10, **BT709_LIMITED)
    threads(1)
    single = [planes_of(f) for f in vsesrgan.upscale(clip, model=model_path, device="cpu").frames()]

    threads(4)
    out = vsesrgan.upscale(clip, model=model_path, device="cpu")
    order = list(range(8)) * 2
    random.Random(0).shuffle(order)
    seen_threads: set[int] = set()

    def fetch(i: int):
        seen_threads.add(threading.get_ident())
        return i, planes_of(out.get_frame(i))

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(fetch, order))
    assert len(seen_threads) > 1
    for i, planes in results:
        for g, w in zip(planes, single[i]):
            np.testing.assert_array_equal(g, w)
    for i, f in enumerate(out.frames(prefetch=8)):
        for g, w in zip(planes_of(f), single[i]):
            np.testing.assert_array_equal(g, w)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (torch.cuda.is_available() is False)")
def test_on_the_gpu_streams_and_threads_give_the_cpu_frames(model_path, threads):
    clip = to_format(rgbs_clip(n=8, seed=5), vs.YUV420P10, **BT709_LIMITED)
    cpu = [planes_of(f) for f in vsesrgan.upscale(clip, model=model_path, device="cpu").frames()]
    threads(6)
    out = vsesrgan.upscale(clip, model=model_path, device=0, num_streams=3, precision="fp32", backend="torch")
    order = list(range(8)) * 2
    random.Random(1).shuffle(order)
    with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda i: (i, planes_of(out.get_frame(i))), order))
    # A stream that is not synchronised, or a buffer shared between frames, gives other frames' content or
    # garbage; TF32 convolutions and cuDNN's algorithm choice give a code or two of 1023 at most.
    for i, planes in results:
        for g, c in zip(planes, cpu[i]):
            assert np.abs(g.astype(np.int32) - c.astype(np.int32)).max() <= 2


# vspipe ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def vspipe_env(tmp_path_factory) -> dict[str, str]:
    """An environment where the wheel's vspipe finds this Python (``vapoursynth config`` into a private dir)."""
    xdg = tmp_path_factory.mktemp("xdg")
    env = dict(os.environ, XDG_CONFIG_HOME=str(xdg), ESRGAN_VIDEO_OFFLINE="1")
    subprocess.run([sys.executable, "-m", "vapoursynth", "config"], env=env, check=True, capture_output=True)
    return env


def _vspipe() -> str:
    found = Path(sys.executable).parent / "vspipe"
    return str(found) if found.exists() else shutil.which("vspipe") or "vspipe"


def _read_y4m(data: bytes) -> list[list[np.ndarray]]:
    import io

    import av

    with av.open(io.BytesIO(data), format="yuv4mpegpipe") as container:
        return [[np.array(p) for p in decoded_planes(frame)] for frame in container.decode(video=0)]


def test_the_docs_pyav_block_reads_vspipe_output(model_path, vspipe_env, tmp_path, monkeypatch):
    text = (Path(__file__).resolve().parents[1] / "docs" / "vapoursynth.md").read_text()
    block = text.split("```python\nimport subprocess\n", 1)[1].split("```", 1)[0]
    script = tmp_path / "script.vpy"
    script.write_text(
        "import vapoursynth as vs\nimport vsesrgan\n"
        "clip = vs.core.std.BlankClip(width=32, height=24, format=vs.YUV420P8, length=3, color=[80, 100, 160])\n"
        f"vsesrgan.upscale(clip, model={str(model_path)!r}, device='cpu').set_output()\n"
    )
    for key, value in vspipe_env.items():
        monkeypatch.setenv(key, value)
    code = "import subprocess\n" + block.replace('"vspipe"', repr(_vspipe())).replace('"script.vpy"', repr(str(script)))
    scope: dict = {}
    exec(compile(code, "docs/vapoursynth.md", "exec"), scope)
    frames = scope["frames"]
    assert len(frames) == 3 and frames[0].shape == (96, 128, 3)
    # BlankClip's (80, 100, 160) is BT.601 limited YUV; the near-identity model keeps it: a flat colour out
    assert frames[0].std(axis=(0, 1)).max() < 3


def test_anime_example_under_vspipe_reads_a_file_and_matches_a_single_thread_run(
    model_path, carphone, vspipe_env, threads
):
    script = EXAMPLES / "anime_restoration.vpy"
    args = ["-a", f"src={carphone}", "-a", f"model={model_path}", "-a", "frames=3", "-a", "crop=56,48,56,48",
            "-a", "height=96", "-a", "device=cpu"]
    run = subprocess.run([_vspipe(), "-c", "y4m", *args, str(script), "-"], env=vspipe_env, capture_output=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr.decode(errors="replace")
    frames = _read_y4m(run.stdout)
    assert len(frames) == 3
    # 64×48 ×4, then down to 96 lines at the display aspect: carphone's pixels are not square (128:117)
    props = core.bs.VideoSource(str(carphone), cachemode=0).get_frame(0).props
    sar = props["_SARNum"] / props["_SARDen"]
    assert sar != 1 and frames[0][0].shape == (96, round(96 * 64 / 48 * sar / 2) * 2)

    # the same script in this process, one thread: vspipe (default threads) must give the same frames
    threads(1)
    import runpy

    env_globals = {"src": str(carphone), "model": str(model_path), "frames": "3", "crop": "56,48,56,48",
                   "height": "96", "device": "cpu"}
    vs.clear_outputs()
    runpy.run_path(str(script), init_globals=env_globals)
    clip = vs.get_output(0)
    clip = clip.clip if hasattr(clip, "clip") else clip
    vs.clear_outputs()
    assert clip.format.id == vs.YUV420P10
    for want, got in zip(clip.frames(), frames):
        for p, g in zip(planes_of(want), got):
            np.testing.assert_array_equal(g, p)


def test_anime_example_gives_square_pixels_at_the_display_aspect(model_path, tmp_path):
    from media import make_clip

    src = make_clip(tmp_path / "dvd.mkv", size=(64, 48), frames=2, sar=Fraction(32, 27))  # anamorphic
    import runpy

    vs.clear_outputs()
    runpy.run_path(str(EXAMPLES / "anime_restoration.vpy"),
                   init_globals={"src": str(src), "model": str(model_path), "height": "96", "device": "cpu"})
    out = vs.get_output(0)
    out = out.clip if hasattr(out, "clip") else out
    vs.clear_outputs()
    assert (out.width, out.height, out.num_frames) == (152, 96, 2)  # 96 · 64/48 · 32/27 = 151.7 → 152
    f = out.get_frame(0)
    assert (f.props["_SARNum"], f.props["_SARDen"]) == (1, 1)


def test_film_example_keeps_10_bit_yuv_and_colour_tags(model_path, tmp_path):
    from media import make_clip

    src = make_clip(tmp_path / "film.mkv", codec="libx265", pix_fmt="yuv420p10le", size=(64, 48), frames=3,
                    matrix=9, primaries=9, transfer=16)
    import runpy

    vs.clear_outputs()
    runpy.run_path(str(EXAMPLES / "film_10bit.vpy"),
                   init_globals={"src": str(src), "model": str(model_path), "frames": "2", "device": "cpu"})
    out = vs.get_output(0)
    out = out.clip if hasattr(out, "clip") else out
    vs.clear_outputs()
    assert (out.format.id, out.width, out.height, out.num_frames) == (vs.YUV420P10, 128, 96, 2)
    f = out.get_frame(1)
    assert (f.props["_Matrix"], f.props["_Primaries"], f.props["_Transfer"]) == (9, 9, 16)


# errors ------------------------------------------------------------------------------------------------
def _raises(match: str):
    return pytest.raises(vs.Error, match=r"vsesrgan\.upscale: .*" + match)


def test_variable_format_and_size_clips_are_refused(model_path):
    """One line saying what varies, what is known (the frames' format or size) and the conversion that fixes only
    that: a YUV clip of many sizes is not told to become RGBS."""
    a = rgbs_clip(n=2)
    mixed_format = core.std.Splice([a, core.resize.Point(a, format=vs.RGB24)], mismatch=True)
    with _raises(r"the clip has a variable format \(its 32x24 frames come in more than one format\); give it one "
                 r"with core\.resize\.Bicubic\(clip, format=vs\.RGBS\)"):
        vsesrgan.upscale(mixed_format, model=model_path, device="cpu")
    yuv = to_format(a, vs.YUV420P10)
    mixed_size = core.std.Splice([yuv, to_format(rgbs_clip(n=2, width=16, height=16), vs.YUV420P10)], mismatch=True)
    with _raises(r"the clip has a variable size \(its YUV420P10 frames come in more than one size\); give it one "
                 r"with core\.resize\.Bicubic\(clip, width=W, height=H\) before upscaling$"):
        vsesrgan.upscale(mixed_size, model=model_path, device="cpu")
    both = core.std.Splice([a, core.resize.Point(a, width=16, height=16, format=vs.RGB24)], mismatch=True)
    with _raises(r"the clip has a variable format and size; .*format=vs\.RGBS"):
        vsesrgan.upscale(both, model=model_path, device="cpu")


@pytest.mark.parametrize("fmt", [vs.YUV444PS, vs.GRAYS, vs.YUV420PH], ids=lambda f: core.get_video_format(f).name)
def test_float_yuv_and_gray_are_refused_with_the_conversion_to_use(model_path, fmt):
    clip = core.resize.Point(rgbs_clip(n=1), format=fmt, matrix_s="709")
    with _raises("convert with core.resize.Bicubic\\(clip, format=vs.RGBS\\)"):
        vsesrgan.upscale(clip, model=model_path, device="cpu")


def test_bad_options_are_refused(model_path):
    clip = rgbs_clip(n=1)
    with _raises("scale: expected a positive number"):
        vsesrgan.upscale(clip, model=model_path, scale=0, device="cpu")
    with _raises("num_streams: expected an integer >= 1"):
        vsesrgan.upscale(clip, model=model_path, num_streams=0, device="cpu")
    with _raises("tile: expected"):
        vsesrgan.upscale(clip, model=model_path, tile=-1, device="cpu")
    with _raises("no_such_model"):
        vsesrgan.upscale(clip, model="no_such_model", device="cpu")
    with _raises("clip: expected a vs.VideoNode"):
        vsesrgan.upscale(np.zeros((4, 4, 3)), model=model_path)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU fallback of a machine without CUDA")
def test_device_0_falls_back_to_the_cpu_without_cuda(model_path):
    out = vsesrgan.upscale(rgbs_clip(n=1), model=model_path)  # device=0, the default
    assert out.get_frame(0).width == W * 4
    with _raises("device 1: no CUDA GPU is available"):
        vsesrgan.upscale(rgbs_clip(n=1), model=model_path, device=1)
    with _raises("device 'cuda': no CUDA GPU is available"):
        vsesrgan.upscale(rgbs_clip(n=1), model=model_path, device="cuda")
    with _raises("tensorrt needs a CUDA device"):  # the backend is built up front, not at the first frame
        vsesrgan.upscale(rgbs_clip(n=1), model=model_path, device="cpu", backend="tensorrt")


def test_an_unsupported_matrix_in_the_props_fails_the_frame_with_a_clear_error(model_path):
    clip = to_format(rgbs_clip(n=1), vs.YUV420P8, _Matrix=10)  # BT.2020 constant luminance
    out = vsesrgan.upscale(clip, model=model_path, device="cpu")
    with _raises("frame 0: .*constant-luminance"):
        out.get_frame(0)


def test_reuse_exact_is_bit_identical_in_any_request_order_and_near_is_refused(model_path, threads):
    """reuse='exact' on a clip with held frames (each frame twice, 4 threads, shuffled requests): the frames of
    reuse='off'; 'near' depends on request order, so it is refused with the reason."""
    base = to_format(rgbs_clip(n=4, seed=5), vs.YUV420P8, **BT709_LIMITED)
    held = core.std.Interleave([base, base])  # frames 0,0,1,1,2,2,3,3
    threads(1)
    off = [planes_of(f) for f in vsesrgan.upscale(held, model=model_path, device="cpu", reuse="off").frames()]
    threads(4)
    out = vsesrgan.upscale(held, model=model_path, device="cpu", reuse="exact")
    order = list(range(held.num_frames)) * 2
    random.Random(1).shuffle(order)
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda i: (i, planes_of(out.get_frame(i))), order))
    for i, planes in results:
        for g, w in zip(planes, off[i]):
            np.testing.assert_array_equal(g, w)
    with _raises("reuse='near' is refused here: its output depends on the order frames are requested in"):
        vsesrgan.upscale(held, model=model_path, device="cpu", reuse="near")
    with _raises("reuse"):
        vsesrgan.upscale(held, model=model_path, device="cpu", reuse="sometimes")


def test_a_frame_error_carries_none_of_the_cores_traceback(model_path):
    """VapourSynth writes the traceback of a callback's exception into the frame's error; the core's frames behind
    an error the user must act on (a props problem) are not chained into it: the error's own line ends it."""
    clip = to_format(rgbs_clip(n=1), vs.YUV420P8, _Matrix=10)
    with pytest.raises(vs.Error) as caught:
        vsesrgan.upscale(clip, model=model_path, device="cpu").get_frame(0)
    text = str(caught.value)
    assert text.strip().splitlines()[-1].startswith("vapoursynth.Error: vsesrgan.upscale: frame 0: BT.2020")
    assert "direct cause" not in text and "color.py" not in text and "transform.py" not in text
    assert len(text.strip().splitlines()) < 12  # VapourSynth's own few lines, then the error


@pytest.mark.parametrize("fmt", [vs.RGBS, vs.RGBH], ids=["RGBS", "RGBH"])
@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_nan_or_inf_in_float_input_is_named_as_the_inputs_fault(model_path, fmt, backend):
    """An Expr division leaves NaN/Inf in an RGBS clip: the frame fails naming the plane and the way out, not the
    model's weights and --precision (a CLI flag) as for a model that overflows."""
    clip = core.std.Expr([core.resize.Point(rgbs_clip(n=2), format=fmt)], ["x", "x 0.5 > 0 0 / x ?", "x"])
    out = vsesrgan.upscale(clip, model=model_path, device="cpu", backend=backend)
    with _raises(r"frame 1: plane G holds \d+ NaN or infinite sample\(s\); float input must be finite .*"
                 r"core\.std\.Expr\(clip, 'x x = x 0 \? 0 max 1 min'\)"):
        out.get_frame(1)
    fixed = core.std.Expr([clip], ["x x = x 0 ? 0 max 1 min"])  # the fix the message gives works
    assert np.isfinite(np.stack(planes_of(vsesrgan.upscale(fixed, model=model_path, device="cpu",
                                                           backend=backend).get_frame(1)))).all()


def test_a_model_that_overflows_names_the_filters_precision_argument(model_path):
    from esrgan_video import load_model

    net = load_model(model_path)
    with torch.no_grad():
        net.conv_last.bias.fill_(float("inf"))  # finite input, infinite output: what fp16 overflow looks like
    # at fp16 (the CPU runs it too): the fp32 advice is given only where the run was not already fp32
    from esrgan_video.runtime.torch_backend import cpu_supports

    if not cpu_supports(torch.float16):
        pytest.skip("this torch build has no fp16 conv on the CPU")
    out = vsesrgan.upscale(rgbs_clip(n=1), model=net, device="cpu", backend="torch", precision="fp16")
    with pytest.raises(vs.Error) as caught:
        out.get_frame(0)
    last = str(caught.value).strip().splitlines()[-1]
    assert "the model produced non-finite values" in last
    assert "precision='fp32'" in last and "--precision" not in last


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the messages of a machine without CUDA")
def test_core_messages_name_the_filters_arguments_not_the_clis_flags(model_path):
    """The core's advice is spelt as this filter's arguments (device='cuda', not --device cuda), and device=0's
    silent fall-back to the CPU is said when a backend then needs CUDA."""
    clip = rgbs_clip(n=1)
    with pytest.raises(vs.Error) as explicit:
        vsesrgan.upscale(clip, model=model_path, device="cpu", backend="tensorrt")
    assert "expected device='cuda', got cpu" in str(explicit.value) and "--" not in str(explicit.value)
    assert "\n" not in str(explicit.value)
    with _raises("tensorrt needs a CUDA device .*; device 0 runs on the CPU here: no CUDA GPU is available"):
        vsesrgan.upscale(clip, model=model_path, backend="tensorrt")  # device=0, the default


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the messages of a machine without CUDA")
def test_the_cpu_note_follows_device_0s_fall_back_not_the_message_text(tmp_path, model_path):
    """The note is added when resolve_device gave the CPU for device=0 and the backend then failed; it was added
    whenever the error's text held "CUDA device", here the name of a missing model file (a ModelError)."""
    clip = rgbs_clip(n=1)
    missing = tmp_path / "CUDA device" / "model.pth"
    with pytest.raises(vs.Error) as caught:
        vsesrgan.upscale(clip, model=str(missing))  # device=0, the default
    assert str(missing) in str(caught.value) and "device 0 runs on the CPU" not in str(caught.value)
    with _raises("tensorrt needs a CUDA device .*got cpu.*; device 0 runs on the CPU here: no CUDA GPU is available"):
        vsesrgan.upscale(clip, model=model_path, backend="tensorrt")


def test_out_of_memory_in_a_frame_is_the_cores_advice_naming_the_tile_argument(model_path, monkeypatch):
    """CUDA running out of memory inside a frame was torch's own OutOfMemoryError, traceback and all, in the frame's
    error; it is the core's one line (what the CLI prints), spelt with this filter's arguments: tile=, not --tile.
    The backend is the real torch backend whose batches fail as CUDA's allocator fails them."""
    from esrgan_video import upscaler as upscaler_mod
    from esrgan_video.runtime.base import CommonOptions
    from esrgan_video.runtime.torch_backend import TorchBackend

    class OutOfMemory(TorchBackend):
        def _infer(self, batch, stream):
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.11 GiB total "
                                              "capacity; 77.52 GiB already allocated)")

    monkeypatch.setattr(upscaler_mod, "make_backend",
                        lambda model, **kw: OutOfMemory(model, CommonOptions(device="cpu", precision="fp32")))
    clip = rgbs_clip(n=1, width=300, height=200)
    for kw, advice in (({}, "tile=48"), ({"tile": 128, "tile_pad": 8}, "tile=48")):
        with pytest.raises(vs.Error) as caught:
            vsesrgan.upscale(clip, model=model_path, device="cpu", backend="torch", **kw).get_frame(0)
        text = str(caught.value).strip()
        assert text.splitlines()[-1] == (
            "vapoursynth.Error: vsesrgan.upscale: frame 0: out of memory on cpu upscaling 300×200 frames in "
            + ("one tile of 300×200" if not kw else "6 tiles of 144×144")
            + f" input pixels, 1 at a time: use smaller tiles ({advice})")
        assert "--" not in text and "torch_backend.py" not in text and "OutOfMemoryError" not in text


def test_the_nan_count_is_the_upscalers_helper():
    """One count of NaN/Inf for Upscaler.upscale and this filter's _failure: float arrays and tensors, not integers."""
    from esrgan_video.upscaler import non_finite_count

    a = np.zeros((2, 3), np.float32)
    a[0, 1], a[1, 2] = np.nan, -np.inf
    assert non_finite_count(a) == 2 and non_finite_count(torch.from_numpy(a)) == 2
    assert non_finite_count(np.zeros((2, 2), np.uint16)) == 0 and non_finite_count([np.nan]) == 0


def test_flags_in_core_messages_become_arguments():
    from vsesrgan.filter import _as_arguments

    assert _as_arguments("Rerun with --precision fp32 (or keep") == "Rerun with precision='fp32' (or keep"
    assert _as_arguments("use --backend torch-tensorrt or --backend torch.") == \
        "use backend='torch-tensorrt' or backend='torch'."
    assert _as_arguments("use --scale 2 or --tile-pad, --device cuda:1") == "use scale=2 or tile_pad, device='cuda:1'"
    assert _as_arguments("use smaller tiles (--tile 16 with --tile-pad 24), or fewer frames in flight (--streams 1)") \
        == "use smaller tiles (tile=16 with tile_pad=24), or fewer frames in flight (num_streams=1)"
    # flags the filter has no argument for stay as they are (the CLI's)
    kept = "--devices 0,1, --size, the CLI's --reuse near"
    assert _as_arguments(kept) == kept


@pytest.mark.parametrize("name", ["anime_restoration.vpy", "film_10bit.vpy"])
def test_an_example_run_without_src_says_how_to_give_it(name):
    import runpy

    with pytest.raises(vs.Error, match=rf'^{name}: no video given; run it as vspipe -a src="\$PWD/.*" {name} -$'):
        runpy.run_path(str(EXAMPLES / name), init_globals={})
