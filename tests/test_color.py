"""Colour conversion: the standards' equations (computed here independently in float64), round-trip bounds,
chroma siting, and agreement with FFmpeg's swscale (through PyAV)."""

from __future__ import annotations

import av
import numpy as np
import pytest
import torch
from av.video.reformatter import Interpolation
from skimage import data

from esrgan_video.frames.color import (
    CHROMA_LOCATIONS,
    ColorSpec,
    alpha_to_float,
    float_to_alpha,
    planes_to_rgb,
    rgb_to_planes,
)
from esrgan_video.frames.pixel_formats import pixel_format
from esrgan_video.video.planes import frame_from_planes

# (Kr, Kb) as published: BT.709 table 3, BT.601 / SMPTE 170M, BT.2020 table 4, FCC, SMPTE 240M.
STANDARD_KR_KB = {1: (0.2126, 0.0722), 5: (0.299, 0.114), 6: (0.299, 0.114), 9: (0.2627, 0.0593), 4: (0.30, 0.11), 7: (0.212, 0.087)}

YUV444 = {8: "yuv444p", 10: "yuv444p10le", 12: "yuv444p12le", 16: "yuv444p16le"}


def _photo(h: int = 96, w: int = 128) -> torch.Tensor:
    img = data.astronaut()[120 : 120 + h, 180 : 180 + w]
    return torch.from_numpy(img.copy()).permute(2, 0, 1)[None].float() / 255


def _reference_forward(kr: float, kb: float) -> np.ndarray:
    kg = 1 - kr - kb
    return np.array(
        [[kr, kg, kb], [-kr / (2 * (1 - kb)), -kg / (2 * (1 - kb)), 0.5], [0.5, -kg / (2 * (1 - kr)), -kb / (2 * (1 - kr))]],
        dtype=np.float64,
    )


def _reference_scale(bits: int, full: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per-component (scale, offset) of H.273 section 8.3 / FFmpeg for Y, Cb, Cr."""
    if full:
        m = 2.0**bits - 1
        return np.array([m, m, m]), np.array([0.0, 2.0 ** (bits - 1), 2.0 ** (bits - 1)])
    k = 2.0 ** (bits - 8)
    return np.array([219 * k, 224 * k, 224 * k]), np.array([16 * k, 128 * k, 128 * k])


def _spec(matrix=1, full=False, loc="left"):
    return ColorSpec(matrix=matrix, primaries=1, transfer=1, full_range=full, chroma_location=loc)


# -- known values -------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "white", "black", "mid"), [("yuv420p", 235, 16, 128), ("yuv420p10le", 940, 64, 512), ("yuv444p12le", 3760, 256, 2048), ("yuv420p16le", 60160, 4096, 32768)])
def test_limited_range_white_and_black(name, white, black, mid):
    fmt = pixel_format(name)
    dtype = torch.uint8 if fmt.bits == 8 else torch.int32
    for code, expected in ((white, 1.0), (black, 0.0)):
        planes = [torch.full(s, v, dtype=dtype) for s, v in zip(fmt.plane_shapes(6, 4), (code, mid, mid))]
        rgb = planes_to_rgb(planes, fmt, _spec(1))
        assert rgb.shape == (1, 3, 4, 6) and rgb.dtype == torch.float32
        assert torch.allclose(rgb, torch.full_like(rgb, expected), atol=1e-6)


def test_full_range_white_and_primary_red():
    fmt = pixel_format("yuv444p")
    kr, kb = STANDARD_KR_KB[1]
    # pure red: Y = Kr, Cb = -Kr / (2(1-Kb)), Cr = 0.5
    y, cb, cr = kr * 255, 128 - kr / (2 * (1 - kb)) * 255, 128 + 0.5 * 255
    planes = [torch.full((2, 2), round(v), dtype=torch.int32) for v in (y, cb, cr)]
    rgb = planes_to_rgb(planes, fmt, _spec(1, full=True))[0, :, 0, 0]
    assert rgb[0] > 0.99 and rgb[1] < 0.01 and rgb[2] < 0.01
    white = [torch.full((2, 2), v, dtype=torch.uint8) for v in (255, 128, 128)]
    assert torch.allclose(planes_to_rgb(white, fmt, _spec(1, full=True)), torch.ones(1, 3, 2, 2), atol=1e-6)


@pytest.mark.parametrize("matrix", sorted(STANDARD_KR_KB))
@pytest.mark.parametrize("bits", [8, 10, 12, 16])
@pytest.mark.parametrize("full", [False, True])
def test_rgb_to_yuv_matches_the_standard_equations(matrix, bits, full):
    rng = np.random.default_rng(matrix * 100 + bits + full)
    rgb64 = rng.random((3, 8, 8))
    expected = np.einsum("ij,jhw->ihw", _reference_forward(*STANDARD_KR_KB[matrix]), rgb64)
    scale, offset = _reference_scale(bits, full)
    codes = expected * scale[:, None, None] + offset[:, None, None]
    fmt = pixel_format(YUV444[bits])
    ours = rgb_to_planes(torch.from_numpy(rgb64).float()[None], fmt, _spec(matrix, full))
    for c in range(3):
        got = ours[c].to(torch.int64).numpy()
        want = np.floor(codes[c] + 0.5)
        diff = np.abs(got - want)
        # float32 input: only values within 1e-3 of a rounding boundary may land on the other side
        near_tie = np.abs(codes[c] - np.floor(codes[c]) - 0.5) < 1e-3 * 2 ** (bits - 8)
        assert np.all((diff == 0) | ((diff == 1) & near_tie)), (c, diff.max())


@pytest.mark.parametrize("matrix", sorted(STANDARD_KR_KB))
@pytest.mark.parametrize("bits", [8, 10, 16])
@pytest.mark.parametrize("full", [False, True])
def test_yuv_to_rgb_is_the_inverse_of_the_standard_equations(matrix, bits, full):
    rng = np.random.default_rng(matrix + bits)
    fmt = pixel_format(YUV444[bits])
    scale, offset = _reference_scale(bits, full)
    lo = offset - np.array([0, 0.5, 0.5]) * scale  # keep colours roughly inside the gamut
    codes = np.stack([rng.integers(int(lo[c] + 0.3 * scale[c]), int(lo[c] + 0.7 * scale[c]), (5, 7)) for c in range(3)])
    inverse = np.linalg.inv(_reference_forward(*STANDARD_KR_KB[matrix]))
    want = np.einsum("ij,jhw->ihw", inverse, (codes - offset[:, None, None]) / scale[:, None, None])
    got = planes_to_rgb([torch.from_numpy(c.astype(np.int32)) for c in codes], fmt, _spec(matrix, full))[0].double().numpy()
    assert np.abs(got - np.clip(want, 0, 1)).max() < 2e-6


# -- round trips --------------------------------------------------------------------------------


def _roundtrip_bound(matrix: int, bits: int, full: bool) -> np.ndarray:
    """Largest RGB error (per channel, in [0,1] units) from rounding each Y/Cb/Cr code by at most 0.5."""
    inverse = np.linalg.inv(_reference_forward(*STANDARD_KR_KB[matrix]))
    scale, _ = _reference_scale(bits, full)
    return np.abs(inverse) @ (0.5 / scale)


@pytest.mark.parametrize("bits", [8, 10, 12, 16])
@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("matrix", [1, 6, 9])
def test_roundtrip_444_within_quantisation_bound(bits, full, matrix):
    rgb = _photo()
    fmt = pixel_format(YUV444[bits])
    spec = _spec(matrix, full)
    back = planes_to_rgb(rgb_to_planes(rgb, fmt, spec), fmt, spec)
    err = (back - rgb).abs().amax(dim=(0, 2, 3)).double().numpy()
    bound = _roundtrip_bound(matrix, bits, full)
    assert np.all(err <= bound + 1e-6), (err * 255, bound * 255)
    if bits == 8:
        assert err.max() * 255 <= 2.0  # about 1.6 codes at worst for 8-bit limited range
    if bits == 10:
        assert err.max() * 255 <= 0.5


@pytest.mark.parametrize("name", ["yuv420p", "yuv422p", "yuv420p10le", "nv12", "p010le", "yuv411p", "yuv440p"])
@pytest.mark.parametrize("loc", CHROMA_LOCATIONS)
@pytest.mark.parametrize("chroma_filter", ["bilinear", "bicubic"])
def test_roundtrip_subsampled_smooth_image(name, loc, chroma_filter):
    """Chroma of a linear colour ramp survives down- and upsampling (interior) up to quantisation."""
    fmt = pixel_format(name)
    h, w = 20, 27  # odd width: ceil-divided chroma
    yy, xx = torch.meshgrid(torch.linspace(0.1, 0.9, h), torch.linspace(0.2, 0.8, w), indexing="ij")
    rgb = torch.stack([xx, 0.5 * (xx + yy), yy])[None]
    spec = _spec(1, False, loc)
    back = planes_to_rgb(rgb_to_planes(rgb, fmt, spec), fmt, spec, chroma_filter=chroma_filter)
    my, mx = (max(4, 2 << log2) for log2 in (fmt.log2_chroma_h, fmt.log2_chroma_w))  # 4:1:1: 4 luma per chroma
    inner = (back - rgb)[..., my:-my, mx:-mx].abs().max().item()  # away from replicated edges
    bound = _roundtrip_bound(1, fmt.bits, False).max()
    assert inner <= bound + 0.2 / 255, inner * 255  # chroma of a ramp: linear, so exact up to rounding
    assert (back - rgb).abs().mean().item() * 255 < 1.0


def test_roundtrip_420_photo_error_is_small():
    rgb = _photo()
    fmt = pixel_format("yuv420p")
    spec = _spec(1)
    back = planes_to_rgb(rgb_to_planes(rgb, fmt, spec), fmt, spec)
    err = (back - rgb).abs() * 255
    assert err.mean() < 2.0
    # Luma does not depend on chroma (row 0 of the forward matrix times the inverse is [1, 0, 0]), so
    # wherever the result is not clipped to [0, 1], luma is kept to the accuracy of one Y code.
    kr, kb = STANDARD_KR_KB[1]
    weights = torch.tensor([kr, 1 - kr - kb, kb]).view(1, 3, 1, 1)
    luma_err = ((back - rgb) * weights).sum(1).abs() * 255
    unclipped = ((back > 1e-6) & (back < 1 - 1e-6)).all(1)
    assert unclipped.float().mean() > 0.9
    assert luma_err[unclipped].max() <= 0.5 * 255 / 219 + 1e-3


def test_roundtrip_gray_gbrp_rgb_identity():
    rgb = _photo()
    for name, bits in (("gbrp", 8), ("gbrp10le", 10), ("gbrp16le", 16), ("rgb24", 8), ("rgb48le", 16), ("rgba", 8)):
        fmt = pixel_format(name)
        spec = ColorSpec().resolved(128, 96, fmt)
        assert spec.matrix == 0 and spec.full_range
        back = planes_to_rgb(rgb_to_planes(rgb, fmt, spec), fmt, spec)
        assert (back - rgb).abs().max().item() <= 0.5 / (2**bits - 1) + 1e-6, name
    gray = rgb.mean(1, keepdim=True).expand(-1, 3, -1, -1)
    for name, bits in (("gray", 8), ("gray10le", 10), ("gray16le", 16)):
        fmt = pixel_format(name)
        for full in (False, True):
            spec = ColorSpec(full_range=full).resolved(128, 96, fmt)
            back = planes_to_rgb(rgb_to_planes(gray, fmt, spec), fmt, spec)
            step = (2**bits - 1) if full else 219 * 2 ** (bits - 8)
            assert (back - gray).abs().max().item() <= 0.5 / step + 1e-6, name


def test_untagged_gray_is_full_range_like_swscale():
    fmt = pixel_format("gray")
    spec = ColorSpec().resolved(16, 8, fmt)
    assert spec.full_range
    codes = np.arange(128, dtype=np.uint8).reshape(8, 16) * 2
    frame = av.VideoFrame(16, 8, "gray")
    frame.planes[0].update(np.pad(codes, ((0, 0), (0, frame.planes[0].line_size - 16))).tobytes())
    ref = frame.reformat(format="rgb24").to_ndarray()
    ours = planes_to_rgb([torch.from_numpy(codes)], fmt, spec)[0].permute(1, 2, 0) * 255
    assert np.array_equal(np.floor(ours.numpy() + 0.5), ref)
    limited = planes_to_rgb([torch.full((2, 2), 235, dtype=torch.uint8)], fmt, ColorSpec(full_range=False).resolved(2, 2, fmt))
    assert torch.allclose(limited, torch.ones(1, 3, 2, 2))


def test_gbrp_plane_order_and_values():
    fmt = pixel_format("gbrp10le")
    g, b, r = (torch.full((3, 4), v, dtype=torch.int32) for v in (100, 200, 1023))
    rgb = planes_to_rgb([g, b, r], fmt, ColorSpec(full_range=True).resolved(4, 3, fmt))[0, :, 0, 0]
    assert torch.allclose(rgb, torch.tensor([1023, 100, 200]) / 1023.0)
    planes = rgb_to_planes(torch.tensor([1.0, 0.0, 0.5]).view(1, 3, 1, 1).expand(1, 3, 3, 4), fmt, ColorSpec(full_range=True).resolved(4, 3, fmt))
    assert [int(p[0, 0]) for p in planes] == [0, 512, 1023]  # G, B, R


# -- chroma siting -------------------------------------------------------------------------------

# Position of chroma sample k in luma pixels for 2x subsampling: (x offset, y offset).
SITES = {"left": (0, 0.5), "center": (0.5, 0.5), "topleft": (0, 0), "top": (0.5, 0), "bottomleft": (0, 1), "bottom": (0.5, 1)}


@pytest.mark.parametrize("loc", CHROMA_LOCATIONS)
@pytest.mark.parametrize("chroma_filter", ["bilinear", "bicubic"])
def test_chroma_upsampling_lines_up_with_the_luma_grid(loc, chroma_filter):
    """Chroma is a ramp in chroma samples; upsampled, it must equal the ramp at each luma position."""
    fmt = pixel_format("yuv420p")
    h, w = 12, 16
    ch, cw = 6, 8
    ox, oy = SITES[loc]
    spec = ColorSpec(matrix=0, full_range=True, chroma_location=loc)  # identity: B = U/255, R = V/255
    u = (40 + 20 * torch.arange(cw)).view(1, cw).expand(ch, cw).to(torch.int32)  # horizontal ramp
    v = (40 + 20 * torch.arange(ch)).view(ch, 1).expand(ch, cw).to(torch.int32)  # vertical ramp
    y = torch.zeros(h, w, dtype=torch.int32)
    rgb = planes_to_rgb([y, u, v], fmt, spec, chroma_filter=chroma_filter)[0] * 255
    xs = torch.arange(w, dtype=torch.float64)
    ys = torch.arange(h, dtype=torch.float64)
    want_b = 40 + 20 * (xs - ox) / 2
    want_r = 40 + 20 * (ys - oy) / 2
    # interior: bicubic taps reach two chroma samples (four luma pixels) towards the replicated edges
    assert torch.allclose(rgb[2, 3, 4:-4].double(), want_b[4:-4], atol=1e-3), (rgb[2, 3], want_b)
    assert torch.allclose(rgb[0, 4:-4, 5].double(), want_r[4:-4], atol=1e-3), (rgb[0, :, 5], want_r)


@pytest.mark.parametrize("loc", CHROMA_LOCATIONS)
def test_chroma_downsampling_samples_at_the_chroma_site(loc):
    fmt = pixel_format("yuv420p")
    h, w = 12, 16
    ox, oy = SITES[loc]
    spec = ColorSpec(matrix=0, full_range=True, chroma_location=loc)
    xs = torch.arange(w, dtype=torch.float32)
    ys = torch.arange(h, dtype=torch.float32)
    rgb = torch.zeros(1, 3, h, w)
    rgb[0, 2] = (40 + 8 * xs).view(1, w) / 255  # B -> U: horizontal ramp
    rgb[0, 0] = (40 + 8 * ys).view(h, 1) / 255  # R -> V: vertical ramp
    _, u, v = rgb_to_planes(rgb, fmt, spec)
    k = torch.arange(1, 7, dtype=torch.float32)
    assert torch.equal(u[3, 1:7].float(), torch.floor(40 + 8 * (2 * k + ox) + 0.5))
    assert torch.equal(v[1:5, 3].float(), torch.floor(40 + 8 * (2 * k[:4] + oy) + 0.5))


def test_422_is_only_subsampled_horizontally():
    fmt = pixel_format("yuv422p")
    spec = ColorSpec(matrix=0, full_range=True, chroma_location="left")
    v = (40 + 20 * torch.arange(6)).view(6, 1).expand(6, 4).to(torch.int32)
    u = torch.full((6, 4), 100, dtype=torch.int32)
    rgb = planes_to_rgb([torch.zeros(6, 8, dtype=torch.int32), u, v], fmt, spec)[0] * 255
    assert torch.allclose(rgb[0, :, 3], (40 + 20 * torch.arange(6)).float(), atol=1e-3)


# -- agreement with FFmpeg (swscale) -----------------------------------------------------------

_SWS = Interpolation.BILINEAR | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT
_SWS_CS = {1: "ITU709", 6: "ITU601", 9: "BT2020"}


@pytest.mark.parametrize(
    ("name", "matrix", "full"),
    [("yuv420p", 1, False), ("yuv420p", 6, False), ("yuv420p", 1, True), ("yuv422p", 6, False), ("yuv444p", 1, False), ("yuv420p10le", 9, False), ("yuv444p10le", 1, False), ("yuv444p", 9, True), ("yuv440p", 1, False)],
)
def test_yuv_to_rgb_agrees_with_swscale(name, matrix, full):
    """swscale ignores chroma siting and interpolates centre-sited chroma; compare with that siting.

    Not compared: full-range high bit depth, where swscale scales codes by 2^(b-8) (10-bit white =
    1020) instead of H.273's 2^b - 1 (white = 1023), which we follow.
    """
    h, w = 96, 130
    rgb = _photo(h, w)
    fmt = pixel_format(name)
    spec = _spec(matrix, full, "center")
    planes = rgb_to_planes(rgb, fmt, spec)
    frame = frame_from_planes([p.numpy() for p in planes], name, w, h)
    rng = "JPEG" if full else "MPEG"
    # rgb24 even for 10-bit input: swscale's rgb48le output maps white to 65280 (x256, not x257),
    # 0.4 % off, and its 4:2:0 -> rgb48 path skips full chroma interpolation.
    ref = frame.reformat(format="rgb24", src_colorspace=_SWS_CS[matrix], dst_colorspace=_SWS_CS[matrix], src_color_range=rng, dst_color_range="JPEG", interpolation=_SWS).to_ndarray().astype(np.float64)
    ours = np.floor(planes_to_rgb(planes, fmt, spec, chroma_filter="bilinear")[0].permute(1, 2, 0).double().numpy() * 255 + 0.5)
    diff = np.abs(ours - ref)
    assert diff.mean() <= 0.05 and diff.max() <= 1.0, (diff.mean(), diff.max())


@pytest.mark.parametrize(("name", "matrix", "full"), [("yuv444p", 1, False), ("yuv444p", 6, True), ("yuv444p10le", 9, False)])
def test_rgb_to_yuv_agrees_with_swscale(name, matrix, full):
    h, w = 64, 80
    rgb = _photo(h, w)
    fmt = pixel_format(name)
    spec = _spec(matrix, full)
    rgb8 = (rgb[0].permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
    rng = "JPEG" if full else "MPEG"
    ref = av.VideoFrame.from_ndarray(rgb8, format="rgb24").reformat(format=name, src_colorspace=_SWS_CS[matrix], dst_colorspace=_SWS_CS[matrix], src_color_range="JPEG", dst_color_range=rng, interpolation=_SWS)
    ours = rgb_to_planes(torch.from_numpy(rgb8).permute(2, 0, 1)[None].float() / 255, fmt, spec)
    dtype = np.uint8 if fmt.bits == 8 else np.dtype("<u2")
    for i, (plane, mine) in enumerate(zip(ref.planes, ours)):
        arr = np.frombuffer(bytes(plane), dtype).reshape(plane.height, -1)[:, : plane.width].astype(np.int64)
        diff = mine.to(torch.int64).numpy() - arr
        if full and i > 0:
            # swscale truncates full-range chroma (its codes are 0.5 lower on average); we round.
            assert diff.min() >= 0 and diff.max() <= 1, (diff.min(), diff.max())
        else:
            assert np.abs(diff).max() <= 1 and np.abs(diff).mean() < 0.05, (np.abs(diff).max(), np.abs(diff).mean())


# -- resolution of unspecified tags ------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "matrix", "primaries"),
    [((1920, 1080), 1, 1), ((1280, 720), 1, 1), ((1279, 576), 6, 5), ((720, 576), 6, 5), ((720, 480), 6, 6), ((640, 577), 1, 1), ((176, 144), 6, 1)],
)
def test_mpv_rule_for_untagged_video(size, matrix, primaries):
    spec = ColorSpec().resolved(*size, pixel_format("yuv420p"))
    assert (spec.matrix, spec.primaries, spec.transfer, spec.full_range, spec.chroma_location) == (matrix, primaries, 1, False, "left")


def test_tagged_values_are_kept_and_format_defaults():
    spec = ColorSpec(9, 9, 16, True, "topleft").resolved(720, 480)
    assert spec == ColorSpec(9, 9, 16, True, "topleft")
    j = ColorSpec().resolved(640, 480, pixel_format("yuvj420p"))
    assert j.full_range and j.chroma_location == "center"
    assert ColorSpec(full_range=False).resolved(640, 480, pixel_format("yuvj420p")).full_range is False
    rgb = ColorSpec().resolved(640, 480, pixel_format("gbrp"))
    assert (rgb.matrix, rgb.full_range, rgb.transfer) == (0, True, 13)


def test_unsupported_and_unresolved_matrices_are_refused():
    fmt = pixel_format("yuv444p")
    planes = [torch.zeros(2, 2, dtype=torch.uint8)] * 3
    with pytest.raises(ValueError, match="constant-luminance"):
        planes_to_rgb(planes, fmt, _spec(10))
    with pytest.raises(ValueError, match="resolved"):
        planes_to_rgb(planes, fmt, ColorSpec())
    with pytest.raises(ValueError, match="unsupported colour matrix 8"):
        rgb_to_planes(torch.zeros(1, 3, 2, 2), fmt, _spec(8))
    with pytest.raises(ValueError, match="chroma_location"):
        ColorSpec(chroma_location="middle")
    with pytest.raises(ValueError, match="3 planes"):
        planes_to_rgb(planes[:2], fmt, _spec(1))


# -- shapes, dtypes, batches, alpha, clipping -----------------------------------------------------


def test_batches_and_plane_shapes():
    fmt = pixel_format("yuv420p10le")
    rgb = torch.rand(2, 3, 9, 11)
    planes = rgb_to_planes(rgb, fmt, _spec(1))
    assert [tuple(p.shape) for p in planes] == [(2, 9, 11), (2, 5, 6), (2, 5, 6)]
    assert all(p.dtype == torch.uint16 for p in planes)
    one = rgb_to_planes(rgb[:1], fmt, _spec(1))
    assert [tuple(p.shape) for p in one] == [tuple(s) for s in fmt.plane_shapes(11, 9)]
    assert [tuple(p.shape) for p in rgb_to_planes(rgb[:1], fmt, _spec(1), batched=True)] == [(1, 9, 11), (1, 5, 6), (1, 5, 6)]
    both = planes_to_rgb(planes, fmt, _spec(1))
    assert both.shape == (2, 3, 9, 11)
    assert torch.equal(both[1:], planes_to_rgb([p[1] for p in planes], fmt, _spec(1)))


def test_input_dtypes_agree():
    fmt = pixel_format("yuv420p10le")
    planes = rgb_to_planes(_photo(), fmt, _spec(1))
    ref = planes_to_rgb(planes, fmt, _spec(1))
    for conv in (lambda p: p.to(torch.int32), lambda p: p.to(torch.int32).to(torch.int16), lambda p: p.numpy()):
        assert torch.equal(planes_to_rgb([conv(p) for p in planes], fmt, _spec(1)), ref)


def test_semiplanar_equals_planar():
    rgb = _photo()
    spec = _spec(1)
    y, u, v = rgb_to_planes(rgb, pixel_format("yuv420p10le"), spec)
    py, puv = rgb_to_planes(rgb, pixel_format("p010le"), spec)
    assert torch.equal(py.to(torch.int32), y.to(torch.int32) << 6)
    assert torch.equal(puv[..., 0].to(torch.int32), u.to(torch.int32) << 6)
    assert torch.equal(planes_to_rgb([py, puv], pixel_format("p010le"), spec), planes_to_rgb([y, u, v], pixel_format("yuv420p10le"), spec))
    ny, nuv = rgb_to_planes(rgb, pixel_format("nv12"), spec)
    assert torch.equal(torch.stack(rgb_to_planes(rgb, pixel_format("yuv420p"), spec)[1:], -1), nuv)


def test_superwhite_is_kept_within_code_range():
    fmt = pixel_format("yuv444p")
    rgb = torch.tensor([1.05, 1.05, 1.05, 2.0, 2.0, 2.0, -0.05, -0.05, -0.05]).view(3, 3).T.reshape(1, 3, 1, 3)
    y, _, _ = rgb_to_planes(rgb, fmt, _spec(1))
    assert y.tolist() == [[int(np.floor(16 + 219 * 1.05 + 0.5)), 255, int(np.floor(16 - 10.95 + 0.5))]]
    assert y.tolist()[0][2] == 5  # sub-black is kept too (not clipped to 16)


def test_alpha_planes():
    fmt = pixel_format("yuva420p")
    rgb = _photo(8, 10)
    alpha = torch.linspace(0, 1, 80).view(1, 1, 8, 10)
    planes = rgb_to_planes(rgb, fmt, _spec(1), alpha=alpha)
    assert len(planes) == 4 and planes[3].shape == (8, 10)
    assert torch.equal(planes[3], float_to_alpha(alpha, fmt)[0])
    assert (alpha_to_float(planes[3], fmt) - alpha).abs().max() <= 0.5 / 255 + 1e-7
    assert rgb_to_planes(rgb, fmt, _spec(1))[3].min() == 255  # opaque by default
    # RGB ignores alpha
    assert torch.equal(planes_to_rgb(planes, fmt, _spec(1)), planes_to_rgb(planes[:3] + [planes[3] * 0], fmt, _spec(1)))
    rgba = pixel_format("rgba64le")
    packed = rgb_to_planes(rgb, rgba, ColorSpec().resolved(10, 8, rgba), alpha=alpha)[0]
    assert packed.shape == (8, 10, 4) and packed.dtype == torch.uint16
    assert (alpha_to_float(packed, rgba) - alpha).abs().max() <= 0.5 / 65535 + 1e-7


def test_colour_matrices_are_made_once_per_matrix_dtype_and_device():
    """A per-frame torch.tensor(matrix, device=cuda) is a blocking upload; the matrix tensor is cached."""
    from esrgan_video.frames.color import matrix_tensor
    from esrgan_video.frames.colorspace import Matrix

    cpu = torch.device("cpu")
    a = matrix_tensor("to_rgb", int(Matrix.BT709), torch.float32, cpu)
    assert matrix_tensor("to_rgb", int(Matrix.BT709), torch.float32, cpu) is a
    assert matrix_tensor("to_rgb", int(Matrix.BT601), torch.float32, cpu) is not a
    assert matrix_tensor("to_rgb", int(Matrix.BT709), torch.float64, cpu).dtype == torch.float64
    inv = matrix_tensor("to_yuv", int(Matrix.BT709), torch.float32, cpu)
    torch.testing.assert_close(a @ inv, torch.eye(3), atol=1e-6, rtol=0)
