"""What the "nothing lost" review of the CLI's outputs found lost, each pinned here (tests/media.py inputs,
``esrgan-video IN OUT`` with a near-identity x2 model)."""

from __future__ import annotations

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
