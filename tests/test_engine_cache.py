"""Engine cache: key sensitivity, file layout, sidecar and file validation, rebuild of untrusted entries.

TensorRT-free: engines here are opaque bytes. The TensorRT side (a garbage engine that passes
the file checks is rejected by deserialize_cuda_engine and rebuilt) is in tests/test_gpu.py.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from esrgan_video.arch.rrdbnet import RRDBNet, RRDBParams
from esrgan_video.errors import BackendError
from esrgan_video.runtime import engine_cache as ec
from esrgan_video.runtime.onnx_export import ExportSpec
from esrgan_video.runtime.tensorrt_backend import BuildOptions, make_key, profile_shapes

KEY = ec.EngineKey(
    weights_sha256="a" * 64, scale=4, min_shape=(1, 270, 480), opt_shape=(1, 270, 480), max_shape=(1, 270, 480),
    precision="fp16", fp32_layers=(), opset=17, exporter="torchscript/torch-2.14", trt_version="10.12.0",
    cuda_major="12", gpu_name="NVIDIA H100 80GB HBM3", compute_capability="9.0", opt_level=3, workspace_mib=0,
)

CHANGES = {
    "weights_sha256": "b" * 64, "scale": 2, "min_shape": (1, 256, 256), "opt_shape": (2, 270, 480),
    "max_shape": (4, 270, 480), "precision": "fp32", "fp32_layers": ("conv_first",), "opset": 18,
    "exporter": "torchscript/torch-2.15", "trt_version": "11.0.0", "cuda_major": "13", "gpu_name": "NVIDIA H200",
    "compute_capability": "8.9", "opt_level": 5, "workspace_mib": 4096, "dynamic": True, "profiles": 2,
    "format": ec.ENGINE_FORMAT + 1,
}


def test_every_field_changes_the_key():
    assert set(CHANGES) == {f.name for f in dataclasses.fields(ec.EngineKey)}
    digests = {KEY.digest()}
    for field, value in CHANGES.items():
        other = dataclasses.replace(KEY, **{field: value})
        assert other.digest() != KEY.digest(), field
        assert KEY.differences(other) == [f"{field}: expected {KEY.to_dict()[field]!r}, got {other.to_dict()[field]!r}"]
        digests.add(other.digest())
    assert len(digests) == len(CHANGES) + 1
    assert dataclasses.replace(KEY).digest() == KEY.digest()  # deterministic


def test_key_round_trips_through_json():
    assert ec.EngineKey.from_dict(json.loads(json.dumps(KEY.to_dict()))) == KEY
    with pytest.raises(ValueError, match="missing"):
        ec.EngineKey.from_dict({k: v for k, v in KEY.to_dict().items() if k != "opset"})


def test_make_key_reads_model_spec_and_options():
    torch.manual_seed(0)
    model = RRDBNet(RRDBParams(nf=8, nb=1, gc=4, scale=2)).eval()
    spec = ExportSpec((64, 96), batch=2)
    k = make_key(model, spec, BuildOptions(), trt_ver="10.12.0", cuda_major="12", gpu_name="G", capability="9.0")
    assert k.static and k.opt_shape == (2, 64, 96) and k.scale == 2 and k.precision == "fp16"
    assert k.weights_sha256 == ec.weights_sha256(model)
    with torch.no_grad():
        model.conv_last.bias.add_(1e-3)
    k2 = make_key(model, spec, BuildOptions(), trt_ver="10.12.0", cuda_major="12", gpu_name="G", capability="9.0")
    assert k2.weights_sha256 != k.weights_sha256  # weights are hashed, not named
    dyn = make_key(model, dataclasses.replace(spec, dynamic=True), BuildOptions(min_shape=(1, 32, 32), max_shape=(4, 128, 128)),
                   trt_ver="10.12.0", cuda_major="12", gpu_name="G", capability="9.0")
    assert not dyn.static and dyn.min_shape == (1, 32, 32) and dyn.max_shape == (4, 128, 128)
    with pytest.raises(BackendError, match="min <= opt <= max"):
        profile_shapes(spec, BuildOptions(min_shape=(1, 80, 32), max_shape=(4, 128, 128)))
    with pytest.raises(BackendError, match="0-5"):
        BuildOptions(opt_level=7)


def test_engines_dir_in_a_checkout_and_by_env(monkeypatch, tmp_path):
    root = ec.checkout_root()
    assert root is not None and (root / "engines").is_dir()  # tests run from the source tree
    monkeypatch.delenv(ec.ENGINES_ENV, raising=False)
    assert ec.engines_dir() == root / "engines" / "cache"
    monkeypatch.setenv(ec.ENGINES_ENV, str(tmp_path / "e"))
    assert ec.engines_dir() == tmp_path / "e"


def test_paths_are_pure_and_distinct(tmp_path):
    p = ec.engine_paths(KEY, "RealESRGAN_x4plus", tmp_path)
    assert p == ec.engine_paths(KEY, "RealESRGAN_x4plus", tmp_path)
    assert p.engine.name == f"RealESRGAN_x4plus-{KEY.digest()[:16]}.engine"
    assert p.sidecar.name == p.engine.name + ".json"
    other = ec.engine_paths(dataclasses.replace(KEY, opt_level=1), "RealESRGAN_x4plus", tmp_path)
    assert other.engine != p.engine
    assert ec.timing_cache_path(KEY, tmp_path).name == "timing-trt10.12.0-cu12-NVIDIA-H100-80GB-HBM3-sm9.0.timing"
    assert ec.engine_paths(KEY, "a/b c", tmp_path).engine.parent == tmp_path


def test_validation_detects_every_kind_of_bad_entry(tmp_path):
    p = ec.engine_paths(KEY, "m", tmp_path)
    assert ec.validate_entry(p, KEY) == (None, "not built yet")
    data = b"ENGINE" * 1000
    ec.write_entry(p, KEY, data, label="m", build_seconds=1.5)
    assert ec.validate_entry(p, KEY) == (data, "")
    side = json.loads(p.sidecar.read_text())
    assert side["engine_size"] == len(data) and side["model"] == "m" and side["digest"] == KEY.digest()

    stale = dataclasses.replace(KEY, trt_version="10.13.0")
    got, why = ec.validate_entry(p, stale)
    assert got is None and "key mismatch" in why and "trt_version: expected '10.13.0', got '10.12.0'" in why

    p.engine.write_bytes(data[:-100])
    got, why = ec.validate_entry(p, KEY)
    assert got is None and "truncated" in why

    p.engine.write_bytes(b"X" + data[1:])
    got, why = ec.validate_entry(p, KEY)
    assert got is None and "corrupt" in why

    p.engine.write_bytes(data)
    p.sidecar.write_text("{not json")
    got, why = ec.validate_entry(p, KEY)
    assert got is None and "unreadable sidecar" in why

    p.sidecar.unlink()
    got, why = ec.validate_entry(p, KEY)
    assert got is None and "no sidecar" in why


def test_get_or_build_hits_rebuilds_and_never_trusts(tmp_path):
    builds: list[int] = []

    def build() -> bytes:
        builds.append(1)
        return b"engine-v1" * 100

    def load(data: bytes) -> str:  # a loader that rejects bytes it cannot use, like deserialize_cuda_engine
        if not data.startswith(b"engine-v1"):
            raise ValueError("not an engine")
        return "loaded"

    log: list[str] = []
    obj, out = ec.get_or_build(KEY, label="m", root=tmp_path, build=build, load=load, log=log.append)
    assert obj == "loaded" and not out.hit and len(builds) == 1 and log == []
    obj, out = ec.get_or_build(KEY, label="m", root=tmp_path, build=build, load=load, log=log.append)
    assert out.hit and len(builds) == 1

    # a file that passes the size/sha256 checks (sidecar rewritten to match) but does not load
    garbage = b"garbage!!" * 100
    out.paths.engine.write_bytes(garbage)
    ec.write_entry(out.paths, KEY, garbage, label="m", build_seconds=0)
    obj, out2 = ec.get_or_build(KEY, label="m", root=tmp_path, build=build, load=load, log=log.append)
    assert not out2.hit and len(builds) == 2 and "failed to load" in out2.note and "rebuilding" in log[-1]
    assert out2.paths.engine.read_bytes().startswith(b"engine-v1")

    # truncated file → rebuilt
    out2.paths.engine.write_bytes(b"engine-v1")
    _, out3 = ec.get_or_build(KEY, label="m", root=tmp_path, build=build, load=load, log=log.append)
    assert not out3.hit and "truncated" in out3.note and len(builds) == 3

    # a fresh build that cannot load is an error, and leaves nothing behind
    with pytest.raises(BackendError, match="freshly built engine failed to load"):
        ec.get_or_build(dataclasses.replace(KEY, opt_level=0), label="m", root=tmp_path,
                        build=lambda: b"junk", load=load)
    assert not ec.engine_paths(dataclasses.replace(KEY, opt_level=0), "m", tmp_path).engine.exists()


def test_list_and_clear(tmp_path):
    a = ec.engine_paths(KEY, "RealESRGAN_x4plus", tmp_path)
    kb = dataclasses.replace(KEY, weights_sha256="c" * 64, opt_shape=(4, 270, 480), max_shape=(4, 270, 480),
                             min_shape=(4, 270, 480))
    b = ec.engine_paths(kb, "RealESRGAN_x4plus_anime_6B", tmp_path)
    ec.write_entry(a, KEY, b"a" * 2048, label="RealESRGAN_x4plus", build_seconds=3)
    ec.write_entry(b, kb, b"b" * 4096, label="RealESRGAN_x4plus_anime_6B", build_seconds=3)
    (tmp_path / "orphan.engine").write_bytes(b"o")
    ec.timing_cache_path(KEY, tmp_path).write_bytes(b"t")
    entries = ec.list_entries(tmp_path)
    assert [e.model for e in entries] == ["RealESRGAN_x4plus", "RealESRGAN_x4plus_anime_6B", "?"]
    assert entries[0].problem == "" and entries[0].size == 2048 and entries[0].key == KEY
    assert "NxHxW 1x270x480" in entries[0].describe() and "fp16" in entries[0].describe()
    assert "engine without sidecar" in entries[2].describe()

    removed = ec.clear_entries(tmp_path, model="RealESRGAN_x4plus_anime_6B")
    assert sorted(p.name for p in removed) == sorted([b.engine.name, b.sidecar.name])
    assert a.engine.exists()
    ec.clear_entries(tmp_path)
    assert list(tmp_path.iterdir()) == []
    assert ec.list_entries(tmp_path / "missing") == []


def write_old_entry(root, label: str, data: bytes) -> ec.EnginePaths:
    """An entry as esrgan-video wrote it before 7f0d115: the same sidecar, its key without ``cuda_major``."""
    paths = ec.engine_paths(KEY, label, root)
    ec.write_entry(paths, KEY, data, label=label, build_seconds=3)
    side = json.loads(paths.sidecar.read_text())
    del side["key"]["cuda_major"]
    paths.sidecar.write_text(json.dumps(side))
    return paths


def test_an_older_versions_entries_list_as_such_and_clear_by_their_model(tmp_path):
    old = write_old_entry(tmp_path, "RealESRGAN_x4plus", b"o" * 1024)
    other = write_old_entry(tmp_path, "RealESRGAN_x2plus", b"p" * 1024)
    bad = tmp_path / "junk-0123456789abcdef.engine"
    bad.write_bytes(b"j")
    bad.with_name(bad.name + ".json").write_text("{not json")
    entries = {e.sidecar.name: e for e in ec.list_entries(tmp_path)}
    e = entries[old.sidecar.name]
    assert e.model == "RealESRGAN_x4plus" and e.outdated and e.key is None and e.size == 1024
    assert "from an older esrgan-video, rebuilt on use" in e.describe() and "BROKEN" not in e.describe()
    assert "missing ['cuda_major']" in e.describe()
    assert "BROKEN" in entries[bad.name + ".json"].describe()  # an unreadable sidecar is still broken

    removed = ec.clear_entries(tmp_path, model="RealESRGAN_x4plus")
    assert sorted(p.name for p in removed) == sorted([old.engine.name, old.sidecar.name])
    assert other.engine.exists() and bad.exists()  # another model's, and one without a readable sidecar, stay
    ec.clear_entries(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_key_that_is_no_older_layout_is_broken_not_older(tmp_path):
    """A key without ``format`` and with fields no version wrote listed as 'from an older esrgan-video' (a missing
    format read as 0, older than any): only a real older layout (lacking fields added later) is older."""
    def entry(edit) -> ec.CacheEntry:
        paths = ec.engine_paths(KEY, "RealESRGAN_x4plus", tmp_path)
        ec.write_entry(paths, KEY, b"e" * 64, label="RealESRGAN_x4plus", build_seconds=1)
        side = json.loads(paths.sidecar.read_text())
        edit(side["key"])
        paths.sidecar.write_text(json.dumps(side))
        (found,) = [e for e in ec.list_entries(tmp_path) if e.sidecar == paths.sidecar]
        return found

    def junk(key):
        del key["format"]
        key["colour"] = "blue"

    def no_format(key):
        del key["format"]
        del key["cuda_major"]

    def core_missing(key):
        del key["weights_sha256"]

    for edit in (junk, no_format, core_missing, lambda key: key.clear()):
        e = entry(edit)
        assert not e.outdated and e.key is None and e.model == "RealESRGAN_x4plus", edit
        assert e.describe().startswith(f"{e.sidecar.name}: BROKEN (key fields differ"), e.describe()
        assert "older" not in e.describe()

    def format_1(key):  # the first layout: no dynamic, profiles or cuda_major
        key["format"] = 1
        for f in ("dynamic", "profiles", "cuda_major"):
            del key[f]

    def older_format_only(key):
        key["format"] = ec.ENGINE_FORMAT - 1
        key["junk"] = 1

    assert entry(format_1).outdated and "from an older esrgan-video" in entry(format_1).describe()
    assert not entry(older_format_only).outdated  # an unknown field is junk whatever format it claims


def test_a_newer_versions_entries_list_as_such_are_never_loaded_and_clear_by_their_model(tmp_path):
    """A key that records a newer ``format`` (a newer esrgan-video's: fields added or dropped, or only the format
    moved on) listed as BROKEN (3ad86aa); it is a newer version's entry, which this one never loads (the lookup names
    entries by the digest of its own key and compares every field) and builds its own engine beside on use."""
    future = ec.ENGINE_FORMAT + 1

    def write(label: str, edit) -> ec.EnginePaths:
        paths = ec.engine_paths(KEY, label, tmp_path)
        ec.write_entry(paths, KEY, b"n" * 512, label=label, build_seconds=1)
        side = json.loads(paths.sidecar.read_text())
        side["key"]["format"] = future
        edit(side["key"])
        paths.sidecar.write_text(json.dumps(side))
        return paths

    def added_a_field(key):
        key["tiling"] = 4
        del key["cuda_major"]

    added = write("RealESRGAN_x4plus", added_a_field)
    same_fields = write("RealESRGAN_x2plus", lambda key: None)  # parses as this version's key: still not current
    entries = {e.sidecar: e for e in ec.list_entries(tmp_path)}
    for paths, model in ((added, "RealESRGAN_x4plus"), (same_fields, "RealESRGAN_x2plus")):
        e = entries[paths.sidecar]
        assert e.newer and not e.outdated and e.key is None and e.named and e.model == model and e.size == 512
        assert e.describe() == (f"{paths.sidecar.name}  {model}  from a newer esrgan-video (rebuilt on use by this "
                                f"one): key format {future}, this one's {ec.ENGINE_FORMAT}")
        assert "BROKEN" not in e.describe() and "older" not in e.describe()

    # the lookup of this version's key at that very path (its digest's) does not take the newer engine: it rebuilds
    data, why = ec.validate_entry(same_fields, KEY)
    assert data is None and f"format: expected {ec.ENGINE_FORMAT}, got {future}" in why
    loaded = []
    obj, outcome = ec.get_or_build(KEY, label="RealESRGAN_x2plus", root=tmp_path, build=lambda: b"c" * 256,
                                   load=lambda b: loaded.append(b) or len(b))
    assert obj == 256 and not outcome.hit and loaded == [b"c" * 256]
    rebuilt = {e.sidecar: e for e in ec.list_entries(tmp_path)}[same_fields.sidecar]
    assert not rebuilt.newer and rebuilt.key == KEY and not rebuilt.problem

    removed = ec.clear_entries(tmp_path, model="RealESRGAN_x4plus")  # a newer entry goes with its model
    assert sorted(p.name for p in removed) == sorted([added.engine.name, added.sidecar.name])
    assert same_fields.engine.exists()


def test_an_older_versions_timing_caches_are_found_and_cleared(tmp_path):
    current = ec.timing_cache_path(KEY, tmp_path)
    old = tmp_path / "timing-trt10.12.0-NVIDIA-H100-80GB-HBM3-sm9.0.timing"  # the name before 7f0d115
    for p in (current, old):
        p.write_bytes(b"t")
    assert ec.outdated_timing_caches(tmp_path) == [old]
    assert ec.outdated_timing_caches(tmp_path / "missing") == []
    ec.clear_entries(tmp_path, model="RealESRGAN_x4plus")
    assert old.exists() and current.exists()  # timing caches are shared: only a full clear removes them
    ec.clear_entries(tmp_path)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------ weights, dynamic, profiles


def test_the_key_hashes_the_weights_exported_not_the_load_time_hash():
    from types import SimpleNamespace

    from esrgan_video.models.loading import state_dict_sha256

    torch.manual_seed(0)
    model = RRDBNet(RRDBParams(nf=8, nb=1, gc=4)).eval()
    model.info = SimpleNamespace(sha256="f" * 64, name="m")  # what ModelInfo recorded at load
    spec = ExportSpec((32, 32))

    def key(m):
        return make_key(m, spec, BuildOptions(), trt_ver="10.12.0", cuda_major="12", gpu_name="G", capability="9.0")

    k = key(model)
    assert k.weights_sha256 == state_dict_sha256(model.state_dict()) != "f" * 64
    with torch.no_grad():
        model.body[0].rdb1.conv1.weight.mul_(1.5)  # edited in place after loading; info.sha256 unchanged
    assert key(model).weights_sha256 != k.weights_sha256
    half = RRDBNet(RRDBParams(nf=8, nb=1, gc=4)).eval()
    half.load_state_dict(model.state_dict())
    half.half()  # loaded as fp16: rounded weights, a different engine even when exported as fp32
    assert key(half).weights_sha256 != key(model).weights_sha256


def test_dynamic_is_min_differs_from_max_and_profiles_follow_streams():
    model = RRDBNet(RRDBParams(nf=8, nb=1, gc=4)).eval()
    same = BuildOptions(min_shape=(1, 32, 48), max_shape=(1, 32, 48))
    assert not same.dynamic and not BuildOptions().dynamic
    wide = BuildOptions(min_shape=(1, 16, 16), max_shape=(2, 64, 64))
    assert wide.dynamic
    facts = dict(trt_ver="10.12.0", cuda_major="12", gpu_name="G", capability="9.0")
    static = make_key(model, ExportSpec((32, 48), dynamic=False), same, streams=3, **facts)
    assert static.static and not static.dynamic and static.profiles == 0  # no profile needed, any stream count
    dyn = make_key(model, ExportSpec((32, 48), dynamic=True), wide, streams=3, **facts)
    assert dyn.dynamic and dyn.profiles == 3 and dyn.digest() != static.digest()
    assert make_key(model, ExportSpec((32, 48), dynamic=True), wide, streams=2, **facts).digest() != dyn.digest()
    with pytest.raises(BackendError, match="dynamic axes"):  # a dynamic graph with min == max: no profile, no build
        make_key(model, ExportSpec((32, 48), dynamic=True), same, **facts)
    from esrgan_video.runtime.tensorrt_backend import MAX_STREAMS, profile_count

    assert profile_count(False, 4) == 0 and profile_count(True, 1) == 1 and profile_count(True, MAX_STREAMS) == 4
    with pytest.raises(BackendError, match="streams must be 1-4"):
        profile_count(True, 5)


# ------------------------------------------------------------------------------ timing caches (fake builder)


def test_a_timing_cache_is_one_per_tensorrt_build_and_gpu_and_shared_by_their_engines(tmp_path):
    """Timings are valid for one TensorRT build and one device ("specific to the targeted device, CUDA, TensorRT
    versions"): another TensorRT version, CUDA major (the cu12 and cu13 wheels of one release share its version),
    GPU or compute capability never opens the same file (TensorRT's own header check,
    set_timing_cache(ignore_mismatch=False), is the second guard); engines of other models, shapes, precisions or
    builder levels on the same GPU and TensorRT build share it."""
    assert ec.TIMING_FIELDS == ("trt_version", "cuda_major", "gpu_name", "compute_capability")
    path = ec.timing_cache_path(KEY, tmp_path)
    for field in ec.TIMING_FIELDS:
        other_key = dataclasses.replace(KEY, **{field: CHANGES[field]})
        other = ec.timing_cache_path(other_key, tmp_path)
        assert other != path and other.parent == tmp_path, field
        assert ec.timing_cache_key(other_key) != ec.timing_cache_key(KEY), field
    assert ec.timing_cache_path(dataclasses.replace(KEY, cuda_major="13"), tmp_path).name == (
        "timing-trt10.12.0-cu13-NVIDIA-H100-80GB-HBM3-sm9.0.timing")
    assert ec.timing_cache_path(dataclasses.replace(KEY, gpu_name="NVIDIA H100 PCIe"), tmp_path) != path
    shared = {f: v for f, v in CHANGES.items() if f not in ec.TIMING_FIELDS}
    for field, value in shared.items():
        other_key = dataclasses.replace(KEY, **{field: value})
        assert ec.timing_cache_path(other_key, tmp_path) == path, field
        assert ec.timing_cache_key(other_key) == ec.timing_cache_key(KEY), field


@pytest.mark.parametrize("dists,torch_cuda,expected", [
    (["tensorrt_cu12"], "12.8", "12"),
    (["tensorrt_cu13_bindings"], "12.8", "13"),  # TensorRT's own build decides, not torch's (a cu12 torch + cu13 TRT)
    (["tensorrt-cu13-libs"], None, "13"),
    (["TensorRT_CU12_libs"], "13.0", "12"),
    (["tensorrt"], "13.0", "13"),  # a tar/container install's plain wheel: built for the CUDA the process runs
    ([], "12.6", "12"),
    (["tensorrt"], None, "unknown"),
    (["tensorrt_cuda_helper", "tensorrt_cux"], "", "unknown"),  # not a _cuNN name
])
def test_cuda_major_comes_from_the_tensorrt_wheel_names_else_torch(dists, torch_cuda, expected):
    assert ec.cuda_major(dists, torch_cuda) == expected


def test_tensorrt_cuda_major_reads_this_environment():
    """The installed distributions named tensorrt*, else torch's CUDA major ('unknown' for a CPU-only torch)."""
    import importlib.metadata as md

    names = ec.tensorrt_distributions()
    assert names == sorted({d.metadata["Name"] for d in md.distributions()
                            if (d.metadata["Name"] or "").lower().startswith("tensorrt")})
    assert ec.tensorrt_cuda_major() == ec.cuda_major(names, torch.version.cuda)
    if not names:  # this machine: no TensorRT
        assert ec.tensorrt_cuda_major() == (torch.version.cuda.split(".")[0] if torch.version.cuda else "unknown")


def test_equal_effective_options_give_one_key():
    """The key is over the resolved options: the defaults given explicitly, the fp32 layers in another order,
    repeated or with a layer inside another one named, build the same engine and so give the same key (each was a
    rebuild of an identical engine); different effective options still differ."""
    from esrgan_video.runtime.tensorrt_backend import canonical_fp32_layers

    model = RRDBNet(RRDBParams(nf=8, nb=2, gc=4)).eval()
    facts = dict(trt_ver="10.12.0", cuda_major="12", gpu_name="G", capability="9.0")

    def key(spec, options=BuildOptions(), **kw):
        return make_key(model, spec, options, **{**facts, **kw}).digest()

    base = key(ExportSpec((32, 48)))
    explicit = BuildOptions(opt_level=3, workspace_mib=0, min_shape=(1, 32, 48), max_shape=(1, 32, 48))
    assert key(ExportSpec((32, 48), batch=1, precision="fp16", fp32_layers=(), dynamic=False, opset=17,
                          exporter="torchscript"), explicit, streams=4) == base
    layers = key(ExportSpec((32, 48), fp32_layers=("conv_first", "body")))
    for same in (("body", "conv_first"), ("body", "conv_first", "body"), ("body.1", "conv_first", "body", "body.0.rdb1")):
        assert key(ExportSpec((32, 48), fp32_layers=same)) == layers, same
    assert canonical_fp32_layers(("body.1", "conv_first", "body", "body.0.rdb1")) == ("body", "conv_first")
    assert canonical_fp32_layers(("body.1", "body.10", "body.1.rdb2")) == ("body.1", "body.10")  # no prefix match
    assert key(ExportSpec((32, 48), fp32_layers=("body.0",))) != key(ExportSpec((32, 48), fp32_layers=("body",)))
    assert layers != base and key(ExportSpec((32, 48)), BuildOptions(opt_level=4)) != base
    with pytest.raises(BackendError, match="unknown submodule 'body.9'"):  # a cached engine's key hides no typo
        key(ExportSpec((32, 48), fp32_layers=("body", "body.9")))


class FakeTimingCache:
    """Stands in for trt.ITimingCache: a set of timings for one GPU, serialised as JSON."""

    def __init__(self, gpu: str, timings: dict[str, float]) -> None:
        self.gpu, self.timings = gpu, dict(timings)

    def serialize(self) -> bytes:
        return b"TC1" + json.dumps({"gpu": self.gpu, "t": self.timings}, sort_keys=True).encode()

    def combine(self, other: "FakeTimingCache", ignore_mismatch: bool) -> bool:
        if other.gpu != self.gpu:
            return False
        self.timings.update({k: v for k, v in other.timings.items() if k not in self.timings})
        return True


class FakeConfig:
    """Stands in for trt.IBuilderConfig's timing-cache calls, with TensorRT's failure modes: None for
    bytes it cannot parse, False from set_timing_cache for another GPU's cache."""

    def __init__(self, gpu: str = "G") -> None:
        self.gpu = gpu
        self.attached: FakeTimingCache | None = None

    def create_timing_cache(self, data: bytes):
        if not data:
            return FakeTimingCache(self.gpu, {})
        if not data.startswith(b"TC1"):
            return None
        try:
            d = json.loads(data[3:])
        except ValueError:
            return None
        return FakeTimingCache(d["gpu"], d["t"])

    def set_timing_cache(self, cache, ignore_mismatch: bool) -> bool:
        if cache is None:
            raise TypeError("set_timing_cache(): incompatible function arguments")  # what the binding does
        if cache.gpu != self.gpu:
            return False
        self.attached = cache
        return True


def fake_build(path, tactic: str, gpu: str = "G", log=lambda msg: None, pause: float = 0.0) -> dict:
    """What build_engine does with the timing cache: load (attach), let the builder add timings, save."""
    import time

    config = FakeConfig(gpu)
    cache = ec.load_timing_cache(config, path, log)
    assert config.attached is cache
    cache.timings[tactic] = 1.0  # the builder's new measurement
    time.sleep(pause)
    ec.save_timing_cache(config, cache, path, log)
    return cache.timings


def read_timings(path) -> dict:
    return json.loads(path.read_bytes()[3:])["t"]


def test_a_corrupt_or_foreign_timing_cache_never_fails_a_build(tmp_path):
    path = tmp_path / "timing-x.timing"
    log: list[str] = []
    assert fake_build(path, "conv_a", log=log.append) == {"conv_a": 1.0} and log == []  # no file yet: fresh
    assert fake_build(path, "conv_b", log=log.append) == {"conv_a": 1.0, "conv_b": 1.0}  # reused
    path.write_bytes(b"TC1{truncated")  # create_timing_cache returns None for this
    assert fake_build(path, "conv_c", log=log.append) == {"conv_c": 1.0}
    assert "unreadable" in log[-1] and str(path) in log[-1]
    assert read_timings(path) == {"conv_c": 1.0}  # the bad file was replaced, not merged
    other_gpu = FakeTimingCache("H", {"old": 2.0}).serialize()
    path.write_bytes(other_gpu)  # set_timing_cache returns False for this
    assert fake_build(path, "conv_d", log=log.append) == {"conv_d": 1.0}
    assert "does not match" in log[-2] and "could not be merged; overwriting" in log[-1]
    assert read_timings(path) == {"conv_d": 1.0}
    assert list(tmp_path.glob(".*.part")) == []  # no temporary file left behind


def test_concurrent_builds_merge_their_timings(tmp_path):
    import threading

    path = tmp_path / "timing-x.timing"
    threads = [threading.Thread(target=fake_build, args=(path, f"conv_{i}"), kwargs={"pause": 0.05})
               for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # every build read the file before the others saved; each save merged what was there
    assert read_timings(path) == {f"conv_{i}": 1.0 for i in range(6)}


def _process_build(root: str, counter: str, tactic: str) -> None:
    """One batch-mode worker: get_or_build of one engine whose build also updates the shared timing cache."""
    import os
    import time
    from pathlib import Path

    def build() -> bytes:
        with open(counter, "a") as f:
            f.write(f"{os.getpid()}\n")
        fake_build(Path(root) / "timing-x.timing", tactic, pause=0.3)
        time.sleep(0.2)
        return b"engine" * 500

    ec.get_or_build(KEY, label="m", root=Path(root), build=build, load=lambda data: len(data))
    # and a second engine each, built in parallel with the other process's (different keys, one timing cache)
    other = dataclasses.replace(KEY, opt_level=int(tactic[-1]))
    ec.get_or_build(other, label="m", root=Path(root),
                    build=lambda: (fake_build(Path(root) / "timing-x.timing", tactic + "_2", pause=0.2), b"e2")[1],
                    load=lambda data: len(data))


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")  # the children use no threads
def test_two_processes_sharing_one_cache_build_each_engine_once(tmp_path):
    import multiprocessing

    counter = tmp_path / "builds.txt"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_process_build, args=(str(tmp_path), str(counter), f"p{i}")) for i in (1, 2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    assert len(counter.read_text().split()) == 1  # the second process waited on the lock, then loaded it
    data, why = ec.validate_entry(ec.engine_paths(KEY, "m", tmp_path), KEY)
    assert why == "" and data == b"engine" * 500
    timings = read_timings(tmp_path / "timing-x.timing")
    assert {"p1_2", "p2_2"} <= set(timings) and len(set(timings) & {"p1", "p2"}) == 1
    assert list(tmp_path.glob(".*.part")) == []


class RaisingConfig(FakeConfig):
    """A binding that raises for bytes it cannot parse, instead of returning None."""

    def create_timing_cache(self, data: bytes):
        if data and not data.startswith(b"TC1"):
            raise RuntimeError("Failed to deserialize the timing cache")
        return super().create_timing_cache(data)


def test_a_timing_cache_the_binding_raises_for_is_replaced_not_fatal(tmp_path):
    path = tmp_path / "timing-x.timing"
    path.write_bytes(b"\x00garbage")
    log: list[str] = []
    config = RaisingConfig()
    cache = ec.load_timing_cache(config, path, log.append)
    assert config.attached is cache and cache.timings == {}  # a fresh cache, attached
    assert "RuntimeError: Failed to deserialize" in log[0] and "unreadable" in log[1]
    cache.timings["conv"] = 1.0
    ec.save_timing_cache(config, cache, path, log.append)  # the file still does not parse: replaced
    assert read_timings(path) == {"conv": 1.0}
