"""frames.colorspace: the H.273 enums against VapourSynth's own constants and FFmpeg's tags (through PyAV)."""

from __future__ import annotations

import pickle

import av
import numpy as np
import pytest

from esrgan_video.frames.color import ColorSpec
from esrgan_video.frames.colorspace import (
    CHROMA_LOCATIONS,
    ChromaLocation,
    Matrix,
    Primaries,
    Range,
    Transfer,
    chroma_location_code,
    chroma_location_from_code,
)

vs = pytest.importorskip("vapoursynth")

# our member -> VapourSynth's constant (an independent table: VapourSynth's own numbering)
VS_MATRIX = {Matrix.RGB: "MATRIX_RGB", Matrix.BT709: "MATRIX_BT709", Matrix.UNSPECIFIED: "MATRIX_UNSPECIFIED",
             Matrix.FCC: "MATRIX_FCC", Matrix.BT470BG: "MATRIX_BT470_BG", Matrix.SMPTE170M: "MATRIX_ST170_M",
             Matrix.SMPTE240M: "MATRIX_ST240_M", Matrix.YCGCO: "MATRIX_YCGCO", Matrix.BT2020_NCL: "MATRIX_BT2020_NCL",
             Matrix.BT2020_CL: "MATRIX_BT2020_CL", Matrix.CHROMA_DERIVED_NCL: "MATRIX_CHROMATICITY_DERIVED_NCL",
             Matrix.CHROMA_DERIVED_CL: "MATRIX_CHROMATICITY_DERIVED_CL", Matrix.ICTCP: "MATRIX_ICTCP"}
VS_PRIMARIES = {Primaries.BT709: "PRIMARIES_BT709", Primaries.UNSPECIFIED: "PRIMARIES_UNSPECIFIED",
                Primaries.BT470M: "PRIMARIES_BT470_M", Primaries.BT470BG: "PRIMARIES_BT470_BG",
                Primaries.SMPTE170M: "PRIMARIES_ST170_M", Primaries.SMPTE240M: "PRIMARIES_ST240_M",
                Primaries.FILM: "PRIMARIES_FILM", Primaries.BT2020: "PRIMARIES_BT2020",
                Primaries.SMPTE428: "PRIMARIES_ST428", Primaries.SMPTE431: "PRIMARIES_ST431_2",
                Primaries.SMPTE432: "PRIMARIES_ST432_1", Primaries.EBU3213: "PRIMARIES_EBU3213_E"}
VS_TRANSFER = {Transfer.BT709: "TRANSFER_BT709", Transfer.UNSPECIFIED: "TRANSFER_UNSPECIFIED",
               Transfer.GAMMA22: "TRANSFER_BT470_M", Transfer.GAMMA28: "TRANSFER_BT470_BG",
               Transfer.SMPTE170M: "TRANSFER_BT601", Transfer.SMPTE240M: "TRANSFER_ST240_M",
               Transfer.LINEAR: "TRANSFER_LINEAR", Transfer.LOG100: "TRANSFER_LOG_100",
               Transfer.LOG316: "TRANSFER_LOG_316", Transfer.IEC61966_2_4: "TRANSFER_IEC_61966_2_4",
               Transfer.SRGB: "TRANSFER_IEC_61966_2_1", Transfer.BT2020_10: "TRANSFER_BT2020_10",
               Transfer.BT2020_12: "TRANSFER_BT2020_12", Transfer.PQ: "TRANSFER_ST2084",
               Transfer.SMPTE428: "TRANSFER_ST428", Transfer.HLG: "TRANSFER_ARIB_B67"}
VS_CHROMA = {ChromaLocation.LEFT: "CHROMA_LEFT", ChromaLocation.CENTER: "CHROMA_CENTER",
             ChromaLocation.TOP_LEFT: "CHROMA_TOP_LEFT", ChromaLocation.TOP: "CHROMA_TOP",
             ChromaLocation.BOTTOM_LEFT: "CHROMA_BOTTOM_LEFT", ChromaLocation.BOTTOM: "CHROMA_BOTTOM"}


@pytest.mark.parametrize("table", [VS_MATRIX, VS_PRIMARIES, VS_TRANSFER, VS_CHROMA], ids=["matrix", "primaries",
                                                                                          "transfer", "chroma"])
def test_vapoursynth_values_are_vapoursynths_constants(table):
    for member, const in table.items():
        assert member.vapoursynth == int(getattr(vs, const)), (member, const)
        assert type(member).from_vapoursynth(int(getattr(vs, const))) is member


def test_range_numbering_of_each_world():
    assert (Range.FULL.vapoursynth, Range.LIMITED.vapoursynth) == (int(vs.RANGE_FULL), int(vs.RANGE_LIMITED))
    assert (Range.FULL.ffmpeg, Range.LIMITED.ffmpeg) == (2, 1)  # AVCOL_RANGE_JPEG, AVCOL_RANGE_MPEG
    assert (Range.FULL.vapoursynth_legacy, Range.LIMITED.vapoursynth_legacy) == (0, 1)
    for r in Range:
        assert Range.from_ffmpeg(r.ffmpeg) is r and Range.from_vapoursynth(r.vapoursynth) is r
        assert Range.from_vapoursynth_legacy(r.vapoursynth_legacy) is r
    assert Range.from_ffmpeg(0) is None and Range.from_ffmpeg(None) is None and Range.from_ffmpeg(3) is None
    assert Range.from_vapoursynth(True) is None and Range.from_vapoursynth("1") is None
    assert Range.from_full(True) is Range.FULL and Range.from_full(None) is None


@pytest.mark.parametrize("loc", list(ChromaLocation))
def test_chroma_location_ffmpeg_values_survive_a_real_encode(loc, tmp_path):
    """The FFmpeg number we write for a siting is the one FFmpeg reads back under the same name (H.264's VUI
    carries all six; Matroska has no "bottom")."""
    path = tmp_path / "c.h264"
    with av.open(str(path), "w", format="h264") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 16, 16, "yuv420p"
        s.codec_context.chroma_sample_location = loc.ffmpeg
        frame = av.VideoFrame.from_ndarray(np.zeros((24, 16), np.uint8), format="yuv420p")
        c.mux(s.encode(frame))
        c.mux(s.encode(None))
    with av.open(str(path)) as c:
        got = next(c.decode(video=0)).chroma_location
    assert ChromaLocation.from_ffmpeg(got) is loc
    assert chroma_location_from_code(got) == loc.ffmpeg_name == CHROMA_LOCATIONS[loc]
    assert chroma_location_code(loc.ffmpeg_name) == loc.ffmpeg == got


def test_chroma_location_names_and_codes():
    assert chroma_location_code(None) == 0 and chroma_location_from_code(0) is None
    assert ChromaLocation.from_name("unspecified") is None and ChromaLocation.from_name("topleft").vapoursynth == 2
    with pytest.raises(ValueError, match="middle"):
        ChromaLocation.from_name("middle")
    with pytest.raises(ValueError, match="unknown chroma location code 9"):
        chroma_location_from_code(9)
    assert ChromaLocation.from_ffmpeg(9) is None and ChromaLocation.from_vapoursynth(6) is None


def test_reserved_and_newer_codes_pass_through_as_pseudo_members():
    m = Matrix(23)
    assert m == 23 and isinstance(m, Matrix) and m.name == "CODE_23" and Matrix(23) is m
    assert pickle.loads(pickle.dumps(m)) is m
    assert Transfer(0).name == "CODE_0" and not Transfer.UNSPECIFIED.is_specified and not Matrix(3).is_specified
    for bad in (256, -1, 1.5, "1"):
        with pytest.raises(ValueError):
            Primaries(bad)
    assert Matrix.GBR is Matrix.RGB and Matrix.BT601 is Matrix.SMPTE170M and Transfer.SRGB == 13
    assert Transfer.PQ.is_hdr and Transfer.HLG.is_hdr and not Transfer.BT709.is_hdr


def test_colorspec_holds_enums_and_accepts_ints():
    spec = ColorSpec(1, 9, 16, True, "topleft")
    assert spec.matrix is Matrix.BT709 and spec.primaries is Primaries.BT2020 and spec.transfer is Transfer.PQ
    assert spec == ColorSpec(Matrix.BT709, Primaries.BT2020, Transfer.PQ, True, "topleft")
    assert hash(spec) == hash(ColorSpec(Matrix.BT709, Primaries.BT2020, Transfer.PQ, True, "topleft"))
    assert spec.range is Range.FULL and spec.chroma_siting is ChromaLocation.TOP_LEFT
    assert ColorSpec().range is None and ColorSpec().chroma_siting is None
    assert ColorSpec(matrix=200).matrix.name == "CODE_200"
    for bad in (True, 256, "1", None):
        with pytest.raises(ValueError, match="H.273 code"):
            ColorSpec(matrix=bad)
