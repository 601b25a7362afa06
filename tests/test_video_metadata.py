"""video.metadata: the HDR side data written as encoder parameters (exact strings the encoders parse)."""

from __future__ import annotations

from fractions import Fraction as F

from esrgan_video.video.metadata import HdrMetadata

HDR10 = HdrMetadata(red=(F(34000, 50000), F(16000, 50000)), green=(F(13250, 50000), F(34500, 50000)),
                    blue=(F(7500, 50000), F(3000, 50000)), white_point=(F(15635, 50000), F(16450, 50000)),
                    min_luminance=F(1, 10000), max_luminance=F(1000), max_cll=1000, max_fall=400)


def test_x265_params():
    assert HDR10.x265_params() == [
        "master-display=G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1)", "max-cll=1000,400"]


def test_svtav1_params():
    assert HDR10.svtav1_params() == [
        "mastering-display=G(0.2650,0.6900)B(0.1500,0.0600)R(0.6800,0.3200)WP(0.3127,0.3290)L(1000.0000,0.0001)",
        "content-light=1000,400"]


def test_only_the_parts_present():
    light_only = HdrMetadata(max_cll=500)
    assert light_only.x265_params() == ["max-cll=500,0"] and light_only.svtav1_params() == ["content-light=500,0"]
    assert HdrMetadata(red=HDR10.red).x265_params() == []  # no luminance: no master-display
