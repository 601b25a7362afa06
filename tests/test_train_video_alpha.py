"""A video with an alpha channel is read for training as its colour only, and the run says so (as it does for
an image with alpha)."""

from __future__ import annotations

import media

from esrgan_video.train.data import read_source


def test_a_video_with_alpha_is_read_as_colour_with_a_notice(tmp_path):
    clip = media.make_clip(tmp_path / "alpha.mkv", codec="ffv1", pix_fmt="yuva420p", size=(48, 32), frames=3)
    said = []
    frames, _ = read_source(str(clip), max_frames=10, notice=said.append)
    assert len(frames) == 3 and frames[0].shape == (3, 32, 48)
    assert [m for m in said if "alpha" in m] == [
        f"{clip}: the video has an alpha channel (yuva420p); training reads its colour only (what lies under "
        "transparent parts is trained on as it is stored)"]


def test_a_video_without_alpha_says_nothing_of_it(tmp_path):
    clip = media.make_clip(tmp_path / "plain.mkv", codec="ffv1", pix_fmt="yuv420p", size=(48, 32), frames=3)
    said = []
    read_source(str(clip), max_frames=10, notice=said.append)
    assert not [m for m in said if "alpha" in m]
