"""The docs' examples cannot rot: every Python block of README.md, docs/*.md and engines/README.md compiles,
every name it imports from ``esrgan_video`` (or ``vsesrgan``) and every attribute it reads off them exists, no name
it uses is undefined, the keywords it passes are options the function takes; every ``esrgan-video COMMAND ...``
line (in a code block or an inline one) parses with that command's parser, and every ``--flag`` a doc names is a
flag of one of the commands (upscale, preview, batch, train, blend, engine, models), of a benchmark script the doc
names, or of the other tool it shows (pip, torchrun, Real-ESRGAN's script). No model runs here
(tests/test_vapoursynth.py runs the PyAV block under vspipe; README's and docs/training.md's train lines also go
through config_from_args in tests/test_train_run.py)."""

from __future__ import annotations

import argparse
import ast
import builtins
import contextlib
import dataclasses
import importlib
import inspect
import io
import re
import shlex
from pathlib import Path

import pytest

from esrgan_video.cli.main import SUBCOMMANDS

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "engines" / "README.md"]

PLACEHOLDERS = {"rgb_uint8_hwc"}  # README: "numpy H×W×3 ... in": the reader's own array
OTHER_TOOLS = {  # flags of the programs the docs show beside esrgan-video
    "--no-build-isolation", "--no-deps",  # pip (docs/benchmarks.md: the official Real-ESRGAN peer, the GPU wheels)
    "--standalone", "--nproc_per_node", "--nproc",  # torchrun (docs/training.md)
    "--denoise_strength",  # Real-ESRGAN's inference script (docs/vapoursynth.md: what ``denoise`` matches)
}
# ``python -m benchmarks.X --flag``: the script's own parser, named by the text before it
BENCH_SCRIPT = re.compile(r"benchmarks[./](\w+)")


def _blocks(doc: Path, langs: tuple[str, ...]) -> list[str]:
    text = doc.read_text(encoding="utf-8")
    return [b for lang, b in re.findall(r"^```(\w*)\n(.*?)^```", text, flags=re.M | re.S) if lang in langs]


def _python_blocks() -> list[tuple[str, str]]:
    return [(f"{d.relative_to(ROOT)}#{i}", b) for d in DOCS for i, b in enumerate(_blocks(d, ("python",)))]


def _flags(p: argparse.ArgumentParser) -> set[str]:
    out: set[str] = set()
    for a in p._actions:
        out.update(s for s in a.option_strings if s.startswith("--"))
        if isinstance(a, argparse._SubParsersAction):
            for sub in a.choices.values():
                out |= _flags(sub)
    return out


@pytest.fixture(scope="module")
def parsers() -> dict[str, argparse.ArgumentParser]:
    from esrgan_video.cli import batch, blend, engine, preview, train
    from esrgan_video.cli.arguments import command_parser
    from esrgan_video.cli.main import _upscale_parser

    eng = command_parser("engine", "engine")
    engine.fill_engine_parser(eng)
    return {"upscale": _upscale_parser(), "preview": preview.build_parser(), "batch": batch.build_parser(),
            "train": train.parser(), "blend": blend.parser(), "engine": eng,
            "models": command_parser("models", "models")}


def _resolve(dotted: str):
    """The object ``a.b.c`` names: the longest importable module prefix, then attributes."""
    parts = dotted.split(".")
    for k in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:k]))
        except ModuleNotFoundError:
            continue
        for name in parts[k:]:
            obj = getattr(obj, name)  # AttributeError: the doc names what is not there
        return obj
    raise ModuleNotFoundError(dotted)


def _ours(module: str | None) -> bool:
    return bool(module) and module.split(".")[0] in ("esrgan_video", "vsesrgan")


def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


def _check_keywords(fn, call: ast.Call, where: str) -> None:
    """The literal keywords of a call are parameters of ``fn``, or (for a ``**flat_options`` function) options."""
    given = {k.arg: k.value for k in call.keywords if k.arg is not None}
    if dataclasses.is_dataclass(fn):
        names = {f.name for f in dataclasses.fields(fn)}
        assert set(given) <= names, f"{where}: {fn.__name__} has no field {sorted(set(given) - names)}"
        return
    sig = inspect.signature(fn)
    named = {n for n, p in sig.parameters.items() if p.kind is not p.VAR_KEYWORD}
    flat = {k: ast.literal_eval(v) for k, v in given.items() if k not in named}
    if not flat:
        return
    assert any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()), f"{where}: {fn.__name__}({sorted(flat)}=)"
    from esrgan_video.options import UpscaleOptions

    UpscaleOptions.from_kwargs(None, **flat)  # TypeError/OptionError: no such option, or a value it refuses


def _signature_block(code: str) -> tuple[str, str] | None:
    """``f(a=1, b=None) -> T``, a signature shown as a block (docs/vapoursynth.md): (f's dotted name, its call)."""
    m = re.fullmatch(r"\s*([\w.]+)(\(.*\))\s*->\s*[\w.]+\s*", code, flags=re.S)
    return (m.group(1), m.group(1) + m.group(2)) if m else None


@pytest.mark.parametrize("where,code", _python_blocks(), ids=[w for w, _ in _python_blocks()])
def test_python_block_names_what_exists(where, code):
    sig = _signature_block(code)
    if sig is not None:  # the signature it shows is the function's: names, order and defaults
        name, call = sig
        shown = ast.parse(call, mode="eval").body
        fn = _resolve(name)
        params = [(p.name, p.default) for p in inspect.signature(fn).parameters.values()]
        empty = inspect.Parameter.empty
        given = [(a.id, empty) for a in shown.args] + [(k.arg, ast.literal_eval(k.value)) for k in shown.keywords]
        assert given == params, f"{where}: {name}"
        return
    tree = ast.parse(code, filename=where)
    compile(tree, where, "exec")
    modules: dict[str, str] = {}  # a name bound by an import of ours -> what it names
    bound = set(dir(builtins)) | PLACEHOLDERS
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                bound.add(alias.asname or alias.name)
                if _ours(node.module):
                    modules[alias.asname or alias.name] = f"{node.module}.{alias.name}"
                    _resolve(f"{node.module}.{alias.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                bound.add(alias.asname or alias.name.split(".")[0])
                if _ours(alias.name):
                    importlib.import_module(alias.name)
                    top = alias.name.split(".")[0]  # ``import a.b`` binds a; ``import a.b as c``, c to a.b
                    modules[alias.asname or top] = alias.name if alias.asname else top
        elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            bound.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    assert used <= bound, f"{where}: undefined {sorted(used - bound)}"
    for node in ast.walk(tree):  # esrgan_video.upscale_video, vsesrgan.upscale, ...: each exists
        dotted = _dotted(node) if isinstance(node, ast.Attribute) else None
        if dotted and dotted.split(".")[0] in modules:
            head, _, rest = dotted.partition(".")
            _resolve(f"{modules[head]}.{rest}")
    for node in ast.walk(tree):  # the keywords given to our functions and classes
        if isinstance(node, ast.Call) and (dotted := _dotted(node.func)) and dotted.split(".")[0] in modules:
            head, _, rest = dotted.partition(".")
            fn = _resolve(f"{modules[head]}.{rest}" if rest else modules[head])
            if callable(fn):
                _check_keywords(fn, node, where)


@pytest.mark.parametrize("doc", DOCS, ids=[str(d.relative_to(ROOT)) for d in DOCS])
def test_every_dotted_name_a_doc_gives_exists(doc):
    """``esrgan_video.train.read_video``, ``vsesrgan.upscale``: each dotted name a doc's prose gives resolves (a
    module, then attributes), but the safetensors metadata key of the model's hyperparameters, which is no name."""
    from esrgan_video.models.descriptor import HYPERPARAMETERS_KEY

    text = doc.read_text(encoding="utf-8")
    for name in sorted(set(re.findall(r"\b((?:esrgan_video|vsesrgan)(?:\.[A-Za-z_]\w*)+)", text))):
        if name != HYPERPARAMETERS_KEY:
            try:
                _resolve(name)
            except (ImportError, AttributeError) as e:
                pytest.fail(f"{doc.name}: {name}: {e}")


def _command_lines(doc: Path) -> list[str]:
    """Every ``esrgan-video ...`` command of a doc: the lines of its shell blocks and its inline code."""
    lines = []
    for block in _blocks(doc, ("sh", "bash", "console", "")):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"^\$\s+", "", line.strip())
            m = re.match(r"(?:torchrun .*?-m esrgan_video|esrgan-video) (.+?)(?:\s+#.*)?$", line)
            if m:
                lines.append(m.group(1))
    text = doc.read_text(encoding="utf-8")
    for inline in re.findall(r"(?<!`)`esrgan-video ([^`]+)`", text):
        if not re.search(r"\b[A-Z]{2,}\b|\|", inline):  # IN OUT, ARGS, a|b: placeholders, not a command
            lines.append(inline)
    return lines


@pytest.mark.parametrize("doc", DOCS, ids=[str(d.relative_to(ROOT)) for d in DOCS])
def test_every_command_line_parses_and_every_flag_exists(doc, parsers):
    known = set().union(*(_flags(p) for p in parsers.values()))
    lines = _command_lines(doc)
    floor = {"README.md": 20, "docs/training.md": 5, "docs/batch.md": 1, "engines/README.md": 5}
    assert len(lines) >= floor.get(str(doc.relative_to(ROOT)), 0), lines
    for line in lines:
        # a pipe's reader is another program (or: `a | --all`, the other form); a synopsis's [--optional parts]
        # are left to the flag check below
        argv = shlex.split(re.sub(r"\[[^\]]*\]", "", line.split(" | ")[0]))
        if argv[0] in SUBCOMMANDS and argv[0] not in parsers:
            continue  # demo: its parser is built in its main (its flags are in no doc)
        command = argv[0] if argv[0] in parsers else "upscale"
        args = argv if command == "upscale" else argv[1:]
        if args == ["-h"] or not args and command != "models":
            continue  # the command named in prose, or its help
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            try:
                parsers[command].parse_args(args)
            except SystemExit:
                pytest.fail(f"{doc.name}: `esrgan-video {line}`: {err.getvalue().strip()}")
    text = doc.read_text(encoding="utf-8")
    # the benchmark scripts a doc names (``python -m benchmarks.reuse_bench``, "gpu_bench's ``--cpu-smoke``")
    bench = set().union(set(), *(_bench_flags(n) for n in set(BENCH_SCRIPT.findall(text)) | set(re.findall(
        r"\b(\w+_bench|ab_trees)\b", text))))
    for line in text.splitlines():
        for flag in re.findall(r"(?<![\w-])--[a-z][a-z0-9_-]*", line):
            assert flag in known | OTHER_TOOLS | bench, \
                f"{doc.name}: {flag} is no flag of esrgan-video (nor of the tool beside it): {line.strip()[:160]}"


def test_every_choice_a_doc_lists_is_the_flags(parsers):
    """``--fit pad|crop|stretch``: each value a doc lists for a flag with fixed choices is one of them (in any
    command that has the flag)."""
    choices: dict[str, set[str]] = {}
    for p in parsers.values():
        for a in p._actions:
            for s in a.option_strings:
                if a.choices and not isinstance(a, argparse._SubParsersAction):
                    choices.setdefault(s, set()).update(map(str, a.choices))
    checked = 0
    for doc in DOCS:
        for flag, values in re.findall(r"`(--[a-z][a-z0-9-]*) ([\w:-]+(?:\|[\w:-]+)+)`", doc.read_text("utf-8")):
            if flag in choices:
                assert set(values.split("|")) <= choices[flag], f"{doc.name}: `{flag} {values}`: {choices[flag]}"
                checked += 1
    assert checked >= 6


def test_the_training_docs_config_file_makes_a_config(tmp_path):
    """docs/training.md's TOML block, run as the doc says (``train --config series.toml --out runs/series``): every
    key is one the config takes, its [degradation] table the video degradation's options."""
    from esrgan_video.cli.train import config_from_args, parser

    (block,) = _blocks(ROOT / "docs" / "training.md", ("toml",))
    (tmp_path / "series.toml").write_text(block)
    cfg = config_from_args(parser().parse_args(["--config", str(tmp_path / "series.toml"), "--out", "runs/series"]))
    assert (cfg.stage, cfg.steps, cfg.degradation) == ("gan", 20000, "video")
    assert cfg.degradation_options == {"codec": "libx265", "crf_range": [22, 34], "gop": 12}


def _bench_flags(name: str) -> set[str]:
    path = ROOT / "benchmarks" / f"{name}.py"
    return set(re.findall(r"add_argument\(\s*\"(--[\w-]+)\"", path.read_text())) if path.exists() else set()
