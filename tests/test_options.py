"""The option dataclasses: one definition, one validation, one device parser, passed whole through the faces."""

from __future__ import annotations

import dataclasses
import pickle
from fractions import Fraction

import pytest
import torch

from esrgan_video.errors import BackendError, OptionError
from esrgan_video.options import (
    FIELD_GROUP,
    GROUPS,
    EncodeOptions,
    ModelOptions,
    RuntimeOptions,
    SizeOptions,
    TrimOptions,
    UpscaleOptions,
    parse_time,
)
from esrgan_video.runtime.devices import parse_device, parse_devices, resolve_device
from esrgan_video.testing import save_near_identity


@pytest.mark.parametrize("cls, kwargs, message", [
    (RuntimeOptions, {"tile": -1}, "tile: expected 0 (whole frame) or a positive size in pixels, got -1"),
    (RuntimeOptions, {"tile_pad": -2}, "tile_pad: expected an integer >= 0, got -2"),
    (RuntimeOptions, {"streams": 0}, "streams: expected an integer >= 1, got 0"),
    (RuntimeOptions, {"streams": True}, "streams: expected an integer >= 1, got True"),
    (RuntimeOptions, {"batch": 0}, "batch: expected an integer >= 1, got 0"),
    (RuntimeOptions, {"precision": "fp8"}, "precision: expected one of fp16, bf16, fp32, got 'fp8'"),
    (RuntimeOptions, {"backend": "cudnn"}, "backend: expected one of auto, torch, onnxruntime, tensorrt, torch-tensorrt"),
    (RuntimeOptions, {"device": "tpu"}, "device: expected cpu, cuda or cuda:N (or a GPU number), got 'tpu'"),
    (RuntimeOptions, {"reuse": "maybe"}, "reuse: expected one of off, exact, near, got 'maybe'"),
    (SizeOptions, {"scale": 0}, "scale: expected a positive number, got 0"),
    (SizeOptions, {"scale": float("nan")}, "scale: expected a positive number"),
    (SizeOptions, {"size": "big"}, "size: expected WxH, Wx or xH (e.g. 1920x1080), got 'big'"),
    (SizeOptions, {"size": (0, 10)}, "size: expected (width, height): positive integers"),
    (SizeOptions, {"scale": 3, "size": (100, None)}, "scale: expected either a scale or a size, not both"),
    (SizeOptions, {"fit": "zoom"}, "fit: expected one of pad, crop, stretch, got 'zoom'"),
    (EncodeOptions, {"crf": -1}, "crf: expected a number >= 0, got -1"),
    (EncodeOptions, {"codec": ""}, "codec: expected an FFmpeg encoder name"),
    (EncodeOptions, {"encoder_opts": ("novalue",)}, "encoder_opt: expected KEY=VALUE, got 'novalue'"),
    (TrimOptions, {"start": "1:xx"}, "start: expected seconds (12.5), [HH:]MM:SS(.ms) or a frame number (120f)"),
    (TrimOptions, {"end": -1}, "end: expected a time or frame number >= 0, got -1"),
    (ModelOptions, {"blend": "nocolon"}, "blend: expected OTHER_MODEL:ALPHA"),
    (ModelOptions, {"blend": "Other:1.5"}, "blend: expected OTHER_MODEL:ALPHA"),
    (ModelOptions, {"denoise": 2}, "denoise: expected a strength between 0 and 1, got 2"),
    (ModelOptions, {"model": ""}, "model: expected a registry name or a checkpoint path"),
    (ModelOptions, {"model": torch.nn.Conv2d(3, 3, 1), "denoise": 0.5}, "denoise: expected a model given by name or path"),
    (ModelOptions, {"model": torch.nn.Conv2d(3, 3, 1), "blend": "x:0.5"}, "blend: expected a model given by name or path"),
])
def test_each_bad_value_is_one_option_error_with_expected_and_got(cls, kwargs, message):
    with pytest.raises(OptionError) as info:
        cls(**kwargs)
    assert str(info.value).startswith(message)
    assert info.value.exit_code == 2 and "\n" not in str(info.value)


def test_values_are_normalised_where_they_enter():
    assert SizeOptions(size="1920x").size == (1920, None)
    assert SizeOptions(scale=2).scale == 2.0
    assert TrimOptions(start="1:02.5", end="120f") == TrimOptions(start=Fraction(125, 2), end=120)
    assert TrimOptions(start=0.5).start == Fraction(1, 2)
    assert EncodeOptions(crf=17.5).crf == 17.5 and EncodeOptions(crf=18.0).crf == 18
    enc = EncodeOptions(encoder_opts={"qp": "0", "g": 8})
    assert enc.encoder_opts == (("qp", "0"), ("g", "8")) and enc.encoder_options == {"qp": "0", "g": "8"}
    assert EncodeOptions(encoder_opts=("a=1", "b=x=y")).encoder_options == {"a": "1", "b": "x=y"}
    assert ModelOptions(blend="RealESRNet_x4plus:0.3").blend == ("RealESRNet_x4plus", 0.3)
    assert RuntimeOptions(device=1).device == "cuda:1" and RuntimeOptions(device="CUDA").device == "cuda:0"
    assert RuntimeOptions(device="auto").device is None
    assert parse_time("120f") == 120 and parse_time("01:00:02") == 3602


def test_options_are_frozen_hashable_and_picklable():
    opts = UpscaleOptions.from_kwargs(model="m.safetensors", tile=64, codec="ffv1", start=Fraction(1, 3))
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.runtime.tile = 3  # type: ignore[misc]
    assert hash(opts) == hash(pickle.loads(pickle.dumps(opts)))
    assert pickle.loads(pickle.dumps(opts)) == opts
    err = pickle.loads(pickle.dumps(OptionError("tile", "a size", -1)))
    assert isinstance(err, OptionError) and str(err) == "tile: expected a size, got -1"


def test_flat_names_route_to_their_group_and_unknown_names_are_refused():
    assert len(FIELD_GROUP) == sum(len(dataclasses.fields(c)) for c in GROUPS.values())  # names are unique
    opts = UpscaleOptions.from_kwargs(model="x.pth", blend="y.pth:0.5", device="cpu", scale=2, crf=20, end=5)
    assert (opts.model.model, opts.model.blend, opts.runtime.device) == ("x.pth", ("y.pth", 0.5), "cpu")
    assert (opts.size.scale, opts.encode.crf, opts.trim.end) == (2.0, 20, 5)
    over = UpscaleOptions.from_kwargs(opts, runtime=RuntimeOptions(tile=8), codec="libx265")
    assert over.runtime.tile == 8 and over.runtime.device is None and over.encode.codec == "libx265"
    assert over.encode.crf == 20 and over.model == opts.model
    assert opts.replace(start=3).trim.start == 3 and opts.trim.start is None
    with pytest.raises(TypeError, match="unknown option 'tiles'.*tile_pad"):
        UpscaleOptions.from_kwargs(tiles=3)
    with pytest.raises(OptionError, match="runtime: expected RuntimeOptions"):
        UpscaleOptions(runtime={"tile": 3})  # type: ignore[arg-type]


def test_output_affecting_options_exclude_the_device_and_the_model_name():
    opts = UpscaleOptions.from_kwargs(model="a.pth", device="cpu", tile=32, shift_timestamps=False)
    doc = opts.output_affecting()
    assert "device" not in doc and "model" not in doc and "offline" not in doc and "shift_timestamps" not in doc
    assert doc["tile"] == 32 and {"codec", "crf", "blend", "start", "end", "reuse", "scale", "size"} <= set(doc)
    same = UpscaleOptions.from_kwargs(model="renamed.pth", device="cuda:1", tile=32)
    assert same.output_affecting() == doc  # the batch hash identifies the model by its weights instead


def test_relabel_names_the_flag_of_the_face():
    e = OptionError("tile_pad", "an integer >= 0", -1)
    assert str(e.relabel({"tile_pad": "--tile-pad"})) == "--tile-pad: expected an integer >= 0, got -1"
    assert str(e.relabel({"other": "x"})) == str(e)


def test_one_device_parser():
    assert [parse_device(v) for v in (None, "auto", "cpu", "cuda", "cuda:2", 3, "1", torch.device("cuda:1"))] == [
        None, None, "cpu", "cuda:0", "cuda:2", "cuda:3", "cuda:1", "cuda:1"]
    for bad in ("gpu0", "cuda:x", -1, True, 1.5, "cuda:-1"):
        with pytest.raises(OptionError, match="device"):
            parse_device(bad)
    assert parse_devices("0,1") == ["cuda:0", "cuda:1"] and parse_devices(["cpu", "cuda:2"]) == ["cpu", "cuda:2"]
    with pytest.raises(OptionError, match="--devices"):
        parse_devices("auto,0")
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the rules of a machine without CUDA")
def test_resolve_device_without_cuda():
    assert resolve_device(None) == torch.device("cpu")
    assert resolve_device(0, cpu_if_no_cuda=True) == torch.device("cpu")
    with pytest.raises(BackendError, match="no CUDA GPU"):
        resolve_device(0)
    with pytest.raises(BackendError, match="'cuda:1': no CUDA GPU"):
        resolve_device("cuda:1", cpu_if_no_cuda=True)


def test_the_cli_builds_the_same_options_as_the_api():
    import argparse

    from esrgan_video.cli.arguments import add_upscale_options, upscale_options

    p = argparse.ArgumentParser()
    add_upscale_options(p)
    args = p.parse_args(["--model", "m.pth", "--tile-pad", "8", "--crf", "17.5", "--size", "x720", "--start", "2f",
                         "--encoder-opt", "g=8", "--device", "cpu"])
    assert upscale_options(args) == UpscaleOptions.from_kwargs(
        model="m.pth", tile_pad=8, crf=17.5, size=(None, 720), start=2, encoder_opts={"g": "8"}, device="cpu")
    with pytest.raises(OptionError, match="^--tile-pad: expected an integer >= 0, got -1$"):
        upscale_options(p.parse_args(["--tile-pad", "-1"]))


def test_denoise_reaches_the_model_loader_from_the_cli(tmp_path, capfd):
    """``--denoise`` is routed to ModelOptions and on to load_model: a model without a denoising partner is refused
    in one line (exit 4) before any output exists; a strength out of range is a command-line error (exit 2)."""

    from esrgan_video.cli.main import main
    import media

    model = tmp_path / "tiny.safetensors"
    save_near_identity(model, 4)
    src = media.make_clip(tmp_path / "in.mp4", size=(32, 24), frames=1)
    out = tmp_path / "out.mp4"
    assert main([str(src), str(out), "--model", str(model), "--denoise", "0.5"]) == 4
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "denoise" in err[0] and "tiny.safetensors" in err[0], err
    assert main([str(src), str(out), "--model", str(model), "--denoise", "1.5"]) == 2
    assert "--denoise: expected a strength between 0 and 1, got 1.5" in capfd.readouterr().err
    assert not out.exists()


def test_the_codec_left_to_the_container():
    """No codec asked for: the container's usual encoder (chosen once the output is known), and the batch hash
    of such a run is that of an explicit libx264 (what the default was before it followed the container)."""
    from esrgan_video.options import codec_for

    assert UpscaleOptions().encode.codec is None
    assert [codec_for(m) for m in ("matroska", "mp4", "webm", "apng", "webp", "yuv4mpegpipe", None)] == [
        "libx264", "libx264", "libvpx-vp9", "apng", "libwebp_anim", "rawvideo", "libx264"]
    assert UpscaleOptions().output_affecting() == UpscaleOptions.from_kwargs(codec="libx264").output_affecting()


def test_batch_options_hash_changes_with_every_output_affecting_option():
    """Each option that can change an output's bytes changes batch's options hash (a finished file made with other
    options is then redone or refused, not taken as done); the device, the streams, the log level and exact vs off
    reuse do not. A new option must
    be added here: the names covered are the names ``output_affecting`` lists."""
    from esrgan_video.batch.driver import options_hash

    base = UpscaleOptions.from_kwargs(size=(64, 64))
    other = {
        "blend": "RealESRNet_x4plus:0.3", "denoise": 0.5, "backend": "torch", "precision": "fp16",
        "tile": 64, "tile_pad": 8, "batch": 2, "reuse": "near", "scale": None, "size": (64, 32), "fit": "pad",
        "square_pixels": True, "codec": "libx265", "crf": 20, "preset": "slow", "pix_fmt": "yuv420p10le",
        "encoder_opts": ("g=8",), "format": "matroska", "copy_streams": False, "audio": False, "subtitles": False,
        "streams_keep": (1,), "start": 2, "end": 5,
    }
    assert set(other) == set(base.output_affecting())
    h = options_hash("sha", base, segment_seconds=None)
    for name, value in other.items():
        changed = base.replace(**{name: value}) if name != "scale" else base.replace(size=None, scale=2)
        assert options_hash("sha", changed, segment_seconds=None) != h, name
    # the same bytes: exact reuse changes no output bit, streams only change how many frames are in flight
    for name, value in {"device": "cpu", "verbose": True, "shift_timestamps": False, "offline": True,
                        "streams": 3, "reuse": "off"}.items():
        assert options_hash("sha", base.replace(**{name: value}), segment_seconds=None) == h, name
    assert options_hash("other", base, segment_seconds=None) != h
    assert options_hash("sha", base, segment_seconds=300.0) != h
