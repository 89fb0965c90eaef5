"""Run the atheris fuzz harnesses: ``python tests/fuzz/run.py --target mews_decode --runs N``.

Each target is ``tests/fuzz/fuzz_<target>.py``, started as its own process (libFuzzer
owns the process) with its seed corpus (``corpus/<target>``, read only), its
dictionary (``dicts/<target>.dict``) and a working corpus directory where libFuzzer
keeps what it finds (``--work``, default ``$TMPDIR/protocore-fuzz/<target>``). A
crash is written to ``--artifacts`` as ``crash-<sha1>``; reproduce it with
``python tests/fuzz/fuzz_<target>.py <that file>``. ``--merge`` adds to the seed
corpus the inputs of the working corpus that bring new coverage (libFuzzer's
``-merge=1``). Extra arguments after ``--`` go to libFuzzer unchanged
(``-- -only_ascii=1``...).

Examples::

    python tests/fuzz/run.py --list
    python tests/fuzz/run.py --target all --runs 20000          # what CI does
    python tests/fuzz/run.py --target client_connection --time 3600
    python tests/fuzz/run.py --target all --merge                # keep what was found
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
TARGETS = sorted(p.stem.removeprefix("fuzz_") for p in HERE.glob("fuzz_*.py"))
#: Longest input libFuzzer makes: conversations need room, single messages less.
MAX_LEN = {"client_connection": 8192, "server_connection": 8192}


def command(
    target: str, *, runs: int | None, seconds: int | None, seed: int, work: Path, artifacts: Path
) -> list[str]:
    """The command line that fuzzes ``target`` (libFuzzer flags, then corpus dirs)."""
    args = [
        sys.executable,
        str(HERE / f"fuzz_{target}.py"),
        f"-seed={seed}",
        f"-max_len={MAX_LEN.get(target, 4096)}",
        f"-artifact_prefix={artifacts}/",
        "-print_final_stats=1",
    ]
    if runs is not None:
        args.append(f"-runs={runs}")
    if seconds is not None:
        args.append(f"-max_total_time={seconds}")
    dictionary = HERE / "dicts" / f"{target}.dict"
    if dictionary.exists():
        args.append(f"-dict={dictionary}")
    return [*args, str(work), str(HERE / "corpus" / target)]


def merge_command(target: str, *, work: Path) -> list[str]:
    """The command line that merges ``work`` into the seed corpus of ``target``."""
    return [
        sys.executable,
        str(HERE / f"fuzz_{target}.py"),
        "-merge=1",
        f"-max_len={MAX_LEN.get(target, 4096)}",
        str(HERE / "corpus" / target),
        str(work),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--target", action="append", choices=[*TARGETS, "all"])
    parser.add_argument("--runs", type=int, help="inputs to try (libFuzzer -runs)")
    parser.add_argument("--time", type=int, help="seconds to fuzz (libFuzzer -max_total_time)")
    parser.add_argument("--seed", type=int, default=1, help="libFuzzer -seed (0: random)")
    parser.add_argument("--work", type=Path, help="working corpus directory root")
    parser.add_argument("--artifacts", type=Path, default=Path.cwd(), help="where crashes go")
    parser.add_argument("--list", action="store_true", help="list the targets and exit")
    parser.add_argument(
        "--merge", action="store_true", help="add new-coverage inputs of --work to the seeds"
    )
    parser.add_argument("libfuzzer", nargs="*", help="after --: passed to libFuzzer")
    options = parser.parse_args(argv)
    if options.list:
        print("\n".join(TARGETS))
        return 0
    chosen = options.target or ["all"]
    targets = TARGETS if "all" in chosen else chosen
    work_root = options.work or Path(tempfile.gettempdir()) / "protocore-fuzz"
    # libFuzzer re-runs the harness as a command (merging, -fork): its shebang must
    # find this interpreter.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    status = 0
    for target in targets:
        work = work_root / target
        work.mkdir(parents=True, exist_ok=True)
        options.artifacts.mkdir(parents=True, exist_ok=True)
        if options.merge:
            # From a copy: a fuzzer still running on ``work`` deletes inputs it reduced.
            with tempfile.TemporaryDirectory() as snapshot:
                copy = Path(snapshot) / target
                shutil.copytree(work, copy)
                print(f"== {target}: merging {work}", flush=True)
                cmd = merge_command(target, work=copy)
                status |= subprocess.run(cmd, check=False, env=env).returncode != 0
            continue
        cmd = command(
            target,
            runs=options.runs,
            seconds=options.time,
            seed=options.seed,
            work=work,
            artifacts=options.artifacts,
        )
        print(f"== {target}: {' '.join(cmd[1:])}", flush=True)
        result = subprocess.run([*cmd, *options.libfuzzer], check=False, env=env)
        if result.returncode != 0:
            print(f"== {target}: exit {result.returncode}", flush=True)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
