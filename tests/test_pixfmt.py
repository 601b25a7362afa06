"""Pixel-format descriptors, checked against FFmpeg's own descriptors and frame layouts (through PyAV)."""

from __future__ import annotations

import av
import numpy as np
import pytest

from esrgan_video.frames.pixel_formats import (
    SUPPORTED_PIX_FMTS,
    PixelFormat,
    is_supported,
    pixel_format,
    plane_layouts,
    round_size,
    size_multiple,
)

REQUIRED = [
    "yuv420p", "yuvj420p", "yuv422p", "yuv444p", "yuv420p10le", "yuv422p10le", "yuv444p10le",
    "yuv420p12le", "yuv422p12le", "yuv444p12le", "yuv420p16le", "yuv444p16le", "gray", "gray10le",
    "gray12le", "gray16le", "gbrp", "gbrp10le", "gbrp12le", "gbrp16le", "rgb24", "rgb48le", "rgba",
    "rgba64le", "gbrap", "yuva420p", "yuva444p", "nv12", "p010le",
    "bgr0", "rgb0", "0rgb", "0bgr", "bgra", "argb", "abgr",
]  # fmt: skip


def test_required_formats_are_supported():
    missing = [n for n in REQUIRED if n not in SUPPORTED_PIX_FMTS]
    assert not missing


@pytest.mark.parametrize("name", SUPPORTED_PIX_FMTS)
def test_descriptor_matches_ffmpeg(name):
    ours = pixel_format(name)
    ref = av.VideoFormat(name)
    assert ours.name == name
    assert ours.family == ("rgb" if ref.is_rgb else "gray" if len([c for c in ref.components if not c.is_alpha]) == 1 else "yuv")
    assert (ours.layout == "packed") == (not ref.is_planar and len(ref.components) > 1)
    assert ours.alpha == any(c.is_alpha for c in ref.components)
    assert ours.components == len(ref.components)
    assert {c.bits for c in ref.components} == {ours.bits}
    assert not ref.is_big_endian
    assert ours.chroma_size(7, 5) == (ref.chroma_width(7), ref.chroma_height(5))
    # Which plane holds which component: FFmpeg lists components as R,G,B(,A) / Y,U,V(,A) / Y(,A).
    names = {"rgb": "RGBA", "yuv": "YUVA", "gray": "YA"}[ours.family]
    for i, comp in enumerate(ref.components):
        letter = "A" if comp.is_alpha else names[i]
        holding = [p for p, comps in enumerate(ours.planes) if letter in comps]
        assert holding == [comp.plane], (letter, ours.planes)


@pytest.mark.parametrize("name", SUPPORTED_PIX_FMTS)
@pytest.mark.parametrize("size", [(7, 5), (16, 9), (1, 1)])
def test_plane_shapes_and_dtype_match_a_real_frame(name, size):
    width, height = size
    fmt = pixel_format(name)
    frame = av.VideoFrame(width, height, name)
    shapes = fmt.plane_shapes(width, height)
    assert len(shapes) == len(frame.planes) == fmt.nb_planes
    for shape, plane in zip(shapes, frame.planes):
        assert (shape[0], shape[1]) == (plane.height, plane.width)
        comps = shape[2] if len(shape) == 3 else 1
        assert plane.line_size >= plane.width * comps * fmt.bytes_per_sample
        assert plane.buffer_size >= plane.height * plane.width * comps * fmt.bytes_per_sample


@pytest.mark.parametrize("name", ["yuv420p", "yuv420p10le", "yuv444p16le", "gray", "gray12le", "gbrp10le"])
def test_sample_dtype_matches_pyav_arrays(name):
    arr = av.VideoFrame(16, 8, name).to_ndarray()
    assert arr.dtype == np.dtype(pixel_format(name).sample_dtype)


def test_gbrp_planes_are_g_b_r():
    rgb = np.zeros((2, 4, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 10, 20, 30  # R, G, B
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="gbrp")
    fmt = pixel_format("gbrp")
    values = {}
    for comps, plane in zip(fmt.planes, frame.planes):
        values[comps] = np.frombuffer(bytes(plane), np.uint8)[0]
    assert values == {"R": 10, "G": 20, "B": 30}
    assert fmt.planes == ("G", "B", "R")


def test_facts():
    f = pixel_format("yuv420p10le")
    assert (f.family, f.bits, f.subsampling, f.nb_planes, f.sample_dtype, f.max_code) == ("yuv", 10, (1, 1), 3, "uint16", 1023)
    assert pixel_format("yuvj420p").full_range and not pixel_format("yuv420p").full_range
    assert pixel_format("yuv422p").plane_shapes(5, 3) == ((3, 5), (3, 3), (3, 3))
    assert pixel_format("rgb48le").plane_shapes(5, 3) == ((3, 5, 3),)
    assert pixel_format("p010le").shift == 6 and pixel_format("p010le").layout == "semiplanar"
    assert pixel_format("rgba").layout == "packed" and pixel_format("rgba").alpha
    assert pixel_format("gbrap").alpha and pixel_format("gbrap").planar


@pytest.mark.parametrize(
    ("name", "kwargs", "expected"),
    [
        ("yuv420p", {"bits": 10}, "yuv420p10le"),
        ("yuv420p10le", {"bits": 8}, "yuv420p"),
        ("yuv420p", {"subsampling": "444"}, "yuv444p"),
        ("yuv444p12le", {"subsampling": (1, 0)}, "yuv422p12le"),
        ("yuv420p", {"bits": 16, "subsampling": "444"}, "yuv444p16le"),
        ("yuvj420p", {"bits": 10}, "yuv420p10le"),
        ("yuvj420p", {"subsampling": "444"}, "yuvj444p"),
        ("gray", {"bits": 12}, "gray12le"),
        ("gbrp", {"bits": 10}, "gbrp10le"),
        ("rgb24", {"bits": 16}, "rgb48le"),
        ("rgb24", {"bits": 10}, "gbrp10le"),
        ("yuva420p", {"alpha": False}, "yuv420p"),
        ("nv12", {"bits": 10}, "yuv420p10le"),
        ("yuv420p", {}, "yuv420p"),
    ],
)
def test_same_family(name, kwargs, expected):
    assert pixel_format(name).same_family(**kwargs).name == expected


def test_same_family_without_a_match_names_the_request():
    with pytest.raises(ValueError, match="14 bits"):
        pixel_format("yuv420p").same_family(bits=14)
    with pytest.raises(ValueError, match="subsampling"):
        pixel_format("yuv420p").same_family(subsampling="410")


@pytest.mark.parametrize("name", ["pal8", "yuv420p10be", "bayer_rggb8", "", None])
def test_unsupported_format_is_a_clear_value_error(name):
    with pytest.raises(ValueError, match="unsupported pixel format") as info:
        pixel_format(name)
    assert repr(name) in str(info.value) and "gray" in str(info.value) and "YUV" in str(info.value)


def test_descriptor_is_frozen_and_hashable():
    f = pixel_format("yuv420p")
    assert isinstance(f, PixelFormat) and hash(f) == hash(pixel_format("yuv420p"))
    with pytest.raises(AttributeError):
        f.bits = 10  # type: ignore[misc]
    with pytest.raises(ValueError):
        f.plane_shapes(0, 4)


# -- plane layouts, size multiples, the descriptor's facts (merged here from video.formats) ---------------


@pytest.mark.parametrize("name", SUPPORTED_PIX_FMTS)
@pytest.mark.parametrize("size", [(64, 48), (63, 47)])
def test_plane_layouts_match_ffmpeg_frames(name, size):
    """Shapes and row bytes agree with what FFmpeg allocates (line_size ≥ row bytes, plane count)."""
    frame = av.VideoFrame(size[0], size[1], name)
    lays = plane_layouts(name, *size)
    assert len(lays) == len(frame.planes)
    for lay, plane in zip(lays, frame.planes):
        assert lay.shape[0] == plane.height
        assert lay.row_bytes <= plane.line_size
        assert lay.row_bytes == plane.width * np.prod(lay.shape[2:], dtype=int) * lay.dtype.itemsize
    assert is_supported(name)
    assert lays == pixel_format(name).plane_layouts(*size)


def test_format_facts_and_sizes():
    f = pixel_format("yuv422p10le")
    assert (f.family, f.bits, f.log2_chroma_w, f.log2_chroma_h, f.planar) == ("yuv", 10, 1, 0, True)
    assert pixel_format("gbrp").family == "rgb" and pixel_format("gray10le").family == "gray"
    assert size_multiple("yuv420p") == (2, 2) and size_multiple("yuv422p") == (2, 1)
    assert size_multiple("yuv444p") == (1, 1) and pixel_format("yuv420p").size_multiple == (2, 2)
    assert round_size(255, 143, "yuv420p") == (256, 144)
    assert round_size(255, 143, "yuv444p") == (255, 143)
    assert round_size(1, 1, "yuv420p") == (2, 2)
    assert not is_supported("uyvy422") and not is_supported("bayer_rggb8") and not is_supported(None)
    assert (pixel_format("yuv420p10le").description, pixel_format("bgr0").description,
            pixel_format("gray16le").description) == ("10-bit YUV 4:2:0", "8-bit RGB", "16-bit gray")


# -- packed RGB (#14.9): every byte order FFmpeg decoders hand out ---------------------------------------

PACKED_RGB = ["rgb24", "bgr24", "rgba", "bgra", "argb", "abgr", "rgb0", "bgr0", "0rgb", "0bgr",
              "rgb48le", "bgr48le", "rgba64le", "bgra64le"]


@pytest.mark.parametrize("name", PACKED_RGB)
def test_packed_rgb_component_order_is_the_memory_order(name):
    """Each letter of the packed plane sits where FFmpeg's swscale puts that component (R, G, B, A distinct)."""
    fmt = pixel_format(name)
    assert name in SUPPORTED_PIX_FMTS and fmt.family == "rgb" and fmt.layout == "packed"
    deep = fmt.bits > 8
    values = {"R": 10, "G": 20, "B": 30, "A": 40}
    src = np.zeros((2, 3, 4), np.uint16 if deep else np.uint8)
    for i, c in enumerate("RGBA"):
        src[..., i] = values[c] * (257 if deep else 1)
    frame = av.VideoFrame.from_ndarray(src, format="rgba64le" if deep else "rgba").reformat(format=name)
    layout = fmt.plane_layouts(3, 2)[0]
    row = np.frombuffer(bytes(frame.planes[0]), np.uint8)[: layout.row_bytes].view(layout.dtype)
    pixel = row[: len(fmt.planes[0])]
    for letter, got in zip(fmt.planes[0], pixel):
        if letter in values:  # swscale may round 16-bit shuffles by a code; the values are 2570 apart
            assert abs(int(got) - values[letter] * (257 if deep else 1)) <= (2 if deep else 0), (name, letter, pixel)
    assert fmt.components == (4 if fmt.alpha else 3)
    assert fmt.alpha == ("A" in fmt.planes[0])


@pytest.mark.parametrize(("name", "kwargs", "expected"), [
    ("bgr0", {"alpha": True}, "bgra"),
    ("bgra", {"alpha": False}, "bgr0"),
    ("argb", {"alpha": False}, "0rgb"),
    ("rgb24", {"alpha": True}, "rgba"),
    ("bgr0", {"bits": 16}, "bgr48le"),
    ("0rgb", {"bits": 10}, "gbrp10le"),
])
def test_same_family_keeps_the_component_order(name, kwargs, expected):
    assert pixel_format(name).same_family(**kwargs).name == expected
