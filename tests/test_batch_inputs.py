"""Batch input discovery and job planning: directories mirror their tree, files land flat, clashes fail early."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from esrgan_video.batch.inputs import Job, Source, discover, plan_jobs
from esrgan_video.errors import InputError, OptionError


def touch(p: Path) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(b"x")
    return p


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "lib"
    for rel in ["s1/e1.mkv", "s1/e2.MP4", "s2/deep/e3.avi", "notes.txt", "s1/cover.jpg", ".hidden/x.mkv", "s2/.x.mkv"]:
        touch(root / rel)
    return tmp_path


def test_directory_is_walked_recursively_and_mirrored(tree: Path) -> None:
    out = tree / "out"
    jobs = plan_jobs(discover([tree / "lib"]), out)
    assert [(j.key, j.src.relative_to(tree).as_posix()) for j in jobs] == [
        ("s1/e1.mkv", "lib/s1/e1.mkv"),
        ("s1/e2.mkv", "lib/s1/e2.MP4"),
        ("s2/deep/e3.mkv", "lib/s2/deep/e3.avi"),
    ]
    assert all(j.dst == out / j.key for j in jobs)


def test_files_and_globs_land_flat_with_suffix_and_ext(tree: Path) -> None:
    out = tree / "out"
    sources = discover([tree / "lib/s1/e1.mkv", str(tree / "lib/s2/**/*.avi")])
    jobs = plan_jobs(sources, out, suffix="_x4", ext="mp4")
    assert [j.key for j in jobs] == ["e1_x4.mp4", "e3_x4.mp4"]
    assert plan_jobs(sources, out, ext=None)[1].key == "e3.avi"  # keep the source's extension


def test_list_file_with_comments_relative_paths_and_at_syntax(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lst = tree / "lib" / "todo.txt"
    lst.write_text("# my list\n\ns1/e1.mkv\n  s2  \n")
    for arg in [str(lst), "@" + str(lst)]:
        jobs = plan_jobs(discover([arg]), tree / "out")
        assert [j.key for j in jobs] == ["e1.mkv", "deep/e3.mkv"]  # s2 is a directory input: its tree is kept
    monkeypatch.chdir(tree / "lib")
    assert [j.key for j in plan_jobs(discover(["@todo.txt"]), tree / "out")] == ["e1.mkv", "deep/e3.mkv"]


def test_a_bad_line_of_a_list_file_is_named_by_the_list_and_line(tree: Path) -> None:
    readme = tree / "lib" / "README.txt"  # `batch lib/*` expanded by the shell passes it: a .txt input is a list
    readme.write_text("# notes\nRestored by hand\n")
    with pytest.raises(InputError) as e:
        discover([readme])
    assert str(e.value).startswith(f"{readme}:2: {tree / 'lib' / 'Restored by hand'}: no such file or directory")


def test_a_list_file_saved_by_a_windows_editor_is_read(tree: Path) -> None:
    lst = tree / "lib" / "todo.txt"
    lst.write_bytes("s1/e1.mkv\r\n# done\r\ns2\r\n".encode("utf-8-sig"))  # a BOM and CRLF line ends (Notepad)
    assert [j.key for j in plan_jobs(discover([lst]), tree / "out")] == ["e1.mkv", "deep/e3.mkv"]


def test_clashing_outputs_fail_before_anything_runs(tree: Path) -> None:
    touch(tree / "other/e1.mkv")
    with pytest.raises(InputError, match="e1.mkv.*would both be written"):
        plan_jobs(discover([tree / "lib/s1/e1.mkv", tree / "other/e1.mkv"]), tree / "out")
    touch(tree / "other/E1.avi")  # also a clash on case-insensitive file systems
    with pytest.raises(InputError, match="would both be written"):
        plan_jobs(discover([tree / "lib/s1/e1.mkv", tree / "other/E1.avi"]), tree / "out")
    # the hint says what keeps them apart: a folder above both (two folders' files), --ext keep (one folder's)
    with pytest.raises(InputError, match="give a folder holding both as the input"):
        plan_jobs(discover([tree / "lib/s1", tree / "other"]), tree / "out")
    touch(tree / "lib/s1/e1.mp4")
    with pytest.raises(InputError, match="keep each one's extension with --ext keep"):
        plan_jobs(discover([tree / "lib/s1"]), tree / "out")
    assert len(plan_jobs(discover([tree / "lib/s1"]), tree / "out", ext=None)) == 3


def test_same_file_twice_is_one_job_and_output_may_not_be_its_source(tree: Path) -> None:
    f = tree / "lib/s1/e1.mkv"
    assert len(plan_jobs(discover([f, f]), tree / "out")) == 1
    with pytest.raises(InputError, match="overwrite the input"):
        plan_jobs(discover([f]), tree / "lib/s1")


def test_one_file_named_through_a_symlinked_folder_and_directly_is_one_job(tmp_path: Path) -> None:
    """``batch films/a.mkv link/a.mkv`` where ``link`` points at ``films``: the same file, one job (it was refused:
    "would both be written to OUTDIR/a.mkv; rename one")."""
    touch(tmp_path / "films/a.mkv")
    (tmp_path / "link").symlink_to("films")
    jobs = plan_jobs(discover([tmp_path / "films/a.mkv", tmp_path / "link/a.mkv"]), tmp_path / "out")
    assert [(j.key, j.src) for j in jobs] == [("a.mkv", tmp_path / "films/a.mkv")]


def test_an_output_that_is_another_input_is_refused_before_anything_runs(tmp_path: Path) -> None:
    """``batch lib -o lib --suffix _x4 --ext keep`` beside a source already named ``a_x4.mkv``: ``a.mkv``'s output
    would overwrite that source (with --overwrite, maybe while a worker reads it); an error naming both, before
    anything starts. A plain source named like an output elsewhere is fine."""
    lib = tmp_path / "lib"
    for name in ("a.mkv", "a_x4.mkv"):
        touch(lib / name)
    with pytest.raises(InputError, match=r"a\.mkv: its output .*a_x4\.mkv is also an input of this batch"):
        plan_jobs(discover([lib]), lib, suffix="_x4", ext=None)
    assert [j.key for j in plan_jobs(discover([lib]), tmp_path / "out", suffix="_x4", ext=None)] == [
        "a_x4.mkv", "a_x4_x4.mkv"]


def test_output_folder_inside_an_input_folder_is_not_walked(tree: Path) -> None:
    touch(tree / "lib/out/s1/e1.mkv")  # an output of an earlier run
    sources = discover([tree / "lib"], exclude=[tree / "lib/out"])
    assert all("out" not in s.path.relative_to(tree / "lib").parts for s in sources)
    assert len(sources) == 3


def test_another_batchs_output_folder_in_a_library_is_not_walked_but_said(tree: Path) -> None:
    """``batch lib -o lib/x2``, then ``batch lib -o lib/x4``: the second walk does not take the first batch's outputs
    as inputs (it did: ``x4/x2/s1/e1.mkv``, upscaled twice); the folder, known by its journal, is handed back for the
    driver to say, and naming it as an input walks it."""
    from esrgan_video.batch.journal import JOURNAL_NAME

    touch(tree / "lib/x2/s1/e1.mkv")
    touch(tree / "lib/x2" / JOURNAL_NAME)
    skipped: list[Path] = []
    sources = discover([tree / "lib"], skipped=skipped)
    assert [s.path.relative_to(tree / "lib").as_posix() for s in sources] == ["s1/e1.mkv", "s1/e2.MP4",
                                                                               "s2/deep/e3.avi"]
    assert skipped == [tree / "lib/x2"]
    assert [s.path for s in discover([tree / "lib/x2"])] == [tree / "lib/x2/s1/e1.mkv"]


def test_a_glob_does_not_reach_into_the_output_folder(tree: Path) -> None:
    # a rerun of `batch 'lib/*' -o lib/out` (or 'lib/**/*.mkv') found the first run's outputs: a clash, exit 3
    touch(tree / "lib/out/e1.mkv")
    touch(tree / "lib/out/s1/e2.mkv")
    for pattern in ("lib/*", "lib/**/*.mkv", "lib/**"):
        sources = discover([str(tree / pattern)], exclude=[tree / "lib/out"])
        assert sources and not [s for s in sources if "out" in s.path.relative_to(tree / "lib").parts], pattern
    # a pattern inside the output folder names it: taken (as a directory input inside it is walked)
    assert [s.path.name for s in discover([str(tree / "lib/out/*.mkv")], exclude=[tree / "lib/out"])] == ["e1.mkv"]


def test_the_batchs_own_outputs_are_never_walked_or_globbed(tree: Path) -> None:
    # `batch lib -o lib --suffix _x4`: the output folder is the input folder, so only the journal says what the
    # batch wrote there; a rerun must not upscale lib/s1/e1_x4.mkv into e1_x4_x4.mkv
    lib = tree / "lib"
    own = [touch(lib / "s1/e1_x4.mkv"), touch(lib / "s1/e2_x4.mkv")]
    for item in (lib, str(lib / "**/*.mkv")):
        found = {s.path.name for s in discover([item], exclude=[lib], outputs=own)}
        assert "e1.mkv" in found and not found & {"e1_x4.mkv", "e2_x4.mkv"}, item
    assert [s.path for s in discover([lib / "s1/e1_x4.mkv"], outputs=own)] == [lib / "s1/e1_x4.mkv"]  # named: taken


def test_a_folder_name_with_glob_characters_is_not_a_pattern(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    films = tmp_path / "Films [1080p]"  # the usual library naming; "[1080p]" is no character class here
    touch(films / "a.mkv")
    (films / "todo.txt").write_text("*.mkv\n")
    assert [s.path for s in discover([films / "todo.txt"])] == [films / "a.mkv"]
    monkeypatch.chdir(films)
    assert [s.path.name for s in discover(["*.mkv"])] == ["a.mkv"]


def test_a_still_keeps_its_image_extension_unless_ext_names_an_image(tmp_path: Path) -> None:
    srcs = [Source(Path("/lib/cover.JPG")), Source(Path("/lib/a.png")), Source(Path("/lib/a.mp4"))]
    assert [j.key for j in plan_jobs(srcs, tmp_path)] == ["cover.JPG", "a.png", "a.mkv"]  # no one-frame cover.mkv
    assert [j.key for j in plan_jobs(srcs, tmp_path, suffix="_x4", ext="webm")] == ["cover_x4.JPG", "a_x4.png",
                                                                                   "a_x4.webm"]
    assert [j.key for j in plan_jobs(srcs[:1], tmp_path, ext="png")] == ["cover.png"]  # an image's: converted
    # ... the stills, that is: a video cannot become one image (every video failed in its worker), it goes into .mkv
    assert [j.key for j in plan_jobs(srcs, tmp_path, ext="png", suffix="_x4")] == ["cover_x4.png", "a_x4.png",
                                                                                  "a_x4.mkv"]
    assert [j.key for j in plan_jobs(srcs, tmp_path, ext=None)] == ["cover.JPG", "a.png", "a.mp4"]


def test_a_symlinked_folder_is_walked_once_and_a_loop_adds_nothing(tree: Path) -> None:
    touch(tree / "disk2/Season 3/e9.mkv")
    (tree / "lib/Season 3").symlink_to(tree / "disk2/Season 3")  # seasons on another disk: walked, mirrored
    (tree / "lib/s2/deep/up").symlink_to(tree / "lib")  # a loop
    (tree / "lib/zz-again").symlink_to(tree / "disk2/Season 3")  # the same folder twice
    (tree / "lib/s1/link.mkv").symlink_to(tree / "lib/s1/e1.mkv")  # a symlinked file is a file
    keys = [j.key for j in plan_jobs(discover([tree / "lib"]), tree / "out")]
    assert keys == ["Season 3/e9.mkv", "s1/e1.mkv", "s1/e2.mkv", "s1/link.mkv", "s2/deep/e3.mkv"]


def test_missing_inputs_and_bad_options_are_input_errors(tree: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        discover([tree / "nope.mkv"])
    with pytest.raises(InputError, match="matches no file"):
        discover([str(tree / "lib/*.webm")])
    # command-line values: exit 2 (they were input errors, exit 3, before #14's rule for bad option values)
    with pytest.raises(OptionError, match="--ext: expected a file extension") as e:
        plan_jobs([Source(tree / "a.mkv")], tree / "out", ext="")
    assert e.value.exit_code == 2
    with pytest.raises(OptionError, match="--suffix: expected a name part without a path separator, got 'a/b'"):
        plan_jobs([Source(tree / "a.mkv")], tree / "out", suffix="a/b")


def test_plan_jobs_is_pure(tmp_path: Path) -> None:
    # nothing exists on disk: planning only maps paths
    srcs = [Source(Path("/nowhere/films/a/b.mov"), Path("/nowhere/films")), Source(Path("/x/c.ts"))]
    assert plan_jobs(srcs, Path("/o"), suffix="-up") == [
        Job(Path("/nowhere/films/a/b.mov"), Path("/o/a/b-up.mkv"), "a/b-up.mkv"),
        Job(Path("/x/c.ts"), Path("/o/c-up.mkv"), "c-up.mkv"),
    ]
    assert not os.path.exists("/o")


def test_cli_reports_clashes_before_starting(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from esrgan_video.cli.batch import main

    touch(tree / "other/e1.mkv")
    code = main([str(tree / "lib/s1/e1.mkv"), str(tree / "other/e1.mkv"), "-o", str(tree / "out")])
    assert code == InputError.exit_code
    assert "would both be written" in capsys.readouterr().err
    assert not (tree / "out").exists()


def test_docs_name_only_real_options() -> None:
    import re

    from esrgan_video.cli.batch import build_parser

    doc = (Path(__file__).resolve().parents[1] / "docs" / "batch.md").read_text()
    known = {s for a in build_parser()._actions for s in a.option_strings}
    mentioned = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]+", doc))
    assert mentioned - known == set()
    batch_only = {"--suffix", "--ext", "--extensions", "--devices", "--threads", "--ray", "--ray-cpus",
                  "--segment-seconds", "--retry-failed", "--force", "--overwrite", "--max-attempts", "--stale-after"}
    assert batch_only <= known and batch_only <= mentioned


def test_batch_parser_reads_the_batch_flags() -> None:
    from esrgan_video.cli.batch import build_parser

    args = build_parser().parse_args(["a.mkv", "dir/", "-o", "out", "--devices", "0,1", "--segment-seconds", "0",
                                      "--codec", "ffv1", "--retry-failed", "--progress", "json"])
    assert (args.inputs, args.output_dir, args.devices, args.segment_seconds, args.codec, args.retry_failed,
            args.progress) == (["a.mkv", "dir/"], "out", "0,1", 0.0, "ffv1", True, "json")


def test_parse_devices() -> None:
    from esrgan_video.batch import parse_devices

    assert parse_devices("0,1") == ["cuda:0", "cuda:1"]
    assert parse_devices("cpu,cpu") == ["cpu", "cpu"]
    assert parse_devices(["cuda:2", "cpu"]) == ["cuda:2", "cpu"]
    with pytest.raises(OptionError, match="--devices"):  # a command-line error (exit 2; was InputError, 3)
        parse_devices("gpu0")


# --stale-after 0 killed every worker as silent and journaled the files failed; --threads 0 was exit 3 (bad inputs)
@pytest.mark.parametrize("flag,value", [("--segment-seconds", "-1"), ("--max-attempts", "0"), ("--threads", "0"),
                                        ("--stale-after", "0"), ("--stale-after", "5"), ("--ray-cpus", "0")])
def test_bad_batch_numbers_are_command_line_errors(tree: Path, capsys: pytest.CaptureFixture[str], flag, value) -> None:
    from esrgan_video.cli.batch import main

    code = main([str(tree / "lib/s1/e1.mkv"), "-o", str(tree / "out"), flag, value])
    err = capsys.readouterr().err
    assert code == 2 and f"{flag}: expected" in err and len(err.strip().splitlines()) == 1, err
    assert not (tree / "out").exists()
