"""What the "nothing lost" review of the CLI's outputs found lost, each pinned here (tests/media.py inputs,
``esrgan-video IN OUT`` with a near-identity x2 model)."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

import media
from esrgan_video.testing import run_cli
from esrgan_video.video.metadata import MOV_LANGUAGES, mov_language

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _mov_languages(path, codes):
    """Mux one silent AAC stream per language ``code`` into MOV ``path``; the languages read back."""
    with av.open(str(path), "w") as out:
        for code in codes:
            st = out.add_stream("aac", rate=48000, layout="mono")
            st.metadata["language"] = code
        for st in out.streams:
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), "float32"), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 48000, 0
            for pkt in [*st.encode(frame), *st.encode(None)]:
                out.mux(pkt)
    with av.open(str(path)) as c:
        return [s.metadata.get("language") for s in c.streams]


def test_mov_language_table_is_what_the_mov_muxer_keeps(tmp_path):
    # every code the table maps is dropped by FFmpeg's MOV muxer, and the code it maps to is kept
    dropped = _mov_languages(tmp_path / "from.mov", list(MOV_LANGUAGES))
    assert dropped == [None] * len(MOV_LANGUAGES)
    kept = _mov_languages(tmp_path / "to.mov", [mov_language(c) for c in MOV_LANGUAGES])
    assert kept == list(MOV_LANGUAGES.values())
    assert mov_language("eng") == "eng" and mov_language("jpn") == "jpn" and mov_language(None) is None


@pytest.mark.parametrize("ext", [".mov", ".mp4", ".mkv"])
def test_bibliographic_languages_survive_every_container(tmp_path, capfd, near_identity_file, ext):
    # Matroska's French/German tracks ("fre", "ger"; "deu" from other tools) went into .mov without a language
    src = media.make_clip(
        tmp_path / "in.mkv", frames=3, video_metadata={"language": "fre"},
        audio=[media.AudioTrack(language="fre"), media.AudioTrack(language="deu"), media.AudioTrack(language="eng")],
        subtitles=[media.SubtitleTrack(codec="ass", language="fre")])
    dst = tmp_path / f"out{ext}"
    r = run_cli(capfd, src, dst, "--model", near_identity_file(2), "--scale", "2", "--progress", "none")
    assert r.returncode == 0, r.stderr
    with av.open(str(dst)) as c:
        got = [s.metadata.get("language") for s in c.streams]
    same = {"fre": {"fre", "fra"}, "deu": {"deu", "ger"}, "eng": {"eng"}}
    assert [lang in same[want] for lang, want in zip(got, ["fre", "fre", "deu", "eng", "fre"])] == [True] * 5, got


def test_sar_kept_only_where_the_output_records_it():
    from esrgan_video.video.writer import sar_kept

    # FFmpeg's Matroska muxer through PyAV keeps only a SAR in the bitstream; VP8/VP9/AV1 carry none
    for codec in ("libvpx-vp9", "libvpx", "libsvtav1", "ffv1", "prores_ks", "rawvideo"):
        assert not sar_kept(codec, "matroska") and not sar_kept(codec, "webm"), codec
    for codec in ("libx264", "libx265", "mpeg4", "mjpeg"):
        assert sar_kept(codec, "matroska"), codec
    assert sar_kept("libvpx-vp9", "mp4") and sar_kept("libsvtav1", "mov") and sar_kept("ffv1", "mov")


def _display_aspect(path):
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        sar = s.sample_aspect_ratio or 1
        return Fraction(s.width, s.height) * (Fraction(sar) if sar else 1)


@pytest.mark.parametrize("ext, codec", [(".webm", None), (".mkv", "libsvtav1"), (".mp4", "libvpx-vp9")])
def test_anamorphic_display_aspect_survives_vp9_and_av1(tmp_path, capfd, near_identity_file, ext, codec):
    # VP9 into .webm wrote "SAR 8:9" in its summary but the file read back 1:1: the picture came out 3:2, not 4:3
    src = media.make_clip(tmp_path / "in.mkv", size=(72, 48), frames=2, sar=Fraction(8, 9))
    dst = tmp_path / f"out{ext}"
    args = ["--codec", codec] if codec else []
    r = run_cli(capfd, src, dst, "--model", near_identity_file(2), "--scale", "2", "--progress", "none", *args)
    assert r.returncode == 0, r.stderr
    assert _display_aspect(dst) == _display_aspect(src) == Fraction(4, 3)
