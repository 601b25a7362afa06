"""The documented Python API used as a user would: ``Upscaler.upscale`` on every kind of frame it documents (and
the ones it refuses), from several threads; ``upscale_video``/``upscale_image`` with str and pathlib paths and bad
ones; options as dataclasses or keywords; ``load_model`` by name, path and path-like, and with bad arguments.

Plumbing runs a tiny near-identity ×2 model (``esrgan_video.testing``) on the torch backend, compared with the same
model called directly; one test runs the real RealESRGAN_x4plus weights on a 32×32 crop of a real photo.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import esrgan_video
from esrgan_video.errors import BackendError, InputError, ModelError, OptionError, OutputError
from esrgan_video.options import ModelOptions, RuntimeOptions, UpscaleOptions
from esrgan_video.testing import near_identity_model

sys.path.insert(0, str(Path(__file__).parent))
import media  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def net():
    return near_identity_model(2, seed=1)


@pytest.fixture(scope="module")
def up(net):
    with esrgan_video.Upscaler(net, backend="torch", device="cpu") as u:
        yield u


def direct(net, rgb01: np.ndarray) -> np.ndarray:
    """The model called on an H×W×3 float array in [0, 1] (float32), as H×W×3 float32 (not clipped)."""
    x = torch.from_numpy(np.ascontiguousarray(rgb01, dtype=np.float32)).permute(2, 0, 1)[None]
    with torch.inference_mode():
        return net(x)[0].permute(1, 2, 0).numpy()


def codes(y: np.ndarray, top: int) -> np.ndarray:
    return np.clip(np.round(y.astype(np.float64) * top), 0, top)


def assert_codes_match(got: np.ndarray, want: np.ndarray, top: int = 255, share: float | None = None) -> None:
    """Integer outputs: the model's own values rounded. Its float32 output differs from a direct call's by float
    rounding (~5e-7: another order of the same sums), so a value that close to .5 of a code may round either way:
    at 8 bits hardly ever, at 16 bits (0.03 of a code) about 1 in 200."""
    diff = np.abs(got.astype(np.int64) - want.astype(np.int64))
    share = share if share is not None else 0.001 if top == 255 else 0.02
    assert diff.max() <= 1 and np.count_nonzero(diff) <= diff.size * share, (diff.max(), np.count_nonzero(diff))


RNG = np.random.default_rng(7)
RGB8 = RNG.integers(0, 256, (37, 29, 3), dtype=np.uint8)


# numpy frames ------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32", "float64", "float16"])
def test_numpy_frames_are_the_models_output_in_their_own_dtype(up, net, dtype):
    top = {"uint8": 255, "uint16": 65535}.get(dtype)
    if top:
        frame = RNG.integers(0, top + 1, (37, 29, 3)).astype(dtype)
        src01 = frame / top
    else:
        frame = RNG.random((37, 29, 3)).astype(dtype)
        src01 = frame.astype(np.float32)
    out = up.upscale(frame)
    assert out.dtype == np.dtype(dtype) and out.shape == (74, 58, 3)
    want = direct(net, src01)
    if top:
        assert_codes_match(out, codes(want, top), top)
    else:
        assert 0.0 <= out.min() and out.max() <= 1.0  # documented range: [0, 1]
        tol = 1e-3 if dtype == "float16" else 1e-5
        np.testing.assert_allclose(out.astype(np.float32), np.clip(want, 0, 1), atol=tol)


def test_views_give_what_their_contiguous_copies_give(up, net):
    big = RNG.integers(0, 256, (90, 80, 3), dtype=np.uint8)
    for view in (big[10:47, 20:49], big[::2, ::3], big[..., ::-1], big[::-1, 5:60:2, ::-1]):
        assert not view.flags.c_contiguous
        copy = np.ascontiguousarray(view)
        out = up.upscale(view)
        np.testing.assert_array_equal(out, up.upscale(copy))
        assert_codes_match(out, codes(direct(net, copy / 255), 255))
    np.testing.assert_array_equal(big, np.ascontiguousarray(big))  # the source is left alone
    f = RNG.random((40, 30, 3), dtype=np.float32)[::-1, :, ::-1]
    np.testing.assert_allclose(up.upscale(f), np.clip(direct(net, f), 0, 1), atol=1e-5)


@pytest.mark.parametrize("size", [(1, 1), (1, 9), (9, 1), (333, 187)])
def test_odd_sizes(up, net, size):
    frame = RNG.integers(0, 256, (*size, 3), dtype=np.uint8)
    out = up.upscale(frame)
    assert out.shape == (size[0] * 2, size[1] * 2, 3)
    assert_codes_match(out, codes(direct(net, frame / 255), 255))


@pytest.mark.parametrize("shape", [(0, 5, 3), (5, 0, 3), (0, 0, 3)])
def test_an_empty_array_is_one_input_error(up, shape):
    with pytest.raises(InputError, match=r"empty image"):
        up.upscale(np.zeros(shape, np.uint8))
    with pytest.raises(InputError, match=r"empty"):
        up.upscale(torch.zeros(1, 3, shape[0], shape[1]))
    with pytest.raises(InputError, match=r"empty batch"):
        up.upscale(torch.zeros(0, 3, 4, 4))


@pytest.mark.parametrize("shape", [(37, 29, 2), (37, 29, 5), (2, 37, 29, 3), (37,)])
def test_other_shapes_are_one_input_error_naming_the_shape(up, shape):
    with pytest.raises(InputError, match=r"expected an H×W×3 RGB array \(or H×W grey, H×W×4 RGBA\), got shape \("
                                         + ", ".join(map(str, shape))):
        up.upscale(np.zeros(shape, np.uint8))


def _still(path: Path, pixels: np.ndarray, mode: str) -> Path:
    from PIL import Image

    Image.fromarray(pixels, mode).save(path)
    return path


def test_grey_and_rgba_arrays_are_what_upscale_image_makes_of_them(up, net, near_identity_file, tmp_path):
    # were "expected an H×W×3 RGB array, got shape (23, 31)": the frame-level API refused what upscale_image takes
    from PIL import Image

    grey = RNG.integers(0, 256, (23, 31), dtype=np.uint8)
    rgba = RNG.integers(0, 256, (23, 31, 4), dtype=np.uint8)
    path = near_identity_file(2, seed=1)  # the `net` of `up`
    for name, pixels, mode in (("g", grey, "L"), ("a", rgba, "RGBA")):
        esrgan_video.upscale_image(_still(tmp_path / f"{name}.png", pixels, mode), tmp_path / f"{name}2.png",
                                   model=path, backend="torch", device="cpu")
        out = up.upscale(pixels)
        assert out.dtype == np.uint8 and out.shape == (46, 62, *pixels.shape[2:])
        np.testing.assert_array_equal(out, np.asarray(Image.open(tmp_path / f"{name}2.png")))
    # the values: the grey is the BT.709 luma of the model's RGB, the colour of RGBA the RGB's, its alpha upscaled
    # (the grey is the luma of the model's RGB in 16-bit codes, as upscale_image writes it: rounded twice, so a
    # luma near .5 of a code rounds either way more often: at 16 bits, in about 1 in 5)
    luma = direct(net, np.repeat(grey[..., None] / 255, 3, axis=2)) @ np.array([0.2126, 0.7152, 0.0722])
    assert_codes_match(up.upscale(grey), codes(luma, 255), share=0.005)
    assert_codes_match(up.upscale(grey[..., None])[..., 0], codes(luma, 255), share=0.005)
    out = up.upscale(rgba)
    np.testing.assert_array_equal(out[..., :3], up.upscale(np.ascontiguousarray(rgba[..., :3])))
    alpha = direct(net, np.repeat(rgba[..., 3:] / 255, 3, axis=2)).mean(axis=2)
    assert_codes_match(out[..., 3], codes(alpha, 255))
    g16 = grey.astype(np.uint16) * 257
    assert_codes_match(up.upscale(g16), codes(luma, 65535), 65535, share=0.3)
    gf = (grey / 255).astype(np.float32)
    out = up.upscale(gf)
    assert out.dtype == np.float32 and out.shape == (46, 62)
    np.testing.assert_allclose(out, np.clip(luma, 0, 1), atol=1e-5)
    af = (rgba / 255).astype(np.float32)
    out = up.upscale(af)
    assert out.dtype == np.float32 and out.shape == (46, 62, 4)
    np.testing.assert_allclose(out[..., 3], np.clip(alpha, 0, 1), atol=1e-5)
    np.testing.assert_array_equal(out[..., :3], up.upscale(np.ascontiguousarray(af[..., :3])))


@pytest.mark.parametrize("dtype", ["bool", "int8", "int64", "complex64"])
def test_other_dtypes_are_one_input_error_naming_the_dtype(up, dtype):
    with pytest.raises(InputError, match=f"unsupported frame dtype {dtype}"):
        up.upscale(np.zeros((4, 4, 3), dtype))


def test_not_an_array_is_one_input_error(up):
    with pytest.raises(InputError, match="expected a numpy array or torch tensor, got list"):
        up.upscale([[[0, 0, 0]]])


def test_a_pil_image_is_one_input_error_saying_what_to_pass(up):
    # was "got Image" (which Image?) and nothing on what to do; README shows arrays and tensors only, and a PIL image
    # upscaled in memory would lose what upscale_image keeps from its file (ICC, EXIF, DPI)
    from PIL import Image

    image = Image.fromarray(RNG.integers(0, 256, (6, 8, 3), dtype=np.uint8))
    with pytest.raises(InputError, match=r"^expected a numpy array or torch tensor, got a PIL image \(mode RGB\): "
                                         r"pass np.asarray\(image\) .* esrgan_video.upscale_image, which keeps"):
        up.upscale(image)
    np.testing.assert_array_equal(up.upscale(np.asarray(image)), up.upscale(np.array(image)))  # what it says works


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_a_float_frame_with_nan_or_inf_is_an_input_error_not_a_precision_problem(up, bad, kind):
    # NaN or Inf in → NaN out: the backend's non-finite guard (a BackendError) told the user to rerun in fp32, which
    # cannot help; the frame is what is wrong
    frame = RNG.random((12, 10, 3)).astype(np.float32)
    frame[3, 4, 1] = bad
    frame[5, 0, 2] = bad
    x = frame if kind == "numpy" else torch.from_numpy(frame).permute(2, 0, 1)
    with pytest.raises(InputError, match=r"^the frame holds 2 NaN or infinite value\(s\); float frames must be finite, "
                                         r"in \[0, 1\]$"):
        up.upscale(x)


# torch frames ------------------------------------------------------------------------------------
def test_torch_chw_and_nchw_on_the_cpu_match_numpy(up, net):
    frame = RNG.random((37, 29, 3), dtype=np.float32)
    chw = torch.from_numpy(frame).permute(2, 0, 1)  # a non-contiguous view
    out3 = up.upscale(chw)
    out4 = up.upscale(torch.stack([chw, chw.flip(2)]))
    assert out3.shape == (3, 74, 58) and out3.dtype == torch.float32 and out3.device.type == "cpu"
    assert out4.shape == (2, 3, 74, 58)
    np.testing.assert_array_equal(out3.permute(1, 2, 0).numpy(), up.upscale(frame))
    torch.testing.assert_close(out4[0], out3, rtol=0, atol=0)
    torch.testing.assert_close(out4[1], up.upscale(chw.flip(2).contiguous()), rtol=0, atol=0)
    np.testing.assert_allclose(out3.permute(1, 2, 0).numpy(), np.clip(direct(net, frame), 0, 1), atol=1e-5)
    u8 = torch.from_numpy(RGB8).permute(2, 0, 1)
    got = up.upscale(u8)
    assert got.dtype == torch.uint8
    np.testing.assert_array_equal(got.permute(1, 2, 0).numpy(), up.upscale(RGB8))
    for dt in (torch.float64, torch.float16, torch.bfloat16):
        assert up.upscale(chw.to(dt)).dtype == dt
    # the shape given, not the one after a batch axis was added ("expected N×3×H×W frames, got shape (1, 4, 4, 3)")
    expected = r"^expected a 3×H×W or N×3×H×W tensor \(or H×W, 1×H×W, N×1×H×W grey; 4×H×W, N×4×H×W RGBA\), got shape "
    with pytest.raises(InputError, match=expected + r"\(6, 5, 3\) \(channels last: \.permute\(2, 0, 1\) or "
                                                    r"\.permute\(0, 3, 1, 2\) first\)$"):
        up.upscale(torch.zeros(6, 5, 3))
    for shape in ((2, 4, 5), (2, 5, 4, 5), (7,), (1, 1, 3, 4, 5)):
        with pytest.raises(InputError, match=expected + r"\(" + ", ".join(map(str, shape)) + r",?\)$"):
            up.upscale(torch.zeros(shape))


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32", "float16"])
def test_grey_and_rgba_tensors_are_what_the_numpy_arrays_give(up, dtype):
    # were "expected a 3×H×W or N×3×H×W tensor, got shape (1, 23, 31)" while the NumPy grey and RGBA arrays of the
    # same values were taken; tensors are channels first, as the RGB ones are
    top = {"uint8": 255, "uint16": 65535}.get(dtype)
    grey = RNG.integers(0, top + 1, (23, 31)) if top else RNG.random((23, 31))
    rgba = RNG.integers(0, top + 1, (23, 31, 4)) if top else RNG.random((23, 31, 4))
    grey, rgba = grey.astype(dtype), rgba.astype(dtype)
    want_grey, want_rgba = up.upscale(grey), up.upscale(rgba)
    tgrey, trgba = torch.from_numpy(grey), torch.from_numpy(rgba).permute(2, 0, 1)  # trgba: a non-contiguous view
    cases = {
        "H×W": (tgrey, want_grey),
        "1×H×W": (tgrey[None], want_grey[None]),
        "N×1×H×W": (torch.stack([tgrey, tgrey.flip(1)])[:, None],
                    np.stack([want_grey, up.upscale(np.ascontiguousarray(grey[:, ::-1]))])[:, None]),
        "4×H×W": (trgba, np.moveaxis(want_rgba, -1, 0)),
        "N×4×H×W": (torch.stack([trgba, trgba]), np.stack([np.moveaxis(want_rgba, -1, 0)] * 2)),
    }
    for name, (x, want) in cases.items():
        out = up.upscale(x)
        assert isinstance(out, torch.Tensor) and out.dtype == x.dtype and out.device == x.device, name
        assert out.shape == want.shape, (name, out.shape)
        np.testing.assert_array_equal(out.numpy(), want, err_msg=name)  # byte-identical to the NumPy path
    if dtype == "float32":  # bfloat16, which NumPy lacks, runs as float32 and comes back as bfloat16
        out = up.upscale(trgba.to(torch.bfloat16))
        assert out.dtype == torch.bfloat16 and out.shape == (4, 46, 62)
        want = torch.from_numpy(up.upscale(np.ascontiguousarray(trgba.to(torch.bfloat16).float().permute(1, 2, 0)
                                                                 .numpy())))
        torch.testing.assert_close(out, want.permute(2, 0, 1).to(torch.bfloat16), rtol=0, atol=0)


def test_grey_and_rgba_tensor_refusals_are_the_numpy_ones(up):
    with pytest.raises(InputError, match=r"^empty image \(0×5, height × width\)"):
        up.upscale(torch.zeros(1, 0, 5))
    with pytest.raises(InputError, match=r"^empty batch"):
        up.upscale(torch.zeros(0, 4, 3, 3))
    with pytest.raises(InputError, match=r"^unsupported frame dtype int8"):
        up.upscale(torch.zeros(1, 4, 4, dtype=torch.int8))
    # a meta tensor (a shape, no values) was NotImplementedError("Cannot copy out of meta tensor") from the copy
    for shape in ((1, 3, 8, 8), (3, 8, 8), (4, 8, 8), (8, 8)):
        with pytest.raises(InputError, match=r"^a tensor on the meta device \(shape \(" + ", ".join(map(str, shape))
                                             + r"\)\) holds no values to upscale: make the frames on the CPU or a CUDA "
                                               r"device$"):
            up.upscale(torch.zeros(shape, device="meta"))


# threads -----------------------------------------------------------------------------------------
def test_threads_sharing_one_upscaler_get_what_serial_calls_get(net):
    base = RNG.integers(0, 256, (40, 36, 3), dtype=np.uint8)
    frames = []
    for i in range(12):  # small changes between frames, so tile and frame reuse has something to (wrongly) reuse
        f = base.copy()
        f[(i * 3) % 40:(i * 3) % 40 + 3, 4:9] = RNG.integers(0, 256, (3, 5, 3))
        frames.append(f if i % 3 else (f / 255).astype(np.float32) if i % 2 else f[:21, :17].copy())
    frames += [frames[1][..., 0].copy(), np.concatenate([frames[2], frames[4][..., :1]], axis=2)]  # grey, RGBA
    for kw in ({}, {"tile": 16, "tile_pad": 4}):
        with esrgan_video.Upscaler(net, backend="torch", device="cpu", **kw) as serial_up:
            serial = [serial_up.upscale(f) for f in frames]
        got: dict[int, list[np.ndarray]] = {i: [] for i in range(len(frames))}
        with esrgan_video.Upscaler(net, backend="torch", device="cpu", **kw) as shared:
            def work(k: int) -> None:
                for _ in range(2):
                    for i in range(k, len(frames), 4):
                        got[i].append(shared.upscale(frames[i]))

            media.in_threads(work, 4)
        for i, want in enumerate(serial):
            for out in got[i]:
                np.testing.assert_array_equal(out, want)


# constructing an Upscaler ---------------------------------------------------------------------------
def test_options_as_dataclasses_or_keywords_are_the_same_upscaler(near_identity_file):
    path = near_identity_file(2, seed=4)
    a = esrgan_video.Upscaler(ModelOptions(model=path), RuntimeOptions(backend="torch", device="cpu", tile=16))
    b = esrgan_video.Upscaler(str(path), backend="torch", device="cpu", tile=16)
    c = esrgan_video.Upscaler(ModelOptions(model=path), RuntimeOptions(backend="torch", device="cpu", tile=0), tile=16)
    assert a.runtime == b.runtime == c.runtime and a.runtime.tile == 16
    outs = [u.upscale(RGB8) for u in (a, b, c)]
    np.testing.assert_array_equal(outs[0], outs[1])
    np.testing.assert_array_equal(outs[0], outs[2])


def test_a_users_module_is_left_as_it_was(net):
    # Upscaler(module) called module.eval().to(device) on the caller's object: a network being trained was switched
    # to eval mode (and moved to the Upscaler's device) under its owner
    frame = RNG.integers(0, 256, (21, 17, 3), dtype=np.uint8)
    with esrgan_video.Upscaler(net, backend="torch", device="cpu") as ref:
        want = ref.upscale(frame)
    for dtype in (torch.float32, torch.float64):
        module = near_identity_model(2, seed=1).to(dtype).train()
        module.conv_first.requires_grad_(False)
        before = {k: (v.dtype, v.device, v.requires_grad, v.clone())
                  for k, v in module.state_dict(keep_vars=True).items()}

        def unchanged() -> None:
            assert all(m.training for m in module.modules())
            for k, v in module.state_dict(keep_vars=True).items():
                dt, dev, grad, value = before[k]
                assert (v.dtype, v.device, v.requires_grad) == (dt, dev, grad), k
                torch.testing.assert_close(v.detach(), value, rtol=0, atol=0)

        with esrgan_video.Upscaler(module, backend="torch", device="cpu") as u:
            unchanged()
            assert u.model is not module and not u.model.training
            np.testing.assert_array_equal(u.upscale(frame), want)  # what the same weights in eval mode give
            unchanged()
    # a module already in eval mode on the device is shared, not copied (the backends copy it to their precision)
    with esrgan_video.Upscaler(net, backend="torch", device="cpu") as shared:
        assert shared.model is net and not net.training


def test_upscaler_runtime_that_is_not_runtime_options_is_a_type_error(near_identity_file):
    # was AttributeError: 'dict' object has no attribute 'device'
    with pytest.raises(TypeError, match=r"Upscaler: runtime must be a RuntimeOptions, got dict"):
        esrgan_video.Upscaler(near_identity_file(2), {"backend": "torch"})
    with pytest.raises(TypeError, match=r"unknown option\(s\) tiel"):
        esrgan_video.Upscaler(near_identity_file(2), tiel=16)
    with pytest.raises(OptionError, match=r"tile: expected 0 \(whole frame\) or a positive size in pixels, got -1"):
        esrgan_video.Upscaler(near_identity_file(2), tile=-1)


# load_model --------------------------------------------------------------------------------------
class _PathLike:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __fspath__(self) -> str:
        return str(self.path)


def test_load_model_by_name_str_path_and_path_like(near_identity_file):
    path = near_identity_file(2, seed=4)
    ref = esrgan_video.load_model(path)
    for given in (str(path), _PathLike(path)):  # a path-like was "expected a model name or a file path, got _PathLike"
        m = esrgan_video.load_model(given)
        assert m.info.sha256 == ref.info.sha256
    assert esrgan_video.Upscaler(_PathLike(path), backend="torch", device="cpu").scale == 2


def test_load_model_by_registry_name(real_weights_x4plus):
    m = esrgan_video.load_model("RealESRGAN_x4plus", offline=True)
    assert m.info.descriptor.scale == 4


def test_load_model_bad_paths_are_one_model_error_line(tmp_path):
    (tmp_path / "picture.png").write_bytes(media.small_jpeg())
    (tmp_path / "junk.pth").write_text("not a checkpoint\n")
    (tmp_path / "empty.safetensors").write_bytes(b"")
    torch.save({"a": torch.zeros(3)}, tmp_path / "other.pth")
    cases = {
        tmp_path / "missing.safetensors": "is neither a file nor a known model name",
        tmp_path: "is not a file",
        tmp_path / "picture.png": "is not a PyTorch checkpoint",
        tmp_path / "junk.pth": "is not a PyTorch checkpoint",
        tmp_path / "empty.safetensors": r"is empty \(0 bytes\)",
        tmp_path / "other.pth": "is not an ESRGAN-family",
    }
    for path, words in cases.items():
        for given in (path, str(path)):
            with pytest.raises(ModelError, match=words) as e:
                esrgan_video.load_model(given)
            assert len(str(e.value).splitlines()) == 1 and str(path) in str(e.value)


def test_load_model_bad_device_is_an_option_or_backend_error(near_identity_file):
    # was torch's RuntimeError ("Expected one of cpu, cuda, ... device type at start of device string: gpu";
    # "Found no NVIDIA driver on your system") from moving the network built from the weights
    with pytest.raises(OptionError, match=r"^device: expected .*, got 'gpu'$"):
        esrgan_video.load_model(near_identity_file(2), device="gpu")
    with pytest.raises(BackendError, match=r"device 'cuda:99': "):
        esrgan_video.load_model(near_identity_file(2), device="cuda:99")
    assert esrgan_video.load_model(near_identity_file(2), device=torch.device("cpu")).info.descriptor.scale == 2


# upscale_video / upscale_image ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def files(tmp_path_factory, near_identity_file):
    folder = tmp_path_factory.mktemp("api")
    clip = media.make_clip(folder / "in.mp4", size=(32, 24), frames=3)
    png = folder / "in.png"
    from PIL import Image

    Image.fromarray(RNG.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(png)
    return folder, clip, png, near_identity_file(2, seed=4)


def test_upscale_video_and_image_take_str_and_path(files, tmp_path):
    _, clip, png, model = files
    kw = dict(model=model, backend="torch", device="cpu")
    r1 = esrgan_video.upscale_video(str(clip), str(tmp_path / "a.mkv"), **kw)
    r2 = esrgan_video.upscale_video(clip, tmp_path / "b.mkv", **kw)
    assert r1.frames == r2.frames == 3 and Path(r1.output).name == "a.mkv" and Path(r2.output).name == "b.mkv"
    assert esrgan_video.upscale_image(str(png), str(tmp_path / "a.png"), **kw) == tmp_path / "a.png"
    assert esrgan_video.upscale_image(png, tmp_path / "b.png", **kw) == tmp_path / "b.png"
    as_class = UpscaleOptions(model=ModelOptions(model=model), runtime=RuntimeOptions(backend="torch", device="cpu"))
    esrgan_video.upscale_image(png, tmp_path / "c.png", as_class)
    assert (tmp_path / "c.png").read_bytes() == (tmp_path / "b.png").read_bytes()


def _one_line(e: pytest.ExceptionInfo, path) -> None:
    text = str(e.value)
    assert len(text.splitlines()) == 1 and str(path) in text, text


def test_bad_paths_are_the_projects_errors_in_one_line(files, tmp_path):
    folder, clip, png, model = files
    kw = dict(model=model, backend="torch", device="cpu")
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    for run, src, ext in ((esrgan_video.upscale_video, clip, ".mkv"), (esrgan_video.upscale_image, png, ".png")):
        with pytest.raises(InputError, match="no such file") as e:
            run(tmp_path / f"missing{ext}", tmp_path / f"o{ext}", **kw)
        _one_line(e, tmp_path / f"missing{ext}")
        with pytest.raises(InputError, match="is a directory") as e:  # an image's was "no such file"
            run(folder, tmp_path / f"o{ext}", **kw)
        _one_line(e, folder)
        with pytest.raises(OutputError, match="does not exist") as e:
            run(src, tmp_path / "no" / f"o{ext}", **kw)
        _one_line(e, tmp_path / "no" / f"o{ext}")
        with pytest.raises(OutputError, match="is not a directory") as e:
            run(src, a_file / f"o{ext}", **kw)
        _one_line(e, a_file / f"o{ext}")
        with pytest.raises(OutputError, match="the output is the input file"):
            run(src, src, overwrite=True, **kw)
        if os.geteuid() != 0:  # root writes anywhere
            locked = tmp_path / "locked"
            locked.mkdir(exist_ok=True)
            locked.chmod(0o555)
            try:
                with pytest.raises(OutputError) as e:
                    run(src, locked / f"o{ext}", **kw)
                _one_line(e, locked)
            finally:
                locked.chmod(0o755)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"] + (["locked"] if os.geteuid() != 0 else [])


def test_options_that_are_not_upscale_options_are_a_type_error(files, tmp_path):
    # was AttributeError: 'dict' object has no attribute 'model'
    _, clip, png, model = files
    with pytest.raises(TypeError, match=r"options: expected an UpscaleOptions, got dict; give a mapping's entries as "
                                        r"keywords: \*\*options"):
        esrgan_video.upscale_image(png, tmp_path / "o.png", {"model": str(model)})
    with pytest.raises(TypeError, match=r"options: expected an UpscaleOptions, got RuntimeOptions; pass it as "
                                        r"runtime=RuntimeOptions\(\.\.\.\)"):
        esrgan_video.upscale_video(clip, tmp_path / "o.mkv", RuntimeOptions(backend="torch"))
    # a group given by its name must be that group (was "unknown option 'runtime'", which it is not)
    with pytest.raises(TypeError, match=r"runtime: expected a RuntimeOptions, got dict \(or give its fields as "
                                        r"keywords: backend=, device="):
        esrgan_video.upscale_video(clip, tmp_path / "o.mkv", model=model, runtime={"backend": "torch"})
    with pytest.raises(TypeError, match=r"unknown option 'modle'"):
        esrgan_video.upscale_image(png, tmp_path / "o.png", modle=str(model))
    assert not list(tmp_path.iterdir())


def test_paths_that_are_not_str_or_path_like_are_a_type_error_naming_the_argument(files, tmp_path):
    # were Python's own TypeError from inside Path() (bytes, int), or "None: cannot tell the container from the file
    # name" for a None dst
    _, clip, png, model = files
    kw = dict(model=model, backend="torch", device="cpu")
    for run, src, ext in ((esrgan_video.upscale_video, clip, ".mkv"), (esrgan_video.upscale_image, png, ".png")):
        dst = tmp_path / f"o{ext}"
        for bad, name in ((os.fsencode(src), "bytes"), (3, "int"), (None, "NoneType")):
            with pytest.raises(TypeError, match=rf"^src: expected a str or os\.PathLike path, got {name}$"):
                run(bad, dst, **kw)
            with pytest.raises(TypeError, match=rf"^dst: expected a str or os\.PathLike path, got {name}$"):
                run(src, bad if name != "bytes" else os.fsencode(dst), **kw)
    assert not list(tmp_path.iterdir())


def test_model_or_runtime_options_beside_an_upscaler_are_a_type_error(files, up, tmp_path):
    # were ignored without a word: the upscaler's own model and runtime options ran
    _, clip, png, model = files
    for run, src, ext in ((esrgan_video.upscale_video, clip, ".mkv"), (esrgan_video.upscale_image, png, ".png")):
        dst = tmp_path / f"o{ext}"
        with pytest.raises(TypeError, match=r"^model= would be ignored beside upscaler=, which brings its own model and "
                                            r"runtime options: give them to Upscaler\(\.\.\.\) instead$"):
            run(src, dst, upscaler=up, model="RealESRGAN_x4plus")
        with pytest.raises(TypeError, match=r"^runtime=, tile= would be ignored beside upscaler="):
            run(src, dst, upscaler=up, tile=64, runtime=RuntimeOptions(backend="torch"))
        with pytest.raises(TypeError, match=r"^denoise=, device= would be ignored"):
            run(src, dst, upscaler=up, device="cpu", denoise=0.5)
    assert not list(tmp_path.iterdir())
    # what still goes with upscaler=: reuse= (per run), and an options object (batch mode's run options)
    r = esrgan_video.upscale_video(clip, tmp_path / "a.mkv", upscaler=up, reuse="off")
    assert r.frames == 3
    opts = UpscaleOptions(model=ModelOptions(model=model), runtime=RuntimeOptions(backend="torch", device="cpu"))
    assert esrgan_video.upscale_video(clip, tmp_path / "b.mkv", opts, upscaler=up).frames == 3
    assert esrgan_video.upscale_image(png, tmp_path / "b.png", opts, upscaler=up) == tmp_path / "b.png"


# real weights ------------------------------------------------------------------------------------
def test_real_weights_on_a_photo_crop_are_the_models_output(real_weights_x4plus, sample_photo):
    crop = np.ascontiguousarray(sample_photo[100:132, 200:232])
    net = esrgan_video.load_model(real_weights_x4plus)
    with esrgan_video.Upscaler(real_weights_x4plus, backend="torch", device="cpu") as u:
        out8 = u.upscale(crop)
        outf = u.upscale(crop.astype(np.float32) / 255)
    want = direct(net, crop / 255)
    assert out8.shape == (128, 128, 3) and out8.dtype == np.uint8
    assert_codes_match(out8, codes(want, 255))
    np.testing.assert_allclose(outf, np.clip(want, 0, 1), atol=1e-5)
    assert float(np.abs(want - np.kron(crop / 255, np.ones((4, 4, 1)))).mean()) > 0.01  # a real model, not a resize


def test_the_lazy_api_names_are_listed_by_dir():
    # dir() and tab completion listed none of load_model, Upscaler, upscale_video, upscale_image before first use
    names = dir(esrgan_video)
    assert set(esrgan_video.__all__) <= set(names)
    with pytest.raises(AttributeError, match="has no attribute 'upscale_frames'"):
        esrgan_video.upscale_frames  # noqa: B018


def test_frames_of_many_sizes_keep_a_bounded_number_of_backends(net):
    # ONNX Runtime (the CPU's auto backend) runs one fixed shape per session: an Upscaler kept a session for every
    # frame size it was given (~90 MiB each for RealESRGAN_x4plus), so photos of many sizes grew it without bound
    from esrgan_video.upscaler import MAX_FIXED_BACKENDS

    pytest.importorskip("onnxruntime")
    frames = [RNG.integers(0, 256, (6 + 2 * i, 8 + 2 * i, 3), dtype=np.uint8) for i in range(MAX_FIXED_BACKENDS + 4)]
    with esrgan_video.Upscaler(net, backend="onnxruntime", device="cpu") as u:
        first = [u.upscale(f) for f in frames]
        assert u.backend_info.fixed_shape is not None
        assert len(u._backends) == MAX_FIXED_BACKENDS
        again = [u.upscale(f) for f in frames]  # the evicted sizes are rebuilt, giving the same output
        assert len(u._backends) == MAX_FIXED_BACKENDS
        for a, b in zip(first, again):
            np.testing.assert_array_equal(a, b)
        shared_out: dict[int, list[np.ndarray]] = {i: [] for i in range(len(frames))}

        def work(k: int) -> None:  # evictions while other threads run: closed only when none is running
            for i in list(range(k, len(frames), 3)) * 2:
                shared_out[i].append(u.upscale(frames[i]))

        media.in_threads(work, 3)
        for i, outs in shared_out.items():
            for out in outs:
                np.testing.assert_array_equal(out, first[i])
    with esrgan_video.Upscaler(net, backend="torch", device="cpu") as t:  # and what the model gives
        assert_codes_match(first[3], t.upscale(frames[3]))
