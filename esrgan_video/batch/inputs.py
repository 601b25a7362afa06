"""Batch inputs: turn what the user typed into a list of jobs (source → output).

Two steps, so the mapping can be tested without a file system:

- ``discover(inputs, ...)`` (reads the file system) expands every input into ``Source`` entries:
  a file stays itself; a directory is walked recursively for files with a video extension and becomes
  the *root* of those files; a glob (``*``, ``?``, ``[``) expands to its matches; ``@list.txt`` or any
  existing ``.txt`` input is a list of inputs, one per line (blank lines and ``#`` comments skipped,
  relative paths taken from the list file's folder), each expanded like a command-line input.
- ``plan_jobs(sources, outdir, ...)`` (pure) maps each source to its output: files under a directory input
  keep their relative path under ``outdir``; plain files and glob matches land in ``outdir`` directly.
  Two sources that would write the same output, or an output that would overwrite its own source,
  raise ``InputError`` before anything starts.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Iterable, Sequence

from ..errors import InputError, OptionError
from ..files import check_regular_input, special_kind
from ..video.images import IMAGE_EXTENSIONS
from .journal import JOURNAL_NAME

VIDEO_EXTENSIONS: frozenset[str] = frozenset({
    ".mkv", ".mp4", ".m4v", ".mov", ".avi", ".webm", ".ts", ".m2ts", ".mts", ".mpg", ".mpeg", ".vob",
    ".wmv", ".flv", ".ogv", ".3gp", ".y4m", ".nut", ".mxf", ".dv",
})
"""Extensions (lower case, with the dot) picked up when walking a directory input."""

DEFAULT_EXT = ".mkv"
"""The output container of a video (``--ext``'s default), also where ``--ext`` names an image's extension."""

_GLOB_CHARS = frozenset("*?[")
LIST_NOTE = "each line of a .txt input is an input"


@dataclass(frozen=True)
class Source:
    """One input file; ``root`` is the directory input it was found under (``None`` for a plain file)."""

    path: Path
    root: Path | None = None
    found: bool = False
    """Matched by a glob (not named as an input): like a walk's files, never one of the batch's own outputs."""


@dataclass(frozen=True)
class Job:
    """One file to upscale. ``key`` is the output path relative to the output folder (POSIX form), stable across runs."""

    src: Path
    dst: Path
    key: str


def normalize_ext(ext: str) -> str:
    """``"mkv"`` or ``".mkv"`` → ``".mkv"``; raises ``OptionError`` (exit 2) for an empty or odd extension."""
    e = ext if ext.startswith(".") else "." + ext
    if len(e) < 2 or "/" in e or os.sep in e or e.count(".") != 1:
        raise OptionError("--ext", "a file extension such as 'mkv' or '.mp4'", ext)
    return e


def discover(
    inputs: Sequence[str | os.PathLike],
    *,
    extensions: Iterable[str] = VIDEO_EXTENSIONS,
    exclude: Sequence[str | os.PathLike] = (),
    outputs: Iterable[str | os.PathLike] = (),
    skipped: list[Path] | None = None,
) -> list[Source]:
    """Expand files, directories, globs and list files into sources (in input order, directories sorted).

    ``exclude`` holds folders never walked into (the output folder, so a rerun does not pick up its own outputs),
    nor searched by a glob whose fixed part lies above them (``lib/*`` with ``-o lib/restored``). ``outputs`` are
    files a directory walk or a glob never takes (the batch's own outputs, from its journal: an output folder that
    is also an input folder, ``lib -o lib --suffix _x4``, would otherwise upscale its outputs again on a rerun). A
    file named as an input is taken as it is, once: named again by another path (through a symbolic link), it adds
    nothing (a walk's symlinked file is a file of its tree, kept). A folder below a directory input that holds a
    batch journal is another batch's output folder (``batch lib -o lib/x2``, then ``batch lib -o lib/x4``): it is
    not walked (its outputs are not this batch's inputs) and is added to ``skipped``; naming it as an input walks it.
    Raises ``InputError`` for an input that matches nothing.
    """
    exts = {e.lower() if e.startswith(".") else "." + e.lower() for e in extensions}
    excluded = [Path(p).resolve() for p in exclude]
    own = {Path(os.path.realpath(p)) for p in outputs}
    out: list[Source] = []
    walk = _Walk(exts, excluded, skipped if skipped is not None else [])
    for item in inputs:
        _expand(str(item), Path.cwd(), walk, out, depth=0)
    kept: list[Source] = []
    seen: set[str] = set()
    for s in out:
        real = os.path.realpath(s.path)
        named = s.root is None and not s.found
        if named and real in seen:  # a file named again by another path (through a symlinked folder): one job
            continue
        seen.add(real)
        if named or Path(real) not in own:
            kept.append(s)
    return kept


def _below(fixed: Path, excluded: list[Path]) -> list[Path]:
    """The excluded folders strictly inside a pattern's ``fixed`` part (its folders before the first glob
    character): a pattern that names the output folder's parent, ``lib/**/*.mkv`` with ``-o lib/restored``, does
    not reach into the output folder, as a directory walk does not; one that names the output folder itself
    (``lib/*.mkv -o lib --suffix _x4``) takes what it matches there (its own outputs are dropped later)."""
    fixed = fixed.resolve()
    return [e for e in excluded if e != fixed and e.is_relative_to(fixed)]


def _inside(path: Path, folders: list[Path]) -> bool:
    r = path.resolve()
    return any(r.is_relative_to(f) for f in folders)


@dataclass
class _Walk:
    """What every input's expansion shares: the extensions taken, the folders never entered, and the other batches'
    output folders passed over (for the caller to say)."""

    exts: set[str]
    excluded: list[Path]
    skipped: list[Path]


def _expand(item: str, base: Path, walk: _Walk, out: list[Source], depth: int) -> None:
    if depth > 8:
        raise InputError(f"{item}: list files nest too deeply (more than 8 levels)")
    if item.startswith("@"):
        _expand_list(Path(base, item[1:]), walk, out, depth)
        return
    path = Path(base, os.path.expanduser(item))
    if path.is_dir():
        out.extend(_walk(path, walk))
    elif path.is_file():
        if path.suffix.lower() == ".txt":
            _expand_list(path, walk, out, depth)
        else:
            out.append(Source(path))
    elif special_kind(path) is not None:  # a named pipe or a device given by name: not "no such file"
        check_regular_input(path)
    elif _GLOB_CHARS & set(item):
        given = PurePath(os.path.expanduser(item))
        # the folder it is relative to is a name, not a pattern: "Films [1080p]"
        pattern = given if given.is_absolute() else PurePath(glob.escape(str(base))) / given
        parts = given.parts
        fixed = Path(base, *parts[:next(i for i, part in enumerate(parts) if _GLOB_CHARS & set(part))])
        matches = sorted(glob.glob(str(pattern), recursive=True))
        files = [Path(m) for m in matches if Path(m).is_file()]
        dirs = [Path(m) for m in matches if Path(m).is_dir()]
        if not files and not dirs:
            raise InputError(f"{item}: the pattern matches no file")
        # the output folder below the pattern's own folder is not searched, as a walk does not enter it
        skip = _below(fixed, walk.excluded)
        out.extend(Source(f, found=True) for f in files if not _inside(f, skip))
        for d in dirs:
            if not _inside(d, skip):
                out.extend(_walk(d, walk))
    elif os.path.islink(path):  # a link to nowhere is not "no such file": the name is there
        raise InputError(f"{path}: {link_problem(path) or 'a symbolic link that cannot be followed'}")
    else:
        raise InputError(f"{path}: no such file or directory")


def link_problem(path: str | os.PathLike) -> str | None:
    """Why a symbolic link at ``path`` leads to no file (``"a symbolic link loop"``, ``"a broken symbolic link (to
    X, which does not exist)"``), or None when ``path`` is no link or its target exists."""
    if not os.path.islink(path):
        return None
    try:
        os.stat(path)
    except OSError as e:
        import errno

        if e.errno == errno.ELOOP:
            return "a symbolic link loop"
        return f"a broken symbolic link (to {os.readlink(path)}, which does not exist)"
    return None


def _expand_list(path: Path, walk: _Walk, out: list[Source], depth: int) -> None:
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()  # a BOM (Notepad) is no part of the first line
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read the list of inputs ({e})") from e
    for number, line in enumerate(lines, 1):
        entry = line.strip()
        if entry and not entry.startswith("#"):
            try:
                _expand(entry, path.parent, walk, out, depth + 1)
            except InputError as e:  # say where the entry came from: a README.txt a shell glob passed is a list too
                note = "" if LIST_NOTE in str(e) else f" ({LIST_NOTE})"
                raise InputError(f"{path}:{number}: {e}{note}") from e


def _walk(root: Path, walk: _Walk) -> list[Source]:
    """The video files under ``root``, sorted. A symlinked folder is walked like a real one (a library's seasons on
    another disk), but a folder already walked, through a link or not, is not walked again: a link to a folder above
    it (a loop) or twice to one folder adds nothing."""
    found: list[Source] = []
    seen = {root.resolve()}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        here = Path(dirpath)
        keep = []
        for d in sorted(dirnames):
            real = (here / d).resolve()
            if not d.startswith(".") and real not in walk.excluded and real not in seen:
                seen.add(real)
                if (real / JOURNAL_NAME).is_file():  # another batch's output folder
                    walk.skipped.append(here / d)
                    continue
                keep.append(d)
        dirnames[:] = keep
        for name in sorted(filenames):
            if not name.startswith(".") and Path(name).suffix.lower() in walk.exts:
                found.append(Source(here / name, root))
    return found


def plan_jobs(
    sources: Sequence[Source],
    outdir: str | os.PathLike,
    *,
    suffix: str = "",
    ext: str | None = ".mkv",
) -> list[Job]:
    """Map sources to jobs (pure: no file-system access). ``ext=None`` keeps each source's extension.

    The output name is ``<stem><suffix><ext>``, under ``outdir`` plus the source's path relative to its
    directory input. A still image (``IMAGE_EXTENSIONS``) keeps its own extension unless ``ext`` is an image's: it
    is upscaled into an image, as ``esrgan-video in.png out.png`` does (``cover.jpg`` → ``cover.jpg``, not a
    one-frame ``cover.mkv``, which the single-file face refuses); the other way round, a video (``VIDEO_EXTENSIONS``)
    goes into ``.mkv`` when ``ext`` is an image's (``--ext png`` converts the stills: a video cannot be one image,
    and every video of the library failed in its worker). The same source listed twice is kept once.
    Raises ``InputError`` when two sources would write the same output or an output would be its own source or
    another source.
    """
    if suffix and ("/" in suffix or os.sep in suffix):
        raise OptionError("--suffix", "a name part without a path separator", suffix)
    new_ext = normalize_ext(ext) if ext is not None else None
    outdir = Path(outdir)
    jobs: list[Job] = []
    by_key: dict[str, Path] = {}
    seen_src: set[PurePath] = set()
    for s in sources:
        src = Path(os.path.normpath(s.path))
        if src in seen_src:
            continue
        seen_src.add(src)
        root = Path(os.path.normpath(s.root)) if s.root is not None else None
        if root is not None and not src.is_relative_to(root):
            raise InputError(f"{src}: not inside its input folder {root}")
        rel_parent = PurePath(src.parent.relative_to(root)) if root is not None else PurePath()
        keep = new_ext is None or (src.suffix.lower() in IMAGE_EXTENSIONS and new_ext.lower() not in IMAGE_EXTENSIONS)
        out_ext = src.suffix if keep else new_ext
        if not keep and src.suffix.lower() in VIDEO_EXTENSIONS and new_ext.lower() in IMAGE_EXTENSIONS:
            out_ext = DEFAULT_EXT  # --ext png converts a library's stills; its videos cannot become one image
        name = src.stem + suffix + out_ext
        rel = rel_parent / name if str(rel_parent) != "." else PurePath(name)
        key = rel.as_posix()
        fold = key.casefold()  # clashes on case-insensitive file systems too
        if fold in by_key:
            other = by_key[fold]
            if src.parent == other.parent:  # a.mkv and a.mp4: only their own extensions tell them apart
                hint = ("rename one, or keep each one's extension with --ext keep"
                        if src.suffix.casefold() != other.suffix.casefold() else "rename one")
            else:  # two folders' files landing on one name: a folder above both keeps them apart
                hint = "rename one, or give a folder holding both as the input (each keeps its subfolder under OUTDIR)"
            raise InputError(f"{src} and {other} would both be written to {outdir / rel}; {hint}")
        by_key[fold] = src
        dst = outdir / rel
        if os.path.normpath(dst) == os.path.normpath(src):
            raise InputError(f"{src}: the output would overwrite the input; choose another output folder, --suffix or --ext")
        jobs.append(Job(src=src, dst=dst, key=key))
    # an output that is another input (``a.mkv`` → ``a_x4.mkv`` beside a source named ``a_x4.mkv``, with ``-o`` the
    # input folder): its source would be written over, maybe while a worker reads it
    by_src = {str(j.src): j for j in jobs}
    for j in jobs:
        other = by_src.get(os.path.normpath(j.dst))
        if other is not None and other is not j:
            raise InputError(f"{j.src}: its output {j.dst} is also an input of this batch, which it would overwrite; "
                             "choose another output folder, --suffix or --ext")
    return jobs
