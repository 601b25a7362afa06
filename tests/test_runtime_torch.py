"""TorchBackend on the CPU (the reference path) and the non-finite guard."""

from __future__ import annotations

import pytest
import torch

from esrgan_video.arch.rrdbnet import RRDBNet, RRDBParams
from esrgan_video.arch.srvgg import CompactParams, SRVGGNetCompact
from esrgan_video.errors import BackendError
from esrgan_video.runtime.base import CommonOptions, FiniteGuard, NonFiniteOutputError, check_finite, precision_dtype
from esrgan_video.runtime.torch_backend import TorchBackend, TorchOptions, cpu_supports


def tiny(scale: int = 4, seed: int = 0, **kw) -> RRDBNet:
    torch.manual_seed(seed)
    return RRDBNet(RRDBParams(nf=8, nb=1, gc=4, scale=scale, **kw)).eval()


@pytest.mark.parametrize("scale", [1, 2, 4, 8])
def test_cpu_fp32_matches_the_model(scale):
    model = tiny(scale)
    x = torch.rand(2, 3, 10, 14)
    with TorchBackend(model) as b:
        assert b.info.name == "torch" and b.info.device.type == "cpu" and b.info.dtype == torch.float32
        assert b.info.fixed_shape is None and b.scale == scale
        y = b(x)
    with torch.no_grad():
        ref = model(x)
    assert y.shape == (2, 3, 10 * scale, 14 * scale)
    assert y.dtype == torch.float32
    torch.testing.assert_close(y, ref, atol=1e-6, rtol=0)
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0


def test_backend_leaves_the_callers_model_alone():
    model = tiny()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    b = TorchBackend(model, CommonOptions(precision="bf16")) if cpu_supports(torch.bfloat16) else TorchBackend(model)
    b(torch.rand(1, 3, 8, 8))
    assert model.clamp is True
    assert all(p.dtype == torch.float32 for p in model.parameters())
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])


def test_input_is_validated():
    b = TorchBackend(tiny())
    with pytest.raises(BackendError, match="N x 3 x H x W"):
        b(torch.rand(1, 4, 8, 8))
    with pytest.raises(BackendError, match="N x 3 x H x W"):
        b(torch.rand(3, 8, 8))
    with pytest.raises(BackendError, match="float"):
        b(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))


def test_bad_options_are_refused():
    with pytest.raises(BackendError, match="precision must be one of"):
        TorchBackend(tiny(), CommonOptions(precision="fp8"))
    with pytest.raises(BackendError, match="compile must be one of"):
        TorchBackend(tiny(), options=TorchOptions(compile="fastest"))
    with pytest.raises(BackendError, match="CUDA graphs need a CUDA device"):
        TorchBackend(tiny(), options=TorchOptions(cuda_graphs=True))
    with pytest.raises(BackendError, match="device must be"):
        TorchBackend(tiny(), CommonOptions(device="mps"))
    with pytest.raises(BackendError, match="finite check mode"):
        TorchBackend(tiny(), CommonOptions(finite_check="sometimes"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error without a GPU")
def test_cuda_without_a_gpu_is_a_backend_error():
    with pytest.raises(BackendError, match="no CUDA GPU is available"):  # the one device parser's message
        TorchBackend(tiny(), CommonOptions(device="cuda"))


def test_precision_names():
    assert precision_dtype("fp16") == torch.float16
    with pytest.raises(BackendError, match="expected|must be one of"):
        precision_dtype("half")


# ----------------------------------------------------------------------------- non-finite guard


def overflowing(scale: int = 4) -> RRDBNet:
    """A model whose fp32 activations reach ~1e5: finite in fp32, beyond fp16's 65504."""
    model = tiny(scale)
    with torch.no_grad():
        model.conv_first.weight.mul_(1e5)
        model.conv_first.bias.mul_(1e5)
    return model


def inf_weight() -> RRDBNet:
    """A tiny model with one infinite weight: non-finite output at every precision (built in memory: the loader
    refuses such a checkpoint when it reads it)."""
    model = tiny()
    with torch.no_grad():
        model.conv_last.weight[0, 0, 1, 1] = float("inf")
    return model


def test_inf_weights_at_fp32_blame_the_model_not_the_precision():
    # the advice was "fp16 on some GPUs ... rerun with --precision fp32" on a run that was already fp32 (the CPU)
    with pytest.raises(NonFiniteOutputError) as e:
        TorchBackend(inf_weight())(torch.rand(1, 3, 8, 8))
    assert isinstance(e.value, BackendError)
    msg = str(e.value)
    assert msg.startswith("torch fp32 on cpu: the model produced non-finite values (NaN/Inf) at fp32")
    assert "not a precision problem: the model's weights or the input are at fault" in msg
    assert "--precision fp32" not in msg and "fp16" not in msg
    from esrgan_video.upscaler import Upscaler

    with Upscaler(inf_weight(), device="cpu", precision="fp32") as up:  # the API with a module made in memory
        with pytest.raises(NonFiniteOutputError, match="at fp32, .* not a precision problem") as e:
            up.upscale(torch.rand(3, 8, 8))
    assert "--precision fp32" not in str(e.value)


@pytest.mark.skipif(not cpu_supports(torch.float16), reason="this torch build has no fp16 conv on the CPU")
def test_inf_weights_at_fp16_give_the_fp32_advice():
    from esrgan_video.upscaler import Upscaler

    with Upscaler(inf_weight(), device="cpu", precision="fp16") as up:
        with pytest.raises(NonFiniteOutputError) as e:
            up.upscale(torch.rand(3, 8, 8))
    msg = str(e.value)
    assert msg.startswith("torch fp16 on cpu: the model produced non-finite values (NaN/Inf), ")
    assert "in fp16 on some GPUs. Rerun with --precision fp32" in msg and "not a precision problem" not in msg


@pytest.mark.skipif(not cpu_supports(torch.bfloat16), reason="this torch build has no bf16 conv on the CPU")
def test_a_non_finite_output_at_bf16_gets_bf16s_own_advice():
    # bf16 got the fp16 advice: "this happens with some RRDB weights in fp16 on some GPUs ... bf16 also avoids the
    # overflow", sending the user to the precision that had just failed. bf16 has fp32's range: what overflows fp16
    # is finite there (the first check), so the advice is fp32, which tells bf16's rounding from the weights or input
    from esrgan_video.upscaler import Upscaler

    x = torch.rand(1, 3, 8, 8)
    assert torch.isfinite(TorchBackend(overflowing(), CommonOptions(precision="bf16"))(x)).all()
    with Upscaler(inf_weight(), device="cpu", precision="bf16", backend="torch") as up:
        with pytest.raises(NonFiniteOutputError) as e:
            up.upscale(torch.rand(3, 8, 8))
    msg = str(e.value)
    assert msg.startswith("torch bf16 on cpu: the model produced non-finite values (NaN/Inf) at bf16, ")
    assert "bf16 has fp32's range, so this is not the fp16 overflow: rerun with --precision fp32" in msg
    assert "in fp16 on some GPUs" not in msg and "bf16 also avoids" not in msg


def test_infinity_is_caught_before_the_clamp():
    """+Inf clamps to 1.0 (white): the guard must see the raw output."""
    model = tiny()
    with torch.no_grad():
        model.conv_last.bias.fill_(float("inf"))
        model.conv_last.weight.zero_()
    with torch.no_grad():
        assert torch.isfinite(model(torch.rand(1, 3, 8, 8))).all()  # the clamped model output hides it
    with pytest.raises(NonFiniteOutputError):
        TorchBackend(model)(torch.rand(1, 3, 8, 8))


@pytest.mark.skipif(not cpu_supports(torch.float16), reason="this torch build has no fp16 conv on the CPU")
def test_fp16_overflow_is_detected_where_fp32_is_fine():
    model = overflowing()
    x = torch.rand(1, 3, 8, 8)
    TorchBackend(model, CommonOptions(precision="fp32"))(x)  # finite in fp32
    with pytest.raises(NonFiniteOutputError, match="fp16"):
        TorchBackend(model, CommonOptions(precision="fp16"))(x)


def test_guard_modes():
    nan = torch.tensor([1.0, float("nan")])
    g = FiniteGuard("here", mode="off")
    g.update(nan)
    g.flush()
    g = FiniteGuard("here", mode="deferred")  # on the CPU: checked at once
    with pytest.raises(NonFiniteOutputError, match="here"):
        g.update(nan)
    FiniteGuard("here").update(torch.ones(3))
    with pytest.raises(NonFiniteOutputError):
        check_finite(torch.tensor([float("-inf")]), "x")
    off = TorchBackend(tiny(), CommonOptions(finite_check="off"))
    with torch.no_grad():
        off._model.conv_last.bias.fill_(float("nan"))
    assert torch.isnan(off(torch.rand(1, 3, 4, 4))).all()


# ------------------------------------------------------------------------------ torch.compile and CUDA graph modes


def test_modes_with_cuda_graphs_are_read_from_torch_and_refused_with_cuda_graphs():
    from esrgan_video.runtime.torch_backend import COMPILE_MODES, mode_uses_cudagraphs

    assert {m for m in COMPILE_MODES if mode_uses_cudagraphs(m)} == {"reduce-overhead", "max-autotune"}
    assert not mode_uses_cudagraphs(None)
    for mode in ("reduce-overhead", "max-autotune"):
        with pytest.raises(BackendError, match=f"compile='{mode}' already uses CUDA graphs"):
            TorchBackend(tiny(), options=TorchOptions(compile=mode, cuda_graphs=True))


def test_bf16_needs_native_support_on_the_backends_own_gpu():
    from esrgan_video.runtime.torch_backend import bf16_native

    assert not bf16_native((7, 5))  # Turing: is_bf16_supported() says True (emulated), we say no
    assert bf16_native((8, 0)) and bf16_native((8, 9)) and bf16_native((9, 0)) and bf16_native((10, 0))


def test_cudagraph_modes_are_refused_on_threads_torch_cannot_run_them_from():
    import threading

    from esrgan_video.runtime.torch_backend import (
        check_cudagraph_thread,
        cudagraph_tls_ready,
        cudagraph_trees_thread_safe,
    )

    kw = dict(thread_safe=False, tls_ready=False)
    with pytest.raises(BackendError, match="pytorch/pytorch#123177"):
        check_cudagraph_thread("reduce-overhead", "cuda", **kw)
    with pytest.raises(BackendError, match="#123177"):
        check_cudagraph_thread("max-autotune", "cuda", **kw)
    check_cudagraph_thread("reduce-overhead", "cuda", thread_safe=False, tls_ready=True)  # the importing thread
    check_cudagraph_thread("reduce-overhead", "cuda", thread_safe=True, tls_ready=False)  # torch with the fix
    check_cudagraph_thread("max-autotune-no-cudagraphs", "cuda", **kw)
    check_cudagraph_thread("reduce-overhead", "cpu", **kw)  # no CUDA graphs on the CPU
    from torch._inductor import cudagraph_trees

    assert cudagraph_trees_thread_safe() == hasattr(cudagraph_trees, "graph_capture_lock")
    # the per-thread state torch asserts on: here in the importing thread, absent in a fresh Python thread
    assert cudagraph_tls_ready()
    seen = []
    t = threading.Thread(target=lambda: seen.append(cudagraph_tls_ready()))
    t.start()
    t.join()
    assert seen == [False]


def test_compile_survives_shape_churn_past_the_recompile_limit():
    """The Upscaler runs every frame size and the remainder batch through one backend: each shape must be its
    own compile. With the recompile limit at 1, a single fullgraph compile fails on the second shape.

    The smallest compact model (one inner convolution): the property is Dynamo's, whatever the graph, and each
    shape is a cold Inductor compile on CI; an RRDBNet (nb 1) took twice the CPU time (71 vs 34 s cold, 2 cores)."""
    import torch._dynamo

    torch.manual_seed(0)
    model = SRVGGNetCompact(CompactParams(nf=4, num_conv=1, scale=2)).eval()
    shapes = [(1, 3, 8, 8), (2, 3, 8, 8), (1, 3, 8, 12)]
    xs = [torch.rand(s) for s in shapes]
    with torch._dynamo.config.patch(recompile_limit=1):
        single = torch.compile(lambda x: model(x), backend="eager", dynamic=False, fullgraph=True)
        single(xs[0])
        with pytest.raises(Exception, match="fullgraph=True"):  # FailOnRecompileLimitHit: the defect this guards
            single(xs[1])
        with TorchBackend(model, options=TorchOptions(compile="default")) as b:
            for x in xs:
                with torch.no_grad():
                    ref = model(x)
                torch.testing.assert_close(b(x), ref, atol=1e-5, rtol=0)
            assert b.compiled_shapes == ((1, 8, 8), (2, 8, 8), (1, 8, 12))
            torch.testing.assert_close(b(xs[0]), model(xs[0]).detach(), atol=1e-5, rtol=0)  # reused, not recompiled
            assert len(b.compiled_shapes) == 3
