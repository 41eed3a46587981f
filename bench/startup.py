"""Startup benchmark (not a test): how long `oxios --help` / `oxios --version` take, and what they import.

    .venv/bin/python bench/startup.py            # 20 runs of each command
    .venv/bin/python bench/startup.py --quick    # 5 runs

Baselines measured in the same run: `python -c pass` (the interpreter alone)
and `python -c "import typer"` (the CLI framework alone). The commands run
round-robin so a burst of load on the shared machine hits all of them alike.
Then `python -X importtime -m oxios --help` lists the most expensive imports
and warns about any heavy SDK imported just to print help.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from _common import ROOT, Sample, fmt_secs, header, machine_line, print_rows, temp_home

PYTHON = sys.executable
OXIOS = str(Path(PYTHON).with_name("oxios"))
HEAVY = ("anthropic", "openai", "httpx", "dulwich", "playwright", "mcp", "telegram", "discord", "a2a", "usearch", "numpy")

COMMANDS: list[tuple[str, list[str]]] = [
    ("python -c pass", [PYTHON, "-c", "pass"]),
    ("python -c 'import typer'", [PYTHON, "-c", "import typer"]),
    ("oxios --version", [OXIOS, "--version"]),
    ("oxios --help", [OXIOS, "--help"]),
]


def run_once(argv: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.decode()[-500:]}")
    return elapsed


def time_commands(runs: int, env: dict[str, str]) -> dict[str, Sample]:
    durations: dict[str, list[float]] = {name: [] for name, _ in COMMANDS}
    for _name, argv in COMMANDS:  # warm the page cache and .pyc files once, untimed
        run_once(argv, env)
    for _ in range(runs):
        for name, argv in COMMANDS:
            durations[name].append(run_once(argv, env))
    return {name: Sample(name, ds, sum(ds)) for name, ds in durations.items()}


@dataclass
class ImportLine:
    module: str
    self_us: int
    cumulative_us: int
    depth: int
    parent: ImportLine | None = None
    children: list[ImportLine] = field(default_factory=list)


def parse_importtime(stderr: str) -> list[ImportLine]:
    """Parse `-X importtime` output. A module is printed after its children, one indent level deeper."""
    lines: list[ImportLine] = []
    for raw in stderr.splitlines():
        if not raw.startswith("import time:") or "self [us]" in raw:
            continue
        parts = raw[len("import time:") :].split("|")
        self_us, cumulative_us, name = parts[0].strip(), parts[1].strip(), parts[2]
        stripped = name.lstrip(" ")
        depth = (len(name) - len(stripped) - 1) // 2
        lines.append(ImportLine(stripped, int(self_us), int(cumulative_us), depth))
    pending: dict[int, list[ImportLine]] = {}  # depth -> lines waiting for their parent
    for line in lines:
        for child in pending.pop(line.depth + 1, []):
            child.parent = line
            line.children.append(child)
        pending.setdefault(line.depth, []).append(line)
    return lines


def chain(line: ImportLine) -> str:
    names: list[str] = []
    node: ImportLine | None = line
    while node is not None:
        names.append(node.module)
        node = node.parent
    return " <- ".join(names)


def import_report(env: dict[str, str], top: int) -> None:
    proc = subprocess.run(
        [PYTHON, "-X", "importtime", "-m", "oxios", "--help"], env=env, cwd=ROOT, capture_output=True, text=True, check=False
    )
    lines = parse_importtime(proc.stderr)
    total = sum(line.self_us for line in lines)
    header(f"imports at `python -X importtime -m oxios --help` ({len(lines)} modules, {fmt_secs(total / 1e6)} in imports)")
    print(f"{'module':<44} {'self':>10} {'cumulative':>11}  imported by")
    for line in sorted(lines, key=lambda x: x.self_us, reverse=True)[:top]:
        parent = line.parent.module if line.parent else "(top level)"
        print(f"{line.module:<44} {fmt_secs(line.self_us / 1e6):>10} {fmt_secs(line.cumulative_us / 1e6):>11}  {parent}")
    print(f"\n{'top-level import (cumulative)':<44} {'cumulative':>11}")
    for line in sorted((x for x in lines if x.depth == 0), key=lambda x: x.cumulative_us, reverse=True)[:top]:
        print(f"{line.module:<44} {fmt_secs(line.cumulative_us / 1e6):>11}")

    # Depth-0 lines after `oxios.cli` were imported while the CLI ran (plugin loading, lazy imports).
    cli_index = next((i for i, x in enumerate(lines) if x.module == "oxios.cli" and x.depth == 0), None)
    if cli_index is not None:
        late = [x for x in lines[cli_index + 1 :] if x.depth == 0]
        plugins = sorted({x.module.split(".")[0] for x in lines if x.module.startswith("oxios_plugin_")})
        print(
            f"\nimported after `oxios.cli` loaded (while the CLI ran: command modules, plugin loading, lazy imports): {len(late)} top-level "
            f"imports, {fmt_secs(sum(x.cumulative_us for x in late) / 1e6)}; plugin packages: {', '.join(plugins) or 'none'}"
        )

    header("heavy SDKs imported at --help time")
    found = False
    for line in lines:
        package = line.module.split(".")[0]
        parent_package = line.parent.module.split(".")[0] if line.parent else ""
        if package in HEAVY and parent_package != package:  # report where the package was first pulled in
            found = True
            print(
                f"WARNING: heavy module {line.module!r} ({fmt_secs(line.cumulative_us / 1e6)} cumulative) is imported at "
                f"--help time by {line.parent.module if line.parent else '(top level)'!r}; chain: {chain(line)}"
            )
    if not found:
        print("none of " + ", ".join(HEAVY) + " is imported by `oxios --help`")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="5 runs instead of 20")
    parser.add_argument("--runs", type=int, default=None)
    args = parser.parse_args()
    runs = args.runs or (5 if args.quick else 20)
    print(f"startup benchmark | {machine_line()} | {runs} runs each")
    with temp_home() as home:
        env = dict(os.environ, OXIOS_HOME=str(home))
        samples = time_commands(runs, env)
        header("wall time per command (subprocess, median and p90)")
        py, typer = samples["python -c pass"], samples["python -c 'import typer'"]
        print_rows(
            [(py, None), (typer, py), (samples["oxios --version"], typer), (samples["oxios --help"], typer)], latency="p90"
        )
        for name in ("oxios --version", "oxios --help"):
            s = samples[name]
            print(
                f"{name}: median {fmt_secs(s.median)} = interpreter {fmt_secs(py.median)} + typer "
                f"{fmt_secs(typer.median - py.median)} + oxios {fmt_secs(s.median - typer.median)}"
            )
        import_report(env, top=10)


if __name__ == "__main__":
    main()
