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

VIDEO_EXTENSIONS: frozenset[str] = frozenset({
    ".mkv", ".mp4", ".m4v", ".mov", ".avi", ".webm", ".ts", ".m2ts", ".mts", ".mpg", ".mpeg", ".vob",
    ".wmv", ".flv", ".ogv", ".3gp", ".y4m", ".nut", ".mxf", ".dv",
})
"""Extensions (lower case, with the dot) picked up when walking a directory input."""

_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class Source:
    """One input file; ``root`` is the directory input it was found under (``None`` for a plain file)."""

    path: Path
    root: Path | None = None


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
) -> list[Source]:
    """Expand files, directories, globs and list files into sources (in input order, directories sorted).

    ``exclude`` holds folders never walked into (the output folder, so a rerun does not pick up its own outputs).
    Raises ``InputError`` for an input that matches nothing.
    """
    exts = {e.lower() if e.startswith(".") else "." + e.lower() for e in extensions}
    excluded = [Path(p).resolve() for p in exclude]
    out: list[Source] = []
    for item in inputs:
        _expand(str(item), Path.cwd(), exts, excluded, out, depth=0)
    return out


def _expand(item: str, base: Path, exts: set[str], excluded: list[Path], out: list[Source], depth: int) -> None:
    if depth > 8:
        raise InputError(f"{item}: list files nest too deeply (more than 8 levels)")
    if item.startswith("@"):
        _expand_list(Path(base, item[1:]), exts, excluded, out, depth)
        return
    path = Path(base, os.path.expanduser(item))
    if path.is_dir():
        out.extend(_walk(path, exts, excluded))
    elif path.is_file():
        if path.suffix.lower() == ".txt":
            _expand_list(path, exts, excluded, out, depth)
        else:
            out.append(Source(path))
    elif _GLOB_CHARS & set(item):
        matches = sorted(glob.glob(str(path), recursive=True))
        files = [Path(m) for m in matches if Path(m).is_file()]
        dirs = [Path(m) for m in matches if Path(m).is_dir()]
        if not files and not dirs:
            raise InputError(f"{item}: the pattern matches no file")
        out.extend(Source(f) for f in files)
        for d in dirs:
            out.extend(_walk(d, exts, excluded))
    else:
        raise InputError(f"{path}: no such file or directory")


def _expand_list(path: Path, exts: set[str], excluded: list[Path], out: list[Source], depth: int) -> None:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read the list of inputs ({e})") from e
    for line in lines:
        entry = line.strip()
        if entry and not entry.startswith("#"):
            _expand(entry, path.parent, exts, excluded, out, depth + 1)


def _walk(root: Path, exts: set[str], excluded: list[Path]) -> list[Source]:
    found: list[Source] = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and (here / d).resolve() not in excluded)
        for name in sorted(filenames):
            if not name.startswith(".") and Path(name).suffix.lower() in exts:
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
    directory input. The same source listed twice is kept once. Raises ``InputError`` when two sources
    would write the same output or an output would be its own source.
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
        name = src.stem + suffix + (new_ext if new_ext is not None else src.suffix)
        rel = rel_parent / name if str(rel_parent) != "." else PurePath(name)
        key = rel.as_posix()
        fold = key.casefold()  # clashes on case-insensitive file systems too
        if fold in by_key:
            raise InputError(
                f"{src} and {by_key[fold]} would both be written to {outdir / rel}; "
                "rename one, or use --suffix/--ext, or give their folder as a directory input"
            )
        by_key[fold] = src
        dst = outdir / rel
        if os.path.normpath(dst) == os.path.normpath(src):
            raise InputError(f"{src}: the output would overwrite the input; choose another output folder, --suffix or --ext")
        jobs.append(Job(src=src, dst=dst, key=key))
    return jobs
