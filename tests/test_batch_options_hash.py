"""Batch's options hash takes an encoding option given as the value the encoder uses anyway as not given: a rerun
with ``--crf 16`` (libx264's default here) keeps what a run without it made, one with another CRF does not."""

from __future__ import annotations

import hashlib
import json
from fractions import Fraction
from pathlib import Path

import pytest

from esrgan_video.batch import run_batch
from esrgan_video.batch.driver import container_codec, options_hash
from esrgan_video.batch.journal import JOURNAL_NAME, parse_lines
from esrgan_video.errors import OutputError
from esrgan_video.options import DEFAULT_CQ, DEFAULT_CRF, UpscaleOptions

from media import make_clip


def state(path: Path) -> tuple[str, int]:
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns


def test_a_rerun_with_the_encoders_defaults_given_skips_the_done_files(tmp_path: Path, near_identity_file) -> None:
    lib, out = tmp_path / "lib", tmp_path / "out"
    lib.mkdir()
    make_clip(lib / "a.mkv", frames=3)
    make_clip(lib / "b.mp4", frames=3, seed=2)
    kw = dict(model=str(near_identity_file(2)), devices="cpu", threads=1, log=lambda m: None)
    s1 = run_batch([lib], out, **kw)  # libx264 into .mkv: crf 16, preset medium
    assert [r.status for r in s1.rows] == ["done", "done"], s1.table()
    before = {k: state(out / k) for k in ("a.mkv", "b.mkv")}

    # the same encoder, CRF and preset said out loud (16.0 is 16): the same bytes, nothing redone
    s2 = run_batch([lib], out, codec="libx264", crf=16.0, preset="medium", **kw)
    assert [r.status for r in s2.rows] == ["skipped", "skipped"], s2.table()
    assert {k: state(out / k) for k in before} == before

    # another CRF changes the bytes: refused without --force, then every file is made again
    with pytest.raises(OutputError, match=r"2 finished output\(s\) were made with different options"):
        run_batch([lib], out, crf=20, **kw)
    assert {k: state(out / k) for k in before} == before
    s3 = run_batch([lib], out, crf=20, force=True, **kw)
    assert [r.status for r in s3.rows] == ["done", "done"], s3.table()
    assert all(state(out / k) != before[k] for k in before)


def test_records_made_with_the_defaults_as_given_still_stand(tmp_path: Path, near_identity_file) -> None:
    """A journal from before the defaults were compared carries the hash of ``--crf 16`` as given: the same run
    finds its file done, not made with other options."""
    lib, out = tmp_path / "lib", tmp_path / "out"
    lib.mkdir()
    make_clip(lib / "a.mkv", frames=2)
    kw = dict(model=str(near_identity_file(2)), devices="cpu", threads=1, crf=16, log=lambda m: None)
    assert run_batch([lib], out, **kw).rows[0].status == "done"
    records = parse_lines((out / JOURNAL_NAME).read_text())
    # the record as an earlier version wrote it: the whole-file hash of the options as given (no encoder known)
    from esrgan_video.models import load_model

    given = options_hash(load_model(kw["model"]).info.sha256, UpscaleOptions.from_kwargs(model=kw["model"], crf=16),
                         segment_seconds=None)
    assert records["a.mkv"]["options"] != given  # 16 stands as unset now
    records["a.mkv"]["options"] = given
    (out / JOURNAL_NAME).write_text("".join(json.dumps(r) + "\n" for r in records.values()))
    before = state(out / "a.mkv")
    assert run_batch([lib], out, **kw).rows[0].status == "skipped"
    assert state(out / "a.mkv") == before


def test_only_the_defaults_of_the_encoder_that_writes_the_output_stand_as_unset() -> None:
    """Which values are an encoder's defaults depends on the encoder the output's container takes without --codec:
    CRF 16 is libx264's (.mkv) but not libvpx-vp9's (.webm: 24); a preset named in --encoder-opt or a rate control
    there (qp=0: no CRF at all without --crf) keeps an explicit one apart; NVENC's default preset is p4, not its
    ``medium`` (another preset); SVT-AV1's preset number is left as given."""
    def h(dst: str, **kw) -> str:
        opts = UpscaleOptions.from_kwargs(**kw)
        return options_hash("sha", opts, segment_seconds=None, codec=container_codec(Path(dst), opts))

    mkv, webm = h("a.mkv"), h("a.webm")
    assert h("a.mkv", crf=DEFAULT_CRF["libx264"]) == h("a.mkv", preset="medium") == h("a.mkv", preset="5") == mkv
    assert h("a.mkv", crf=20) != mkv and h("a.mkv", preset="slow") != mkv
    assert h("a.webm", crf=DEFAULT_CRF["libvpx-vp9"]) == h("a.webm", codec="libvpx-vp9") == webm
    assert h("a.webm", crf=16) != webm
    assert h("a.mkv", crf=16, encoder_opts={"qp": "0"}) != h("a.mkv", encoder_opts={"qp": "0"})
    assert h("a.mkv", preset="medium", encoder_opts={"preset": "slow"}) != h("a.mkv", encoder_opts={"preset": "slow"})
    x265 = h("a.mkv", codec="libx265")
    assert h("a.mkv", codec="libx265", crf=18, preset="medium") == x265 != h("a.mkv", codec="libx265", crf=16)
    nvenc = h("a.mkv", codec="hevc_nvenc")
    assert h("a.mkv", codec="hevc_nvenc", crf=DEFAULT_CQ["hevc_nvenc"], preset="p4") == nvenc
    assert h("a.mkv", codec="hevc_nvenc", preset="medium") != nvenc
    assert h("a.mkv", codec="libsvtav1", preset="8") != h("a.mkv", codec="libsvtav1")
    # exact and off reuse write the same bytes (docs/reuse.md): one record; near does not
    assert h("a.mkv", reuse="off") == mkv != h("a.mkv", reuse="near")
    # the options as given (no encoder known) hash as before: libx264 for the container's usual encoder
    assert options_hash("sha", UpscaleOptions(), segment_seconds=None) == mkv == webm


def test_a_codecs_name_is_its_encoder_in_the_hash_and_in_what_the_encoder_is_given() -> None:
    """``--codec vp9`` (the codec's name) opens libvpx-vp9, ``h264`` libx264: the options keep that encoder's name, so
    it is given that encoder's CRF (vp9 was given none: libvpx's own bitrate mode, other bytes than libvpx-vp9's CRF
    24) and hashes as that encoder, its default CRF as not given; another CRF still hashes apart."""
    from esrgan_video.video.output_plan import output_encoder, with_codec

    def h(dst: str, **kw) -> str:
        opts = UpscaleOptions.from_kwargs(**kw)
        return options_hash("sha", opts, segment_seconds=None, codec=container_codec(Path(dst), opts))

    def given(dst: str, **kw):
        return output_encoder(with_codec(UpscaleOptions.from_kwargs(**kw), dst).encode)

    assert UpscaleOptions.from_kwargs(codec="vp9").encode.codec == "libvpx-vp9"
    assert given("a.webm", codec="vp9") == given("a.webm", codec="libvpx-vp9") == given("a.webm")
    assert given("a.webm", codec="vp9").crf == DEFAULT_CRF["libvpx-vp9"]
    assert given("a.mkv", codec="h264") == given("a.mkv")
    webm = h("a.webm")
    assert h("a.webm", codec="vp9") == h("a.webm", codec="vp9", crf=24) == h("a.webm", crf=24) == webm
    assert h("a.webm", codec="vp9", crf=30) != webm
    assert h("a.mkv", codec="h264", crf=16, preset="medium") == h("a.mkv")
    assert h("a.mkv", codec="hevc") == h("a.mkv", codec="libx265", crf=18) != h("a.mkv")


def test_a_webm_made_with_vp9s_default_crf_given_or_not_is_kept_either_way(tmp_path: Path, near_identity_file) -> None:
    """.webm outputs (libvpx-vp9, CRF 24 by default): one made with ``--codec vp9 --crf 24`` is kept by a rerun
    without either, one made without them by a rerun with them; ``--crf 30`` is another output (refused)."""
    lib, out = tmp_path / "lib", tmp_path / "out"
    lib.mkdir()
    make_clip(lib / "a.mkv", frames=2, size=(16, 16))
    kw = dict(model=str(near_identity_file(2)), devices="cpu", threads=1, ext=".webm", segment_seconds=0,
              log=lambda m: None)
    s1 = run_batch([lib], out, codec="vp9", crf=24, **kw)
    assert [r.status for r in s1.rows] == ["done"], s1.table()
    make_clip(lib / "b.mkv", frames=2, size=(16, 16), seed=2)
    s2 = run_batch([lib], out, **kw)  # a.webm made with them given, b.webm now without
    assert [(r.key, r.status) for r in s2.rows] == [("a.webm", "skipped"), ("b.webm", "done")], s2.table()
    before = {k: state(out / k) for k in ("a.webm", "b.webm")}
    s3 = run_batch([lib], out, codec="vp9", crf=24, **kw)
    assert [r.status for r in s3.rows] == ["skipped", "skipped"], s3.table()
    with pytest.raises(OutputError, match=r"2 finished output\(s\) were made with different options"):
        run_batch([lib], out, crf=30, **kw)
    assert {k: state(out / k) for k in before} == before


def test_a_crf_or_preset_in_encoder_opts_hashes_as_the_flag_that_gives_the_encoder_the_same_option() -> None:
    """``--encoder-opt crf=24`` is ``--crf 24`` (libx264 is given ``crf=24`` either way: the same bytes, checked
    below), ``preset=slow`` is ``--preset slow``: one hash. Over these option sets, two hash alike exactly when the
    encoder is given the same options (``EncoderSettings.codec_options``, a crf or cq by its number: FFmpeg reads
    ``24.0`` as 24): a CRF the flag would round (``{:g}``), a crf inside
    ``x264-params`` and an NVENC ``cq`` without the ``rc=vbr b=0`` that ``--crf`` adds stay apart."""
    from itertools import combinations

    from esrgan_video.video.encoder_settings import default_preset
    from esrgan_video.video.output_plan import output_encoder, with_codec

    cases = [
        ("a.mkv", {}), ("a.mkv", {"crf": 24}), ("a.mkv", {"encoder_opts": {"crf": "24"}}),
        ("a.mkv", {"encoder_opts": {"crf": "24.0"}}), ("a.mkv", {"crf": 20, "encoder_opts": {"crf": "24"}}),
        ("a.mkv", {"crf": 20}), ("a.mkv", {"encoder_opts": {"crf": "16"}}), ("a.mkv", {"crf": 24.5}),
        ("a.mkv", {"encoder_opts": {"crf": "24.5"}}), ("a.mkv", {"encoder_opts": {"crf": "24.1234567"}}),
        ("a.mkv", {"crf": 24.1234567}), ("a.mkv", {"encoder_opts": {"x264-params": "crf=24"}}),
        ("a.mkv", {"preset": "slow"}), ("a.mkv", {"encoder_opts": {"preset": "slow"}}),
        ("a.mkv", {"preset": "slow", "encoder_opts": {"preset": "fast"}}), ("a.mkv", {"encoder_opts": {"preset": "medium"}}),
        ("a.mkv", {"preset": "medium"}),
        ("a.mkv", {"encoder_opts": {"qp": "0"}}), ("a.mkv", {"crf": 16, "encoder_opts": {"qp": "0"}}),
        ("a.mkv", {"encoder_opts": {"crf": "16", "qp": "0"}}), ("a.mkv", {"crf": 30, "encoder_opts": {"preset": "slow"}}),
        ("a.mkv", {"encoder_opts": {"crf": "30", "preset": "slow"}}),
        ("a.webm", {}), ("a.webm", {"encoder_opts": {"crf": "24"}}), ("a.webm", {"encoder_opts": {"crf": "24.5"}}),
        ("a.webm", {"crf": 30}), ("a.webm", {"encoder_opts": {"crf": "30"}}),
        ("a.mkv", {"codec": "hevc_nvenc"}), ("a.mkv", {"codec": "hevc_nvenc", "crf": 20}),
        ("a.mkv", {"codec": "hevc_nvenc", "encoder_opts": {"cq": "20"}}),
        ("a.mkv", {"codec": "hevc_nvenc", "encoder_opts": {"cq": "20", "rc": "vbr", "b": "0"}}),
        ("a.mkv", {"codec": "hevc_nvenc", "crf": 20, "encoder_opts": {"rc": "vbr"}}),
        ("a.mkv", {"codec": "hevc_nvenc", "crf": 20, "encoder_opts": {"rc": "cbr", "b": "5M"}}),
        ("a.mkv", {"codec": "hevc_nvenc", "encoder_opts": {"cq": "20", "rc": "cbr", "b": "5M"}}),
        ("a.mkv", {"codec": "hevc_nvenc", "encoder_opts": {"cq": "20", "rc": "cbr"}}),
    ]

    def hashed(dst: str, kw: dict) -> str:
        opts = UpscaleOptions.from_kwargs(**kw)
        return options_hash("sha", opts, segment_seconds=None, codec=container_codec(Path(dst), opts))

    def given(dst: str, kw: dict):  # the encoder's default preset by name is none (the same bytes: see above)
        e = output_encoder(with_codec(UpscaleOptions.from_kwargs(**kw), dst).encode)
        return e.codec, frozenset((k, float(v) if k in ("crf", "cq") else v) for k, v in e.codec_options().items()
                                  if (k, v) != ("preset", default_preset(e.codec)))

    facts = [(hashed(*c), given(*c)) for c in cases]  # a hash is per output: compared between outputs of one kind
    wrong = [(a, b) for (a, fa), (b, fb) in combinations(zip(cases, facts), 2)
             if a[0] == b[0] and (fa[0] == fb[0]) != (fa[1] == fb[1])]
    assert wrong == [], "\n".join(map(str, wrong))
    assert hashed("a.mkv", {"encoder_opts": {"crf": "24"}}) == hashed("a.mkv", {"crf": 24})
    # the same libx264 option, the same bytes (x264 kept deterministic, as the writer keeps it)
    import av
    import numpy as np

    from esrgan_video.video.encoder_settings import deterministic_options

    pictures = [np.random.default_rng(i).integers(0, 256, (48, 64, 3), dtype=np.uint8) for i in range(4)]

    def encoded(kw: dict) -> bytes:
        e = output_encoder(with_codec(UpscaleOptions.from_kwargs(**kw), "a.mkv").encode)
        ctx = av.codec.CodecContext.create(e.codec, "w")
        ctx.width, ctx.height, ctx.pix_fmt, ctx.time_base = 64, 48, "yuv420p", Fraction(1, 25)
        ctx.options = deterministic_options(e.codec, e.codec_options())
        packets = []
        for i, a in enumerate(pictures):
            f = av.VideoFrame.from_ndarray(a, format="rgb24").reformat(format="yuv420p")
            f.pts = i
            packets += ctx.encode(f)
        packets += ctx.encode(None)
        return b"".join(bytes(p) for p in packets)

    assert encoded({"encoder_opts": {"crf": "24"}}) == encoded({"crf": 24}) != encoded({"crf": 20})
