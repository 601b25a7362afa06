"""Files written whole or not at all, and one lock per file between processes.

- :func:`atomic_write` writes bytes under a private temporary name beside the target (unique per call, so
  processes and threads writing the same target never share one), flushes them to disk and renames the
  file into place: a reader sees the old file or the new one, never half of one, whatever kills the writer.
  The name, ``.NAME.<host>.<pid>.<random>.part`` (:func:`part_prefix`), carries the writing machine and process,
  so the next write of the same target on that machine removes what a writer killed outright (SIGKILL, power loss)
  left (:func:`remove_stale_parts`); another machine's, in a shared folder (NFS), is never taken for dead.
- :func:`link_target`: an output that is a symbolic link is written through, as ``ffmpeg -y`` does: every writer
  (this one, the video writer, still images, segment joins, downloads) puts its temporary file beside the file the
  link leads to and renames it onto that file, so the link stays.
- :func:`locked` holds an exclusive ``flock`` on a lock file (created if missing) for the ``with`` block; the
  kernel drops it when the process dies.
- :func:`check_output_place` and :func:`check_can_create`: whether an output file may go where it is asked to, said
  the same way by every face (video writer, still image, preview sheet): an existing output is an
  :class:`OutputExists`, which names the Python API's ``overwrite=True`` and, printed by the command line
  (:meth:`OutputExists.on_command_line`), ``--overwrite / -y``; a "folder" that is a file says so; a folder where
  no file can be created says that, with the system's reason.

Streams that are written incrementally (video outputs, segment joins) keep their own partial names
(``video.partials``), because those must be recognisable and removable after a crash.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import socket
import stat
import tempfile
from pathlib import Path
from typing import Iterator

from .errors import InputError, OutputError


def atomic_write(path: str | os.PathLike, data: bytes, *, mode: int | None = 0o644) -> Path:
    """Write ``data`` to ``path`` atomically (the parent folder is created); returns the path. A symbolic link at
    ``path`` is written through (:func:`link_target`): it stays, leading to the new file.

    ``mode``: the file's permission bits (temporary files are created 0600); None keeps that."""
    given = Path(path)
    given.parent.mkdir(parents=True, exist_ok=True)
    path = link_target(given)
    remove_stale_parts(path)
    fd, tmp = tempfile.mkstemp(prefix=part_prefix(path), suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return given


def link_target(path: str | os.PathLike) -> Path:
    """Where a write of ``path`` renames its finished file: ``path``, or where the symbolic link at ``path`` leads
    (links followed to the end; a broken link's missing file), so that the link stays and leads to the new output,
    as ``ffmpeg -y`` writes through a link (a rename onto the link's name put a file where the link was). Every writer
    puts its temporary file beside this path, on the file system of the rename. OutputError (one line naming ``path``)
    for a link loop and for a broken link into a folder that does not exist."""
    path = Path(path)
    if not os.path.islink(path):
        return path
    target = Path(os.path.realpath(path))
    if os.path.islink(target):  # realpath stops where a loop begins
        raise OutputError(f"{path}: is a symbolic link loop; name a file")
    if not target.parent.is_dir():
        raise OutputError(f"{path}: is a broken symbolic link to {os.readlink(path)}, and the directory "
                          f"{target.parent} does not exist")
    return target


def host_label() -> str:
    """This machine's name as temporary file names carry it (:func:`part_prefix`, ``video.partials``): the host name
    with every character but letters, digits and ``-`` made ``-`` (no dots: the names' fields are dot-separated)."""
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname()) or "-"


HOST_PATTERN = r"[A-Za-z0-9-]+"
"""What :func:`host_label` gives, as a regular expression."""


def part_prefix(path: str | os.PathLike) -> str:
    """The start of this process's temporary names for ``path`` (``.NAME.<host>.<pid>.``, :func:`host_label`;
    ``mkstemp`` adds the rest)."""
    return f".{Path(path).name}.{host_label()}.{os.getpid()}."


def process_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this machine (one we may not signal, another user's, counts as alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_parts(path: str | os.PathLike) -> list[Path]:
    """Delete the temporary files (``.NAME.<host>.<pid>.<random>.part``) beside ``path`` that this machine wrote
    and whose writing process no longer exists; returns them. Those of live processes (this one included) are left
    alone, and so are another machine's (a shared folder: its pid says nothing here). The names before the host was
    in them (``.NAME.<pid>.<random>.part``) are taken as this machine's, as they were."""
    path = Path(path)
    pattern = re.compile(r"\.%s\.(?:(%s)\.)?(\d+)\.[^.]+\.part" % (re.escape(path.name), HOST_PATTERN))
    try:
        names = os.listdir(path.parent)
    except OSError:
        return []
    host = host_label()
    removed = []
    for name in names:
        m = pattern.fullmatch(name)
        if m and m.group(1) in (None, host) and not process_alive(int(m.group(2))):
            try:
                (path.parent / name).unlink()
            except FileNotFoundError:  # another writer removed it first
                continue
            removed.append(path.parent / name)
    return removed


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """:func:`atomic_write` for UTF-8 text."""
    return atomic_write(path, text.encode("utf-8"))


@contextlib.contextmanager
def locked(lock_path: str | os.PathLike) -> Iterator[None]:
    """An exclusive lock on ``lock_path`` (a file created for it) across processes, for the ``with`` block."""
    lock_path = Path(lock_path)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


class OutputExists(OutputError):
    """The output exists and may not be replaced: "DST: already exists (pass overwrite=True to replace it)", or on
    the command line (:meth:`on_command_line`) "DST: already exists (use --overwrite / -y to replace it)"."""

    def __init__(self, dst: str | os.PathLike, how: str = "pass overwrite=True") -> None:
        self.dst, self.how = Path(dst), how
        super().__init__(f"{self.dst}: already exists ({how} to replace it)")

    def __reduce__(self):  # batch workers send errors across processes
        return (OutputExists, (self.dst, self.how))

    def on_command_line(self) -> "OutputExists":
        """The same error in the command line's words (its flag, not the API's keyword)."""
        new = OutputExists(self.dst, "use --overwrite / -y")
        new.__cause__ = self.__cause__
        return new


def special_kind(path: str | os.PathLike) -> str | None:
    """What ``path`` is when it exists but is neither a regular file nor a directory (a symbolic link followed): "a
    named pipe (FIFO)", "a character device", "a block device" or "a socket"; None otherwise (missing included)."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return None
    for test, kind in ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return kind
    return None


def check_regular_input(path: str | os.PathLike) -> None:
    """InputError (one line naming ``path``) when the input ``path`` is a named pipe, a device or a socket
    (:func:`special_kind`): every input is read more than once (a video's packet index, then its frames; a still's
    metadata, then its pixels), and a pipe gives its bytes once (``/dev/zero`` gives them without end). Only
    ``os.stat`` is asked, never an open: opening a named pipe for reading waits until something writes to it."""
    kind = special_kind(path)
    if kind is not None:
        raise InputError(f"{path}: is {kind}, not a file (an input is read more than once); save what it gives "
                         "to a file and give that file")


def check_output_place(dst: str | os.PathLike, *, overwrite: bool, src: str | os.PathLike | None = None) -> None:
    """OutputError (one line naming ``dst``) when ``dst`` cannot be written as a new output: it is a device, a named
    pipe or a socket (:func:`special_kind`; ``--overwrite`` or not: the rename into place would replace it); its folder is missing
    ("the directory D does not exist") or a file ("F is not a directory", F the nearest existing path above it); it
    is a directory; it is ``src`` (the input); it exists and ``overwrite`` is false (:class:`OutputExists`). Nothing is
    created."""
    dst = Path(dst)
    link_target(dst)  # a link loop, a broken link into no folder
    kind = special_kind(dst)
    if kind is not None:  # os.replace would put a file where the device or pipe was (root may rename in /dev)
        raise OutputError(f"{dst}: is {kind}, not a file (the finished output is renamed into place and would "
                          "replace it); name a file, or write to - (standard output) and redirect it")
    if not dst.parent.is_dir():
        above = next((p for p in dst.parents if p.exists()), None)  # the nearest folder or file that exists
        if above is not None and not above.is_dir():
            raise OutputError(f"{dst}: {above} is not a directory")
        raise OutputError(f"{dst}: the directory {dst.parent} does not exist")
    if dst.is_dir():
        raise OutputError(f"{dst}: is a directory")
    if src is not None:
        src = Path(src)
        same = dst.exists() and src.exists() and os.path.samefile(src, dst)
        if same or dst.resolve() == src.resolve():
            raise OutputError(f"{dst}: the output is the input file; choose another output name")
    if dst.exists() and not overwrite:
        raise OutputExists(dst)


def cannot_create(dst: str | os.PathLike, e: OSError) -> OutputError:
    """The error for a file beside ``dst`` that could not be created (``e``): "cannot create a file in D (reason)"."""
    dst = Path(dst)
    return OutputError(f"{dst}: cannot create a file in {dst.parent} ({e.strerror or e})")


def cannot_write(dst: str | os.PathLike, e: BaseException) -> OutputError:
    """The error for a write of ``dst`` that failed (``e``: a full disk, a folder gone read-only, an encoder's
    error): "D: cannot be written (reason)", the reason being the OS's words when there are some."""
    return OutputError(f"{dst}: cannot be written ({getattr(e, 'strerror', None) or e})")


def check_can_create(dst: str | os.PathLike) -> None:
    """:func:`cannot_create` unless a file can be created in ``dst``'s folder (a hidden one is made and removed),
    so that an unwritable folder is found before the work that would fill it (a folder of another user, a
    read-only mount, ``/sys``), not when the result is written."""
    dst = Path(dst)
    try:  # in the folder the file is renamed in: a link's target's
        fd, probe = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".probe", dir=link_target(dst).parent)
    except OSError as e:
        raise cannot_create(dst, e) from e
    os.close(fd)
    Path(probe).unlink(missing_ok=True)


__all__ = ["OutputExists", "atomic_write", "atomic_write_text", "cannot_create", "cannot_write", "check_can_create", "check_regular_input", "check_output_place", "link_target", "locked",
           "part_prefix", "remove_stale_parts", "special_kind"]
