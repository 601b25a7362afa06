"""Output size planning (``esrgan_video.frames.sizing``): display aspect kept on anamorphic and square sources,
--fit pad|crop|stretch, --square-pixels, outputs that cannot store a SAR, and the on-device placement."""

from __future__ import annotations

from fractions import Fraction

import pytest
import torch

from esrgan_video.errors import OptionError
from esrgan_video.frames.sizing import SizePlan, output_size, place_rgb, plan_size, sar_storable

ANAMORPHIC = dict(width=160, height=120, sar=Fraction(32, 27))  # DAR 1.580, as a PAL-ish DVD crop
SQUARE_43 = dict(width=160, height=120, sar=Fraction(1))
YUV420 = (2, 2)


def dar(plan: SizePlan) -> float:
    return float(plan.display_aspect)


def test_default_keeps_frame_times_scale_and_the_sar():
    p = plan_size(**ANAMORPHIC, model_scale=4, multiple=YUV420)
    assert (p.width, p.height, p.sar, p.placed, p.notes) == (640, 480, Fraction(32, 27), False, ())
    assert plan_size(160, 120, model_scale=4, sar=None).sar == 1  # no SAR in the file: square


def test_one_side_derives_the_other_from_the_display_aspect():
    source_dar = 160 * 32 / 27 / 120
    w = plan_size(**ANAMORPHIC, model_scale=4, size=(1920, None), multiple=YUV420)
    assert (w.width, w.height, w.sar) == (1920, 1440, Fraction(32, 27))
    h = plan_size(**ANAMORPHIC, model_scale=4, size=(None, 1080), multiple=YUV420)
    assert h.height == 1080 and h.sar == Fraction(32, 27) and dar(h) == pytest.approx(source_dar, rel=2e-3)
    sq = plan_size(**ANAMORPHIC, model_scale=4, size=(1920, None), square_pixels=True, multiple=YUV420)
    assert (sq.width, sq.sar) == (1920, 1) and sq.height == 1216 and dar(sq) == pytest.approx(source_dar, rel=3e-3)
    assert plan_size(**SQUARE_43, model_scale=4, size="1280x").size == (1280, 960)


def test_both_sides_set_the_sar_that_keeps_the_display_aspect_and_say_so():
    # the cases: 160x120 SAR 32:27 at 1920x1080 kept SAR 32:27 (DAR 1.58 -> 2.11); 4:3 at 1280x720 became 16:9
    a = plan_size(**ANAMORPHIC, model_scale=4, size=(1920, 1080), multiple=YUV420)
    assert (a.width, a.height, a.sar) == (1920, 1080, Fraction(8, 9))
    assert dar(a) == pytest.approx(160 * 32 / 27 / 120, rel=1e-3)
    assert len(a.notes) == 1 and "8:9" in a.notes[0] and "1.58" in a.notes[0] and "--fit" in a.notes[0]
    s = plan_size(**SQUARE_43, model_scale=4, size=(1280, 720), multiple=YUV420)
    assert (s.size, s.sar, dar(s)) == ((1280, 720), Fraction(3, 4), pytest.approx(4 / 3))
    assert "3:4" in s.notes[0]
    # a size of the same shape changes nothing and says nothing
    same = plan_size(**SQUARE_43, model_scale=4, size=(1280, 960))
    assert (same.sar, same.notes) == (1, ())


@pytest.mark.parametrize("src", [ANAMORPHIC, SQUARE_43], ids=["anamorphic", "square43"])
def test_fit_pad_crop_stretch_make_square_pixel_frames(src):
    source_dar = src["width"] * src["sar"] / src["height"]
    pad = plan_size(**src, model_scale=4, size=(1920, 1080), fit="pad", multiple=YUV420)
    assert (pad.size, pad.sar) == ((1920, 1080), 1)
    pw, ph = pad.picture
    assert ph == 1080 and pw < 1920 and pw / ph == pytest.approx(float(source_dar), abs=1e-3)
    assert pad.offset == ((1920 - pw) // 2, 0)
    crop = plan_size(**src, model_scale=4, size=(1920, 1080), fit="crop", multiple=YUV420)
    cw, ch = crop.picture
    assert (crop.size, crop.sar) == ((1920, 1080), 1) and cw == 1920 and ch > 1080
    assert cw / ch == pytest.approx(float(source_dar), abs=1e-3) and crop.offset == (0, -((ch - 1080) // 2))
    st = plan_size(**src, model_scale=4, size=(1920, 1080), fit="stretch", multiple=YUV420)
    assert (st.size, st.sar, st.picture, st.offset) == ((1920, 1080), 1, (1920, 1080), (0, 0))
    assert "1.778" in st.notes[0]
    # a taller frame than the picture: pad adds bars above and below
    tall = plan_size(**src, model_scale=4, size=(1000, 1000), fit="pad")
    assert tall.picture[0] == 1000 and tall.offset[0] == 0 and tall.offset[1] > 0


def test_square_pixels_enlarge_a_side_so_no_detail_is_lost():
    wide = plan_size(**ANAMORPHIC, model_scale=4, square_pixels=True, multiple=YUV420)
    assert (wide.width, wide.height, wide.sar) == (758, 480, 1)  # 640 * 32/27 = 758.5 -> even 758
    assert "square pixels" in wide.notes[0]
    ntsc = plan_size(720, 480, sar=Fraction(8, 9), model_scale=4, square_pixels=True, multiple=YUV420)
    assert (ntsc.width, ntsc.height) == (2880, 2160)  # narrow pixels: taller frame, width kept
    # square sources are untouched
    assert plan_size(**SQUARE_43, model_scale=4, square_pixels=True).notes == ()
    with_sq_size = plan_size(**ANAMORPHIC, model_scale=4, size=(1920, 1080), square_pixels=True)
    assert with_sq_size.sar == 1 and with_sq_size.offset[0] > 0 and "--square-pixels" in with_sq_size.notes[0]


def test_outputs_without_a_sar_get_square_pixels_and_a_note():
    assert not sar_storable("ffv1", "matroska") and not sar_storable("prores_ks", "matroska")
    assert sar_storable("ffv1", "mov") and sar_storable("libx264", "matroska") and sar_storable("ffv1", None)
    p = plan_size(**ANAMORPHIC, model_scale=4, sar_storable=False, multiple=YUV420)
    assert (p.size, p.sar) == ((758, 480), 1) and "cannot store" in p.notes[0]
    both = plan_size(**SQUARE_43, model_scale=4, size=(1280, 720), sar_storable=False, multiple=YUV420)
    assert (both.size, both.sar, both.picture, both.offset) == ((1280, 720), 1, (960, 720), (160, 0))
    assert "cannot store" in both.notes[0]


def test_contradictions_are_option_errors_with_status_2():
    for kwargs in (dict(scale=3, size=(100, None)), dict(scale=0), dict(scale=-1.0), dict(fit="pad", size=(100, None)),
                   dict(fit="pad"), dict(fit="zoom", size=(10, 10))):
        with pytest.raises(OptionError) as e:
            plan_size(**SQUARE_43, model_scale=4, **kwargs)
        assert e.value.exit_code == 2


def test_output_size_of_square_pictures_is_unchanged():
    assert output_size(30, 22, model_scale=4, scale=1.5, multiple=(2, 2)) == (46, 34)
    assert output_size(160, 120, model_scale=4, size=(1000, 1000)) == (1000, 1000)
    assert output_size(160, 120, model_scale=2) == (320, 240)
    assert output_size(160, 120, model_scale=4, size=(None, 90)) == (120, 90)


def test_place_rgb_pads_crops_and_resizes():
    rgb = torch.rand(1, 3, 30, 40)
    pad = plan_size(40, 30, model_scale=1, size=(60, 30), fit="pad")
    y = place_rgb(rgb, pad)
    assert y.shape == (1, 3, 30, 60) and pad.picture == (40, 30) and pad.offset == (10, 0)
    assert torch.equal(y[..., 10:50], rgb) and y[..., :10].abs().max() == 0 and y[..., 50:].abs().max() == 0
    crop = plan_size(40, 30, model_scale=1, size=(40, 15), fit="crop")
    assert crop.picture == (40, 30) and crop.offset == (0, -7)
    assert torch.equal(place_rgb(rgb, crop), rgb[..., 7:22, :])
    stretch = plan_size(40, 30, model_scale=1, size=(20, 20), fit="stretch")
    assert place_rgb(rgb, stretch).shape == (1, 3, 20, 20)
    same = plan_size(40, 30, model_scale=1)
    assert place_rgb(rgb, same) is rgb
