"""The other streams of an input: every disposition, language and title survives (#14.6); text subtitles become
mov_text in MP4/MOV, bitmap ones are refused there in one line (#14.10); stream selection (--no-audio, --no-subs,
--streams-keep); encoder chatter only with --verbose (#14.8). Made with PyAV (tests/media.py)."""

from __future__ import annotations

from pathlib import Path

import av
import pytest

import media
from esrgan_video.errors import OptionError, OutputError
from esrgan_video.video.reader import open_input
from esrgan_video.video.stream_copy import StreamSelection, is_bitmap_subtitle, is_text_subtitle, shifted_chapters
from esrgan_video.video.writer import OutputVideo, partial_path
from esrgan_video.testing import run_cli

D = av.stream.Disposition
DISPOSITIONS = {0: D.default, 1: D.default, 2: D.comment, 3: D.default | D.hearing_impaired, 4: D.forced,
                5: D.visual_impaired}
DVD_SUB = b"\x00\x10\x00\x0c\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff"


@pytest.fixture(scope="module")
def tracks(tmp_path_factory) -> dict[str, Path]:
    """Video + two audio + SRT + ASS (+ a DVD bitmap subtitle), each stream with a language, a title and
    dispositions: the fansub/remux case of the issue."""
    d = tmp_path_factory.mktemp("tracks")
    base = media.make_clip(
        d / "base.mkv", frames=10, video_metadata={"language": "jpn", "title": "Picture"},
        audio=[media.AudioTrack(language="jpn", title="Main"),
               media.AudioTrack(codec="flac", layout="mono", language="eng", title="Commentary")],
        subtitles=[media.SubtitleTrack("subrip", language="eng", title="Full"),
                   media.SubtitleTrack("ass", events=((0.1, 0.25, "Sign"),), language="fra", title="Signs")])
    text = media.remux_with(base, d / "text.mkv", dispositions=DISPOSITIONS)
    bitmap = media.remux_with(base, d / "bitmap.mkv", dispositions=DISPOSITIONS,
                              metadata={5: {"language": "deu", "title": "DVD"}},
                              extra=[("dvd_subtitle", DVD_SUB, 0.1)])
    return {"text": text, "bitmap": bitmap}


def copy_through(src: Path, dst: Path, **kw) -> OutputVideo:
    with open_input(src) as inp, OutputVideo(dst, template=inp, **kw) as out:
        for f in inp.frames():
            out.write(f.planes, f.pts)
    return out


def facts(path: Path) -> list[tuple[str, str, int, str | None, str | None]]:
    with av.open(str(path)) as c:
        return [(s.type, s.codec_context.name if s.codec_context else "", int(s.disposition),
                 s.metadata.get("language"), s.metadata.get("title")) for s in c.streams]


def cues(path: Path, index: int) -> list[tuple[float, bytes]]:
    with av.open(str(path)) as c:
        st = c.streams[index]
        out = []
        for p in c.demux(st):
            if p.size > 2:  # MP4's empty gap samples are 2 bytes
                out += [(round(float(p.pts * p.time_base), 3), sub.dialogue) for sub in st.codec_context.decode(p)]
        return out


def test_every_disposition_language_and_title_survive(tmp_path, tracks):
    for src in (tracks["text"], tracks["bitmap"]):
        dst = tmp_path / f"out_{src.stem}.mkv"
        copy_through(src, dst)
        assert facts(dst) == facts(src), src.name
    video = facts(tmp_path / "out_text.mkv")[0]
    assert video == ("video", "h264", int(D.default), "jpn", "Picture")  # the 1 -> 0


def test_text_subtitles_become_mov_text_in_mp4(tmp_path, tracks):
    said: list[str] = []
    dst = tmp_path / "out.mp4"
    copy_through(tracks["text"], dst, notice=said.append)
    got = facts(dst)
    assert [f[:2] for f in got] == [("video", "h264"), ("audio", "aac"), ("audio", "flac"),
                                    ("subtitle", "mov_text"), ("subtitle", "mov_text")]
    assert [f[3] for f in got] == ["jpn", "jpn", "eng", "eng", "fra"]
    assert got[0][2] & D.default and got[1][2] & D.default  # MP4 keeps default (its track-enabled flag)
    assert cues(dst, 3) == [(0.0, b"Hello"), (0.2, b"World")] and cues(dst, 4) == [(0.1, b"Sign")]
    assert [n for n in said if "mov_text" in n] == [
        f"{dst}: text subtitle streams #3 (srt), #4 (ssa) converted to mov_text (the only subtitle codec "
        ".mp4 files take)"]
    with open_input(tracks["text"]) as inp, pytest.raises(OutputError) as e:  # MOV takes no FLAC: said, not a crash
        OutputVideo(tmp_path / "out.mov", template=inp)
    assert str(e.value) == f"{tmp_path / 'out.mov'}: the .mov container cannot hold the audio stream #2 (flac); use .mkv instead"
    copy_through(tracks["text"], tmp_path / "out.mov", selection=StreamSelection(keep=(1, 3, 4)))
    assert [f[1] for f in facts(tmp_path / "out.mov")] == ["h264", "aac", "mov_text", "mov_text"]


def test_bitmap_subtitles_refused_in_mp4_with_one_line(tmp_path, tracks):
    dst = tmp_path / "out.mp4"
    with open_input(tracks["bitmap"]) as inp, pytest.raises(OutputError) as e:
        OutputVideo(dst, template=inp)
    assert str(e.value) == (f"{dst}: the .mp4 container cannot hold the bitmap subtitle stream #5 (dvdsub), and "
                            "picture subtitles cannot be turned into text; use .mkv, or leave subtitles out with --no-subs")
    assert not dst.exists() and not partial_path(dst).exists()
    copy_through(tracks["bitmap"], dst, selection=StreamSelection(subtitles=False))
    assert [f[0] for f in facts(dst)] == ["video", "audio", "audio"]
    assert is_bitmap_subtitle("dvd_subtitle") and is_text_subtitle("subrip") and not is_text_subtitle("hdmv_pgs_subtitle")


def test_stream_selection(tmp_path, tracks):
    copy_through(tracks["text"], tmp_path / "a.mkv", selection=StreamSelection(audio=False))
    assert [f[0] for f in facts(tmp_path / "a.mkv")] == ["video", "subtitle", "subtitle"]
    copy_through(tracks["text"], tmp_path / "s.mkv", selection=StreamSelection(subtitles=False))
    assert [f[0] for f in facts(tmp_path / "s.mkv")] == ["video", "audio", "audio"]
    copy_through(tracks["text"], tmp_path / "k.mkv", selection=StreamSelection(keep=(2, 4)))
    assert [(f[0], f[4]) for f in facts(tmp_path / "k.mkv")] == [("video", "Picture"), ("audio", "Commentary"),
                                                                  ("subtitle", "Signs")]


def test_stream_options_from_the_command_line(tmp_path):
    from esrgan_video.cli.main import _upscale_parser
    from esrgan_video.cli.arguments import upscale_options

    args = _upscale_parser().parse_args(["in.mkv", "out.mp4", "--no-audio", "--streams-keep", "3, 1", "--verbose"])
    enc = upscale_options(args).encode
    assert (enc.audio, enc.subtitles, enc.streams_keep, enc.verbose) == (False, True, (1, 3), True)
    args = _upscale_parser().parse_args(["in.mkv", "out.mp4", "--no-subs"])
    assert upscale_options(args).encode.subtitles is False
    with pytest.raises(OptionError, match="--streams-keep: expected stream indices"):
        upscale_options(_upscale_parser().parse_args(["in.mkv", "out.mp4", "--streams-keep", "audio"]))


def test_chapters_shifted_and_cut():
    chapters = [{"id": 1, "start": 0, "end": 300, "time_base": "1/1000", "metadata": {"title": "A"}},
                {"id": 2, "start": 300, "end": 650, "time_base": "1/1000", "metadata": {"title": "B"}}]
    from fractions import Fraction

    got = shifted_chapters(chapters, base=Fraction(0), t0=Fraction(1, 5), t1=Fraction(1, 2), shift=Fraction(1, 5))
    assert [(c["id"], c["start"], c["end"]) for c in got] == [(1, 0, 100), (2, 100, 300)]
    assert shifted_chapters(chapters, base=Fraction(0), t0=Fraction(7, 10), t1=None, shift=Fraction(0)) == []


@pytest.fixture(scope="module")
def tiny_model(near_identity_file) -> Path:
    return near_identity_file(1)


cli = run_cli


def test_cli_fansub_file_to_mp4_and_chatter_only_with_verbose(tmp_path, tracks, tiny_model, capfd):
    dst = tmp_path / "out.mp4"
    p = cli(capfd, tracks["text"], dst, "--model", tiny_model, "--device", "cpu", "--codec", "libx265", "--end", "2f")
    assert p.returncode == 0, p.stderr
    assert "converted to mov_text" in p.stderr
    assert "x265 [" not in p.stderr and "[info]" not in p.stderr  # no encoder chatter by default
    assert [f[1] for f in facts(dst)] == ["hevc", "aac", "flac", "mov_text", "mov_text"]
    p = cli(capfd, tracks["text"], tmp_path / "v.mkv", "--model", tiny_model, "--device", "cpu", "--codec", "libx265",
            "--end", "2f", "--verbose", "--no-audio", "--streams-keep", "0,4")
    assert p.returncode == 0, p.stderr
    assert "x265 [info]" in p.stderr  # --verbose: the encoder's own log
    assert [(f[0], f[4]) for f in facts(tmp_path / "v.mkv")] == [("video", "Picture"), ("subtitle", "Signs")]
    from esrgan_video.video.chatter import show_ffmpeg_log

    show_ffmpeg_log(False)  # back to PyAV's silence for the tests that follow in this process


def test_segment_join_copies_streams_as_a_single_pass_does(tmp_path, tracks):
    """batch's join goes through the same stream copier: facts, dispositions, mov_text conversion and cues equal
    the single pass's (#13.3)."""
    from fractions import Fraction

    from esrgan_video.video.segment_join import join_segments

    src = tracks["text"]
    cut = Fraction(5, 25)
    parts = []
    for i, (start, end) in enumerate([(None, cut), (cut, None)]):
        part = tmp_path / f"part{i}.mkv"
        with open_input(src) as inp, OutputVideo(part, template=inp, codec="ffv1", copy_streams=False, start=start,
                                                 end=end, shift_timestamps=False) as out:
            for f in inp.frames(start=start, end=end):
                out.write(f.planes, f.pts)
        parts.append(part)
    for ext in (".mkv", ".mp4"):
        said: list[str] = []
        joined = join_segments(src, parts, tmp_path / f"joined{ext}", notice=said.append).output
        single = copy_through(src, tmp_path / f"single{ext}", codec="ffv1" if ext == ".mkv" else "libx264")
        assert facts(joined)[1:] == facts(single.dst)[1:] and facts(joined)[0][2:] == facts(single.dst)[0][2:]
        for index in (3, 4):
            assert cues(joined, index) == cues(single.dst, index)
        assert any("converted to mov_text" in n for n in said) == (ext == ".mp4")
    with av.open(str(tmp_path / "joined.mkv")) as c:
        assert sum(1 for _ in c.decode(video=0)) == 10


def test_a_segmented_files_stream_notes_reach_the_batch_log(tmp_path, tiny_model):
    """A file batch cuts into segments copies its other streams only in the join: what the copier says there
    (text subtitles converted to mov_text for .mp4) reaches the batch log as a whole file's notes do."""
    from esrgan_video.batch import run_batch

    lib = tmp_path / "lib"
    lib.mkdir()
    media.make_clip(lib / "long.mkv", frames=12, options={"x264-params": "keyint=4:min-keyint=4:scenecut=0"},
                    subtitles=[media.SubtitleTrack("subrip", language="eng")])
    logs: list[str] = []
    s = run_batch([lib], tmp_path / "out", model=str(tiny_model), ext="mp4", threads=1, segment_seconds=0.16,
                  log=logs.append)
    (row,) = s.rows
    assert row.status == "done" and row.segments == 3, row
    assert [m for m in logs if "converted to mov_text" in m and m.startswith("notice ")], logs


def test_streams_keep_naming_a_stream_the_input_lacks_is_refused(tmp_path, tracks, tiny_model, capfd):
    """``--streams-keep 1,9`` on a file of five streams: a one-line error naming the index (exit 2), nothing written,
    instead of a run that silently copies less than asked."""
    dst = tmp_path / "out.mkv"
    p = cli(capfd, tracks["text"], dst, "--model", tiny_model, "--device", "cpu", "--streams-keep", "1,9")
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    assert p.returncode == 2 and len(lines) == 1, p.stderr
    assert lines[0].startswith("esrgan-video: error: --streams-keep:") and "9" in lines[0] and "0 to 4" in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_batch_streams_keep_naming_a_missing_stream_fails_a_segmented_file(tmp_path, tiny_model):
    """A file batch cuts into segments (whose renders copy no streams; the join does) is checked too."""
    from esrgan_video.batch import run_batch

    lib = tmp_path / "lib"
    lib.mkdir()
    media.make_clip(lib / "long.mkv", frames=12, options={"x264-params": "keyint=4:min-keyint=4:scenecut=0"})
    s = run_batch([lib], tmp_path / "out", model=str(tiny_model), codec="ffv1", threads=1, segment_seconds=0.16,
                  streams_keep=(0, 5), log=lambda m: None)
    (row,) = s.rows
    assert row.status == "failed" and "streams_keep" in row.error and "0 to 0" in row.error, row
    assert not (tmp_path / "out" / "long.mkv").exists()
