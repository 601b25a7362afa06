"""A recording's date survives the upscale: ``creation_time`` (what a phone or camera writes, what photo libraries
sort by) on the file and on its streams was dropped as a key "the muxer writes itself" (reader.MUXER_KEYS), but the
writer's bitexact muxers write none, so an upscaled phone video had no date at all (``ffmpeg -i in out`` keeps it)."""

from __future__ import annotations

from pathlib import Path

import av
import pytest

from media import AudioTrack, make_clip

WHEN = "2020-01-02T03:04:05.000000Z"


@pytest.mark.parametrize("ext", [".mp4", ".mov", ".mkv"])
def test_creation_time_is_kept(tmp_path: Path, capfd, near_identity_file, ext: str) -> None:
    from esrgan_video.testing import run_cli

    src = make_clip(tmp_path / f"in{ext}", frames=3, metadata={"creation_time": WHEN},
                    video_metadata={"creation_time": WHEN}, audio=[AudioTrack()])
    dst = tmp_path / f"out{ext}"
    r = run_cli(capfd, src, dst, "--model", near_identity_file(2), "--progress", "none")
    assert r.returncode == 0, r.stderr
    with av.open(str(src)) as i, av.open(str(dst)) as o:
        assert o.metadata.get("creation_time") == i.metadata.get("creation_time") == WHEN
        # MP4/MOV carry it per track too (Matroska has one date for the file)
        assert [s.metadata.get("creation_time") for s in o.streams] == [
            s.metadata.get("creation_time") for s in i.streams]
