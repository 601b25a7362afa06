"""Quality defaults per encoder (``esrgan_video.video.encoder_settings``) and what reaches the encoder.

x264 and x265 write their settings into the stream (an SEI message: ``... crf=16.0 ...``), so the tests read the
CRF the encoder really used from the output file."""

from __future__ import annotations

import re

import numpy as np
import pytest

import media
from esrgan_video.errors import OptionError
from esrgan_video.video.encoder_settings import (DEFAULT_CQ, DEFAULT_CRF, crf_is_fractional, encoder_settings,
                                                 user_rate_control)
from esrgan_video.video.reader import open_input
from esrgan_video.video.writer import OutputVideo
from esrgan_video.testing import save_near_identity


def encoded_crf(path) -> float | None:
    """The crf the x264/x265 encoder records in its SEI settings string (None when it used another mode)."""
    m = re.search(rb"[ :]crf=(\d+(?:\.\d+)?)", path.read_bytes())
    return None if m is None else float(m.group(1))


def write_through(src, dst, **kw) -> OutputVideo:
    with open_input(src) as inp:
        with OutputVideo(dst, template=inp, copy_streams=False, **kw) as out:
            for f in inp.frames():
                out.write([np.ascontiguousarray(p) for p in f.planes], f.pts)
    return out


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return media.make_clip(tmp_path_factory.mktemp("enc") / "in.mkv", codec="ffv1", size=(32, 24), frames=3)


@pytest.mark.parametrize("codec,crf", [("libx264", 16.0), ("libx265", 18.0)])
def test_default_crf_is_high_quality_and_reaches_the_encoder(tmp_path, clip, codec, crf):
    out = write_through(clip, tmp_path / "o.mkv", codec=codec, preset="ultrafast")
    assert out.encoder_settings.crf == DEFAULT_CRF[codec] and out.encoder_settings.crf_is_default
    assert encoded_crf(tmp_path / "o.mkv") == crf
    assert "(default)" in out.encoder_settings.describe() and "preset ultrafast" in out.encoder_settings.describe()


def test_fractional_crf_where_the_encoder_takes_it(tmp_path, clip):
    assert crf_is_fractional("libx264") and crf_is_fractional("libx265")
    assert not crf_is_fractional("libsvtav1") and not crf_is_fractional("ffv1")
    out = write_through(clip, tmp_path / "o.mkv", codec="libx264", crf=17.5, preset="ultrafast")
    assert encoded_crf(tmp_path / "o.mkv") == 17.5
    assert out.encoder_settings.describe().startswith("libx264 crf 17.5, preset ultrafast")
    with pytest.raises(OptionError, match="whole number") as e:
        encoder_settings("libsvtav1", crf=22.5)
    assert e.value.exit_code == 2
    assert encoder_settings("libsvtav1", crf=22.0).crf == 22  # a whole float is a whole number
    assert encoder_settings("libsvtav1").codec_options()["crf"] == "22"
    # VP9: an integer crf, 24 by default (its own 32: 42.5 dB Y on Big Buck Bunny 720p, 24: 45.1 dB)
    assert not crf_is_fractional("libvpx-vp9") and encoder_settings("libvpx-vp9").codec_options()["crf"] == "24"
    with pytest.raises(OptionError, match="whole number"):
        encoder_settings("libvpx-vp9", crf=20.5)


def test_the_users_own_rate_control_gets_no_default(tmp_path, clip):
    for opts in ({"qp": "0"}, {"crf": "30"}, {"b": "2M"}, {"x264-params": "keyint=10:qp=4"}):
        assert user_rate_control(opts)
        assert encoder_settings("libx264", options=opts).crf is None
    assert not user_rate_control({"x264-params": "keyint=10", "tune": "film"})
    write_through(clip, tmp_path / "lossless.mkv", codec="libx264", options={"qp": "0"}, preset="ultrafast")
    assert encoded_crf(tmp_path / "lossless.mkv") is None  # constant QP 0, not CRF 16
    write_through(clip, tmp_path / "c30.mkv", codec="libx264", options={"crf": "30"}, preset="ultrafast")
    assert encoded_crf(tmp_path / "c30.mkv") == 30.0


def test_options_that_do_not_apply_are_command_line_errors():
    for kw in (dict(crf=18), dict(preset="slow")):
        with pytest.raises(OptionError) as e:
            encoder_settings("ffv1", **kw)
        assert e.value.exit_code == 2
    assert encoder_settings("ffv1").crf is None and encoder_settings("ffv1").describe() == "ffv1"
    assert encoder_settings("prores_ks").crf is None


def test_an_encoder_option_the_encoder_lacks_is_a_command_line_error(tmp_path, clip, capfd):
    """``--encoder-opt foo=1`` was accepted and silently unused (FFmpeg leaves unknown keys aside): it is refused in
    one line (exit 2) naming the key, before the output is opened; FFmpeg's generic options (g, bf) and the
    encoder's own (x264-params) pass."""

    from esrgan_video.cli.main import main

    with pytest.raises(OptionError, match=r"encoder_opts: expected options the libx264 encoder has .*'foo,pix_fmt'"):
        encoder_settings("libx264", options={"g": "8", "foo": "1", "pix_fmt": "yuv420p"})
    assert encoder_settings("libx264", options={"g": "8", "bf": "0", "x264-params": "ref=2"}).crf == 16
    with pytest.raises(OptionError, match="x264-params"):
        encoder_settings("libx265", options={"x264-params": "ref=2"})
    model = tmp_path / "tiny.safetensors"
    save_near_identity(model, 4)
    capfd.readouterr()
    code = main([str(clip), str(tmp_path / "o.mkv"), "--model", str(model), "--device", "cpu", "--encoder-opt", "foo=1"])
    lines = [l for l in capfd.readouterr().err.splitlines() if l.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("esrgan-video: error: --encoder-opt:"), lines
    assert "'foo'" in lines[0] and not (tmp_path / "o.mkv").exists()


def _opens_with_preset(codec: str, preset: str) -> bool:
    """Whether ``codec`` opens on a 64×64 yuv420p picture with ``preset`` (its log quiet)."""
    from fractions import Fraction

    import av

    from esrgan_video.video.chatter import quiet_encoder_options

    ctx = av.CodecContext.create(codec, "w")
    ctx.width, ctx.height, ctx.pix_fmt = 64, 64, "yuv420p"
    ctx.time_base, ctx.framerate = Fraction(1, 25), Fraction(25)
    ctx.options = quiet_encoder_options(codec, {"preset": preset}, verbose=False)
    try:
        ctx.open()
    except (av.FFmpegError, ValueError, OSError):
        return False
    return True


@pytest.mark.parametrize("codec,bad", [("libx264", "nope"), ("libx265", "nope"), ("libx265", "10"),
                                       ("libsvtav1", "99"), ("libsvtav1", "slow")])
def test_presets_are_the_encoders_own(codec, bad):
    """``--preset`` takes what the encoder takes: x264/x265's names (from the project's table, FFmpeg lists none for
    their string option) and their 0-9 index, SVT-AV1's number range (from FFmpeg's option); each one opens the real
    encoder. A preset it lacks is refused as a command-line error naming the accepted ones (it reached the encoder,
    which refused it at avcodec_open2: exit 6, "returned 22", after the model had loaded)."""
    from esrgan_video.video.encoder_settings import preset_values

    accepted, listed = preset_values(codec)
    assert all(_opens_with_preset(codec, p) for p in accepted), codec
    assert not _opens_with_preset(codec, bad)
    with pytest.raises(OptionError) as e:
        encoder_settings(codec, preset=bad)
    assert e.value.exit_code == 2 and str(e.value) == f"preset: expected a {codec} preset: {listed}, got {bad!r}"
    if codec != "libsvtav1":
        assert listed.startswith("ultrafast, superfast,") and listed.endswith("placebo (or 0-9)")
    else:
        assert "13" in listed
    assert preset_values("libvpx-vp9") is None and preset_values("prores_ks") is None  # no preset option
    with pytest.raises(OptionError, match=r"prores_ks \(it has no preset option; its profile is --encoder-opt "
                                          r"profile=auto\|proxy\|lt\|standard\|hq\|4444\|4444xq\), got 'hq'"):
        encoder_settings("prores_ks", preset="hq")


def test_a_bad_preset_is_refused_before_a_model_is_loaded(tmp_path, clip, capfd):
    """``--preset nope``: exit 2, one line naming --preset, the value and the presets, before the model is read (the
    model named does not exist: that error would be exit 4) and with nothing written."""
    from esrgan_video.testing import run_cli

    for extra in ((), ("--codec", "libx265"), ("--codec", "libsvtav1"), ("--crf", "20.5", "--codec", "libsvtav1")):
        bad = "99" if "libsvtav1" in extra else "nope"
        args = ("--preset", bad) if "--crf" not in extra else ()
        p = run_cli(capfd, clip, tmp_path / "o.mkv", "--model", tmp_path / "missing.pth", *args, *extra)
        lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
        assert p.returncode == 2 and len(lines) == 1 and "Traceback" not in p.stderr, p.stderr
        flag = "--crf" if "--crf" in extra else "--preset"
        assert lines[0].startswith(f"esrgan-video: error: {flag}: expected "), lines
        if flag == "--preset":
            assert f"got '{bad}'" in lines[0] and ("medium" in lines[0] or "13" in lines[0])
    assert sorted(q.name for q in tmp_path.iterdir()) == []


def test_the_summary_says_the_default_preset_one_way():
    """libx264 said "preset medium (encoder default)", libx265 "encoder's default preset": one wording, with the
    preset named where it is known (x265's own default is medium; FFmpeg's option leaves it empty)."""
    assert encoder_settings("libx264").describe() == "libx264 crf 16 (default), preset medium (encoder default)"
    assert encoder_settings("libx265").describe() == "libx265 crf 18 (default), preset medium (encoder default)"
    assert encoder_settings("libsvtav1").describe() == "libsvtav1 crf 22 (default), preset (encoder default)"
    assert encoder_settings("libx265", preset="slow").describe() == "libx265 crf 18 (default), preset slow"


NVENC = ("h264_nvenc", "hevc_nvenc", "av1_nvenc")


def _nvenc_preset_option(codec):
    import av

    try:
        ctx = av.CodecContext.create(codec, "w")
    except (ValueError, av.FFmpegError):
        pytest.skip(f"this FFmpeg has no {codec}")
    return {o.name: o for o in ctx.supported_options.private}["preset"]


@pytest.mark.parametrize("codec", NVENC)
def test_nvenc_presets_are_ffmpegs_names_and_a_bare_number_is_refused(codec):
    """NVENC's ``--preset`` is one of FFmpeg's names for it (p1-p7, slow/medium/fast; ``ffmpeg -h encoder=...``),
    passed on as that name. A bare number was passed on too, and FFmpeg read it as the preset's internal value, not
    its name: ``--preset 6`` meant p4 in this FFmpeg (and ``bd`` in FFmpeg 7), never p6; it is refused, naming the pN
    meant. The summary named the default by that number too ("preset 6 (encoder default)"): now p4, the preset
    FFmpeg's own help marks "(default)". Pure: no GPU opens an NVENC encoder here."""
    from esrgan_video.video.encoder_settings import ENCODER_DEFAULT_PRESET, preset_values

    opt = _nvenc_preset_option(codec)
    names = tuple(c.name for c in opt.choices)
    assert {f"p{i}" for i in range(1, 8)} <= set(names)
    accepted, listed = preset_values(codec)
    assert accepted == names and listed == ", ".join(names)
    assert not any(v.lstrip("-").isdigit() for v in accepted)
    for name in ("p1", "p6", "p7", "slow", " p5 "):
        assert encoder_settings(codec, preset=name).codec_options()["preset"] == name.strip()
    for number, hint in (("6", "; did you mean p6?"), ("1", "; did you mean p1?"), ("12", ""), ("-1", "")):
        with pytest.raises(OptionError) as e:
            encoder_settings(codec, preset=number)
        assert e.value.exit_code == 2 and str(e.value) == (
            f"preset: expected a {codec} preset by name: {listed} (a number is FFmpeg's internal value of a preset, "
            f"which differs between FFmpeg versions{hint}), got {number!r}")
    with pytest.raises(OptionError, match=rf"expected a {codec} preset: {listed}, got 'bd'"):
        encoder_settings(codec, preset="bd")  # a legacy name this FFmpeg no longer has: the plain message
    marked = [c.name for c in opt.choices if "(default)" in c.help]
    assert marked == [ENCODER_DEFAULT_PRESET[codec]] == ["p4"]
    assert str(opt.default).isdigit()  # what FFmpeg reports: the number, which the summary must not show
    cq = DEFAULT_CQ[codec]
    assert encoder_settings(codec).describe() == f"{codec} cq {cq} (default), rc vbr, preset p4 (encoder default)"
    assert encoder_settings(codec, preset="p6").describe() == f"{codec} cq {cq} (default), rc vbr, preset p6"


def _nvenc_options(codec):
    """(NVENC ``codec``'s private options, its generic ones) by name, from this FFmpeg build (skip if it lacks it)."""
    import av

    try:
        so = av.CodecContext.create(codec, "w").supported_options
    except (ValueError, av.FFmpegError):
        pytest.skip(f"this FFmpeg has no {codec}")
    return {o.name: o for o in so.private}, {o.name: o for o in so.generic}


@pytest.mark.parametrize("codec", NVENC)
def test_nvenc_gets_constant_quality_where_the_user_chose_no_rate_control(codec):
    """Without a rate control NVENC ran FFmpeg's: VBR at NVENC's default ``b`` of 2 Mb/s (its own default; x264's,
    x265's, SVT-AV1's and VP9's is 0), which starves an upscaled 1080p/4K picture. It now gets its constant-quality
    mode, ``rc=vbr cq=N b=0``, N the project's CRF of the CPU encoder of its format, and the summary names it as it
    names x264's crf. Each value is one FFmpeg's option table takes (``rc``'s choices, ``cq``'s range). Pure: no GPU."""
    private, generic = _nvenc_options(codec)
    assert int(generic["b"].default) == 2_000_000  # the starving default this replaces
    s = encoder_settings(codec)
    cq = DEFAULT_CQ[codec]
    assert s.crf == cq and s.crf_is_default and s.quality_key == "cq"
    assert s.codec_options() == {"cq": str(cq), "rc": "vbr", "b": "0"}
    assert s.describe() == f"{codec} cq {cq} (default), rc vbr, preset p4 (encoder default)"
    assert "vbr" in {c.name for c in private["rc"].choices}
    assert private["cq"].type.name == "FLOAT" and 0 < cq <= private["cq"].max
    assert DEFAULT_CQ == {"h264_nvenc": DEFAULT_CRF["libx264"], "hevc_nvenc": DEFAULT_CRF["libx265"],
                          "av1_nvenc": DEFAULT_CRF["libsvtav1"]}
    # a cap of the user's own keeps the constant quality; their own rate control keeps FFmpeg's
    capped = encoder_settings(codec, options={"maxrate": "40M"})
    assert capped.codec_options() == {"maxrate": "40M", "cq": str(cq), "rc": "vbr", "b": "0"}
    assert capped.describe().endswith("preset p4 (encoder default), maxrate=40M")
    for own in ({"qp": "20"}, {"b": "20M"}, {"cq": "24"}, {"rc": "constqp"}, {"tune": "lossless"}):
        assert user_rate_control(own), own
        got = encoder_settings(codec, options=own)
        assert got.crf is None and got.codec_options() == own, own
        shown = " ".join(f"{k}={v}" for k, v in own.items())
        assert got.describe() == f"{codec}, preset p4 (encoder default), {shown}"


@pytest.mark.parametrize("codec", NVENC)
def test_crf_is_nvencs_cq(codec):
    """``--crf N`` for NVENC was refused ("it has no crf option"); it is ``cq N`` in constant-quality VBR, fractions
    included (``cq`` is a float). 0 (NVENC's "automatic", not lossless) and values past cq's range are refused as
    command-line errors, where FFmpeg took 0 silently and refused the rest at avcodec_open2."""
    private, _ = _nvenc_options(codec)
    top = int(private["cq"].max)
    assert encoder_settings(codec, crf=20.5).codec_options() == {"cq": "20.5", "rc": "vbr", "b": "0"}
    assert encoder_settings(codec, crf=21.0).codec_options()["cq"] == "21"
    s = encoder_settings(codec, crf=19, preset="p6")
    assert s.describe() == f"{codec} cq 19, rc vbr, preset p6" and not s.crf_is_default
    assert encoder_settings(codec, crf=top).codec_options()["cq"] == str(top)
    # the user's own rc or b next to --crf are theirs; --crf wins over a cq in --encoder-opt
    assert encoder_settings(codec, crf=20, options={"rc": "cbr"}).codec_options() == {"rc": "cbr", "cq": "20",
                                                                                      "b": "0"}
    assert encoder_settings(codec, crf=20, options={"cq": "30"}).codec_options()["cq"] == "20"
    for bad in (0, top + 1, 0.0):
        with pytest.raises(OptionError) as e:
            encoder_settings(codec, crf=bad)
        assert e.value.exit_code == 2 and str(e.value).startswith(
            f"crf: expected above 0 and at most {top} for encoder {codec} (its constant-quality cq"), str(e.value)


def test_crf_for_nvenc_on_the_command_line(tmp_path, clip, capfd):
    """``--codec h264_nvenc --crf 20`` was refused (exit 2, "no --crf"): it passes the option checks now (the missing
    model is the error, exit 4); ``--crf 0`` is refused in one line before the model is looked up, nothing written."""
    from esrgan_video.testing import run_cli

    _nvenc_options("h264_nvenc")
    base = (clip, tmp_path / "o.mp4", "--model", tmp_path / "missing.pth", "--codec", "h264_nvenc")
    p = run_cli(capfd, *base, "--crf", "20")
    assert p.returncode == 4 and "missing.pth" in p.stderr and "--crf" not in p.stderr, p.stderr
    p = run_cli(capfd, *base, "--crf", "0")
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert p.returncode == 2 and len(lines) == 1 and lines[0].startswith(
        "esrgan-video: error: --crf: expected above 0 and at most 51 for encoder h264_nvenc"), lines
    assert sorted(q.name for q in tmp_path.iterdir()) == []


def _open_error(codec: str, options: dict[str, str]):
    """None when ``codec`` opens on a 64x64 yuv420p picture with ``options``, else the errno avcodec_open2 gave."""
    from fractions import Fraction

    import av

    from esrgan_video.video.chatter import quiet_encoder_options

    ctx = av.CodecContext.create(codec, "w")
    ctx.width, ctx.height, ctx.pix_fmt = 64, 64, "yuv420p"
    ctx.time_base, ctx.framerate = Fraction(1, 25), Fraction(25)
    ctx.options = quiet_encoder_options(codec, options, verbose=False)
    try:
        ctx.open()
    except av.FFmpegError as e:
        return e.errno
    return None


@pytest.mark.parametrize("codec", NVENC)
def test_ffmpeg_takes_the_nvenc_options(codec):
    """FFmpeg sets a codec's options before its encoder starts (avcodec_open2 refuses a value its option does not
    take, EINVAL or ERANGE, before NVENC looks for a GPU): the options given to NVENC open exactly as no options do,
    on a machine with NVENC (both open) and without one (both fail the same way, loading CUDA)."""
    import errno

    _nvenc_options(codec)
    nothing = _open_error(codec, {})
    for crf in (None, 17.5):
        assert _open_error(codec, encoder_settings(codec, crf=crf).codec_options()) == nothing
    if nothing is None:
        return
    assert _open_error(codec, {"rc": "nope"}) == errno.EINVAL  # the check tells a refused option from the rest
    assert _open_error(codec, {"cq": "99"}) == errno.ERANGE


def test_named_presets_of_other_encoders_are_names_too():
    """The same rule for every encoder whose preset FFmpeg lists by name (QSV's, AMF's, libwebp's): names only, and
    the summary never shows the internal number as the default."""
    import av

    from esrgan_video.video.encoder_settings import preset_values

    for codec in ("h264_qsv", "h264_amf", "libwebp_anim"):
        try:
            opt = {o.name: o for o in av.CodecContext.create(codec, "w").supported_options.private}["preset"]
        except (ValueError, av.FFmpegError):
            continue
        accepted, _ = preset_values(codec)
        assert accepted == tuple(c.name for c in opt.choices), codec
        assert encoder_settings(codec).describe() == f"{codec}, preset (encoder default)", codec


@pytest.mark.parametrize("codec,top", [("libx264", 51), ("libx265", 51), ("libsvtav1", 63), ("libvpx-vp9", 63)])
def test_a_crf_above_the_encoders_range_is_a_command_line_error(tmp_path, clip, capfd, codec, top):
    """``--crf 52`` for libx264 was taken and clamped by x264 to 51 without a word (the summary said crf 52); x265,
    SVT-AV1 and VP9 refused it when the encoder opened, exit 6 with FFmpeg's words ('Numerical result out of range',
    x265's own '[error]' line before). It is refused in one line, exit 2, before the model is looked up; the top of
    the range opens."""
    from esrgan_video.testing import run_cli

    assert _open_error(codec, encoder_settings(codec, crf=top).codec_options()) is None
    for bad in (top + 1, top + 0.5) if crf_is_fractional(codec) else (top + 1,):
        with pytest.raises(OptionError) as e:
            encoder_settings(codec, crf=bad)
        assert str(e.value) == f"crf: expected 0 to {top} for encoder {codec}, got {bad!r}"
    dst = tmp_path / "o.mkv"
    p = run_cli(capfd, clip, dst, "--model", tmp_path / "missing.pth", "--codec", codec, "--crf", top + 1)
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert p.returncode == 2 and lines == [
        f"esrgan-video: error: --crf: expected 0 to {top} for encoder {codec}, got {top + 1}"], p.stderr
    assert list(tmp_path.iterdir()) == []
