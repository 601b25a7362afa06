"""The one downloader: atomic, sha256-verified, retried with backoff, with a progress bar.

The file is written under a temporary name in the destination's directory, flushed and fsynced, checked
(size and sha256) and only then renamed onto ``dest``; on any failure nothing is left at ``dest``.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import socket
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from ..errors import DownloadError
from ..files import link_target, part_prefix, remove_stale_parts

CHUNK = 1 << 16
USER_AGENT = "esrgan-video (+https://pypi.org/project/esrgan-video)"
OFFLINE_ENV = "ESRGAN_VIDEO_OFFLINE"


def offline_requested(offline: bool = False) -> bool:
    """True when ``offline`` is set or ``ESRGAN_VIDEO_OFFLINE`` is 1/true/yes/on."""
    return offline or os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


class _Permanent(Exception):
    """A failure that retrying will not fix (404, unknown host, checksum mismatch)."""


def download(url: str, dest: str | Path, **options) -> Path:
    """Fetch ``url`` into ``dest`` atomically and return ``dest``: :func:`download_sha256` (its keyword ``options``,
    ``sha256``, ``size``, ``retries``, ``progress``, ``offline``, ``timeout``, ``backoff``, say what they do there)."""
    download_sha256(url, dest, **options)
    return Path(dest)


def download_sha256(
    url: str,
    dest: str | Path,
    *,
    sha256: str | None = None,
    size: int | None = None,
    retries: int = 3,
    progress: bool = True,
    offline: bool = False,
    timeout: float = 30.0,
    backoff: float = 1.0,
) -> str:
    """Fetch ``url`` into ``dest`` atomically and return the file's full sha256 (hex), hashed while it streamed in
    (so a caller that records it need not read the file again).

    ``sha256`` is the full hex digest, or a published prefix of at least 8 hex digits (the torch.hub
    ``name-<sha256 prefix>.pth`` convention); ``size`` is the expected byte count. ``retries`` is the number
    of extra attempts after transient failures (connection errors, timeouts, 5xx, a body cut short), waiting
    ``backoff * 2**attempt`` seconds between them. ``offline`` (or ``ESRGAN_VIDEO_OFFLINE=1``) refuses to touch
    the network. Raises :class:`DownloadError` with one sentence naming the URL and the problem.
    """
    dest = Path(dest)
    if sha256 is not None:
        sha256 = sha256.strip().lower()
        if len(sha256) < 8 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError(f"download: sha256 must be hex digits (at least 8), got {sha256!r}")
    if retries < 0:
        raise ValueError(f"download: retries must be >= 0, got {retries}")
    if offline_requested(offline):
        raise DownloadError(
            f"cannot fetch {url} to {dest}: offline mode is on ({OFFLINE_ENV}=1 or --offline) and the file is not cached"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    last: Exception | None = None
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(backoff * 2 ** (attempt - 1))
        try:
            return _fetch_once(url, dest, sha256=sha256, size=size, progress=progress, timeout=timeout)
        except _Permanent as e:
            raise DownloadError(str(e)) from e.__cause__
        except _Transient as e:
            last = e
    assert last is not None
    raise DownloadError(f"{last} (gave up after {retries + 1} attempts)") from last.__cause__


class _Transient(Exception):
    """A failure worth retrying."""


def _fetch_once(url: str, dest: Path, *, sha256: str | None, size: int | None, progress: bool, timeout: float) -> str:
    """One attempt; the sha256 of what it wrote to ``dest``."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        message = f"cannot fetch {url}: the server answered HTTP {e.code} {e.reason}"
        if e.code >= 500 or e.code in (408, 429):
            raise _Transient(message) from e
        raise _Permanent(message) from e
    except urllib.error.URLError as e:
        reason = e.reason
        if isinstance(reason, socket.gaierror) and reason.errno != socket.EAI_AGAIN:
            host = urllib.parse.urlsplit(url).hostname
            raise _Permanent(
                f"cannot fetch {url}: host {host} cannot be resolved (offline, or blocked by a firewall?)"
            ) from e
        raise _Transient(f"cannot fetch {url}: {reason}") from e
    except (TimeoutError, OSError, http.client.HTTPException) as e:
        raise _Transient(f"cannot fetch {url}: {type(e).__name__}: {e}") from e

    dest = link_target(dest)  # a link in the cache stays, leading to the new file
    remove_stale_parts(dest)  # what a download killed outright (SIGKILL) left: a model's worth of bytes each
    fd, tmp_name = tempfile.mkstemp(prefix=part_prefix(dest), suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with response, os.fdopen(fd, "wb") as out:
            length = response.headers.get("Content-Length")
            expected = int(length) if length and length.isdigit() else None
            if size is not None and expected is not None and expected != size:
                raise _Permanent(f"cannot fetch {url}: the server offers {expected} bytes, expected {size}")
            h = hashlib.sha256()
            got = 0
            bar = _progress_bar(expected or size, dest.name, progress)
            try:
                while True:
                    try:
                        chunk = response.read(CHUNK)
                    except (TimeoutError, OSError, http.client.HTTPException) as e:
                        raise _Transient(f"cannot fetch {url}: the connection broke after {got} bytes "
                                         f"({type(e).__name__})") from e
                    if not chunk:
                        break
                    out.write(chunk)
                    h.update(chunk)
                    got += len(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
            finally:
                if bar is not None:
                    bar.close()
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; cached models are ordinary readable files
        if expected is not None and got != expected:
            raise _Transient(f"cannot fetch {url}: the connection closed after {got} of {expected} bytes")
        if size is not None and got != size:
            raise _Permanent(f"cannot fetch {url}: got {got} bytes, expected {size}")
        digest = h.hexdigest()
        if sha256 is not None and not digest.startswith(sha256):
            raise _Permanent(f"checksum mismatch for {url}: sha256 is {digest}, expected {sha256}; the file was discarded")
        os.replace(tmp, dest)
        _fsync_dir(dest.parent)
        return digest
    finally:
        tmp.unlink(missing_ok=True)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on directories; the rename is still atomic
    finally:
        os.close(fd)


def _progress_bar(total: int | None, name: str, enabled: bool):
    if not enabled or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=name, unit="B", unit_scale=True, unit_divisor=1024, leave=False)
