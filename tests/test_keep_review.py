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


def _remux_all_dispositions(tmp_path, ext, codec="libx264", audio="aac"):
    """A clip with one audio stream per disposition the table knows, remuxed into ``ext``; (path, {index: flag})."""
    from esrgan_video.video.metadata import DISPOSITION_FLAGS

    names = list(DISPOSITION_FLAGS)
    base = media.make_clip(tmp_path / f"base.{ext}", codec=codec, frames=2,
                           audio=[media.AudioTrack(codec=audio)] * len(names))
    want = {i + 1: DISPOSITION_FLAGS[n] for i, n in enumerate(names)}
    return media.remux_with(base, tmp_path / f"all.{ext}", dispositions=want), want, names


@pytest.mark.parametrize("muxer, ext, codec, audio", [("matroska", "mkv", "libx264", "aac"),
                                                      ("mp4", "mp4", "libx264", "aac"), ("mov", "mov", "libx264", "aac"),
                                                      ("webm", "webm", "libvpx-vp9", "libopus")])
def test_dispositions_kept_table_is_what_the_muxers_keep(tmp_path, muxer, ext, codec, audio):
    from esrgan_video.video.metadata import DISPOSITIONS_KEPT, dispositions_lost

    path, want, names = _remux_all_dispositions(tmp_path, ext, codec, audio)
    with av.open(str(path)) as c:
        kept = {n for n, (i, bit) in zip(names, want.items()) if int(c.streams[i].disposition) & bit}
    assert kept == DISPOSITIONS_KEPT[muxer]
    assert dispositions_lost(64 | 128 | 1, muxer) == [n for n in ("forced", "hearing_impaired") if n not in kept]
    assert dispositions_lost(64, "mpegts") == []  # not measured: nothing said


def test_dispositions_mov_cannot_store_are_told(tmp_path, capfd, near_identity_file):
    # MOV keeps only "default": a forced or hearing-impaired subtitle track into .mov lost its flags without a word
    D = av.stream.Disposition
    base = media.make_clip(tmp_path / "base.mkv", frames=3, audio=[media.AudioTrack()],
                           subtitles=[media.SubtitleTrack(codec="subrip"), media.SubtitleTrack(codec="ass")])
    src = media.remux_with(base, tmp_path / "in.mkv",
                           dispositions={0: D.default, 1: D.default, 2: D.forced, 3: D.default | D.hearing_impaired})
    args = ["--model", near_identity_file(2), "--scale", "2", "--progress", "none"]
    r = run_cli(capfd, src, tmp_path / "out.mov", *args)
    assert r.returncode == 0, r.stderr
    assert ("dispositions the .mov container cannot store are not written: forced (#2); hearing_impaired (#3) "
            "(.mkv keeps them)") in r.stderr
    with av.open(str(tmp_path / "out.mov")) as c:
        assert [int(s.disposition) & int(D.default) for s in c.streams] == [1, 1, 0, 1]  # default still kept
    for ext in (".mkv", ".mp4"):  # both keep forced and hearing impaired: nothing to say
        r = run_cli(capfd, src, tmp_path / f"out{ext}", *args)
        assert r.returncode == 0 and "cannot store are not written" not in r.stderr, r.stderr
        with av.open(str(tmp_path / f"out{ext}")) as c:
            assert int(c.streams[2].disposition) & int(D.forced)
            assert int(c.streams[3].disposition) & int(D.hearing_impaired)


@pytest.mark.parametrize("ext, key", [(".mkv", "title"), (".mov", "name"), (".mp4", "name")])
def test_mp4_track_titles_survive(tmp_path, capfd, near_identity_file, ext, key):
    # FFmpeg reads an MP4/MOV track title back as "name": it became a Matroska NAME tag, and .mov/.mp4 dropped it
    src = media.make_clip(tmp_path / "in.mp4", frames=3, video_metadata={"title": "Vid"},
                          audio=[media.AudioTrack(language="eng", title="Main")],
                          subtitles=[media.SubtitleTrack(codec="mov_text", language="eng", title="Subs")])
    dst = tmp_path / f"out{ext}"
    r = run_cli(capfd, src, dst, "--model", near_identity_file(2), "--scale", "2", "--progress", "none")
    assert r.returncode == 0, r.stderr
    with av.open(str(dst)) as c:
        assert [s.metadata.get(key) for s in c.streams] == ["Vid", "Main", "Subs"]
        assert not any("NAME" in s.metadata for s in c.streams)


@pytest.mark.parametrize("inext", [".mp4", ".mov"])
@pytest.mark.parametrize("ext", [".mkv", ".mp4", ".mov"])
def test_mp4_with_chapters_upscales_and_keeps_them(tmp_path, capfd, near_identity_file, inext, ext):
    # FFmpeg's MOV demuxer shows an MP4/MOV's chapter text track as a data stream it discards; copying it failed
    # every run on such a file (exit 6: 'the .mkv container cannot hold the data stream #2', .mp4 and .mov too)
    src = media.make_clip(tmp_path / f"in{inext}", frames=10, audio=[media.AudioTrack(language="eng")],
                          chapters=[media.Chapter(0, 0.2, "One"), media.Chapter(0.2, 0.4, "Two")])
    dst = tmp_path / f"out{ext}"
    r = run_cli(capfd, src, dst, "--model", near_identity_file(2), "--scale", "2", "--progress", "none")
    assert r.returncode == 0, r.stderr
    with av.open(str(dst)) as c:
        assert [ch["metadata"].get("title") for ch in c.chapters()] == ["One", "Two"]
        assert [round(float(ch["start"] * ch["time_base"]), 3) for ch in c.chapters()] == [0.0, 0.2]
        assert [s.type for s in c.streams if s.type != "data"] == ["video", "audio"]


@pytest.mark.parametrize("ext", [".mkv", ".mp4"])
def test_matroska_cover_art_stays_cover_art(tmp_path, capfd, near_identity_file, ext):
    # a cover.jpg attachment came out of .mkv → .mkv as a second, plain mjpeg video track (no cover flag)
    jpg = media.small_jpeg()
    src = media.make_clip(tmp_path / "in.mkv", frames=3, attachments=[("cover.jpg", "image/jpeg", jpg)])
    dst = tmp_path / f"out{ext}"
    r = run_cli(capfd, src, dst, "--model", near_identity_file(2), "--scale", "2", "--progress", "none")
    assert r.returncode == 0, r.stderr
    with av.open(str(dst)) as c:
        covers = [s for s in c.streams if s.disposition & av.stream.Disposition.attached_pic]
        assert [s.codec_context.name for s in covers] == ["mjpeg"] and len(c.streams.video) == 2
        if ext == ".mkv":
            assert covers[0].metadata.get("filename") == "cover.jpg"
            assert covers[0].metadata.get("mimetype") == "image/jpeg"
        assert bytes(next(c.demux(covers[0]))) == jpg
