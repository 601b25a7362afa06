"""``run_batch`` at a script's top level, without ``if __name__ == "__main__":``: the workers are spawned processes,
which import the script again, so each would start the batch again (and die on the driver's lock) and every file
would fail. The batch stops instead, in one line that says where to put the call. (Guarded, run_batch's workers
start as every batch test's do: pytest's main module is guarded.)"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from esrgan_video.batch.journal import JOURNAL_NAME, parse_lines

from media import make_clip

SCRIPT = """\
import sys
from esrgan_video.batch import run_batch

summary = run_batch([{src!r}], {out!r}, model={model!r}, devices="cpu", threads=1, max_attempts=1,
                    log=lambda m: print(m, file=sys.stderr))
print("exit code", summary.exit_code)
"""


def test_an_unguarded_run_batch_stops_the_batch_in_one_line(tmp_path: Path, near_identity_file) -> None:
    src = make_clip(tmp_path / "in.mkv", frames=2)
    out = tmp_path / "out"
    script = tmp_path / "unguarded.py"
    script.write_text(SCRIPT.format(src=str(src), out=str(out), model=str(near_identity_file(2))))
    p = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert p.returncode != 0 and "exit code" not in p.stdout, p.stderr
    last = p.stderr.strip().splitlines()[-1]
    assert last.startswith(f"esrgan_video.batch.driver.UnguardedMainError: {script}: run_batch is called when the "
                           "script is imported"), p.stderr
    assert last.endswith('put the call under `if __name__ == "__main__":`'), last
    assert "died (exit code" not in p.stderr and "failed" not in p.stderr, p.stderr  # no file failed for it
    assert not (out / "in.mkv").exists()
    assert all(r["state"] != "failed" for r in parse_lines((out / JOURNAL_NAME).read_text()).values())


def test_run_batch_inside_a_started_process_runs(tmp_path: Path, near_identity_file) -> None:
    """Only the import of the main script in a starting process is refused: a process that calls run_batch from
    its own target (a GUI's background process) runs the batch."""
    src = make_clip(tmp_path / "in.mkv", frames=1)
    script = tmp_path / "in_a_process.py"
    script.write_text(textwrap.dedent(f"""\
        import multiprocessing as mp
        from esrgan_video.batch import run_batch

        def job(q):
            q.put(run_batch([{str(src)!r}], {str(tmp_path / "out")!r}, model={str(near_identity_file(2))!r},
                            devices="cpu", threads=1, log=lambda m: None).exit_code)

        if __name__ == "__main__":
            ctx = mp.get_context("spawn")
            q = ctx.Queue()
            p = ctx.Process(target=job, args=(q,))
            p.start()
            print("exit code", q.get(timeout=240))
            p.join()
        """))
    p = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert p.returncode == 0 and "exit code 0" in p.stdout, p.stderr
