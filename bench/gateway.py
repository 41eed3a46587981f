"""Gateway benchmark (not a test): messages/s and latency through `gateway.submit` with a scripted model.

    .venv/bin/python bench/gateway.py            # 400 messages per scenario
    .venv/bin/python bench/gateway.py --quick    # 48 messages per scenario

Each message goes the whole way: session resolve, the user message persisted,
an agent spawned by the supervisor, the turn loop, policy checks and audit for
tool calls, events, the reply persisted. The model is the ScriptedProvider, so
what is left is the kernel's own cost. Baseline, same run and same concurrency:
calling the provider's `complete()` directly as many times as the kernel
called the model (one call per plain message, two per tool message).

The scheduler's rate limit (60 agent starts a minute by default) and its
concurrency caps are lifted, so the figures show the kernel, not the limiter.

A last section repeats plain sequential messages in a home with `--skills N`
user skills installed (copies of the bundled code-review skill; default 20,
0 skips it), against the same run's figure with none: the system prompt's
skill index is rebuilt for every message.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import shutil
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from _common import Sample, fmt_secs, header, machine_line, print_rows, temp_home, time_sync

from oxios.builtin.skills import bundled_dir
from oxios.providers.scripted import ScriptedProvider, ScriptedTurn
from oxios.testing import make_kernel_factory
from oxios_hookspecs import IncomingMessage, Message, ModelRequest, ToolCallEvent, ToolResultBlock

REPLY = "Sure. Here is a short answer of a few words, as a model would give it."
LIMITS = {
    "scheduler": {"rate_limit_per_minute": 0, "max_concurrent": 64},
    "gateway": {"max_concurrent_messages": 64},
}


class Responder:
    """Computes each scripted reply from the request, so concurrent sessions never take each other's turns."""

    def __init__(self, provider: ScriptedProvider) -> None:
        self.provider = provider
        self.ids = itertools.count(1)
        self.use_tool = False

    def __call__(self, request: ModelRequest) -> ScriptedTurn:
        last = request.messages[-1]
        if not self.use_tool or any(isinstance(b, ToolResultBlock) for b in last.content):
            return ScriptedTurn(text=REPLY)
        return ScriptedTurn(tool_calls=[ToolCallEvent(id=f"call_{next(self.ids)}", name="ls", arguments={"path": "."})])

    def script(self, model_calls: int) -> None:
        for _ in range(model_calls):
            self.provider.enqueue_callable(self)


async def run_concurrent(name: str, total: int, workers: int, one_message: Callable[[int], Awaitable[None]]) -> Sample:
    """``workers`` tasks share ``total`` messages; each message of worker w calls ``one_message(w)``."""
    durations: list[float] = []
    per_worker = [total // workers + (1 if w < total % workers else 0) for w in range(workers)]

    async def worker(w: int) -> None:
        for _ in range(per_worker[w]):
            t0 = time.perf_counter()
            await one_message(w)
            durations.append(time.perf_counter() - t0)

    start = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(workers)))
    return Sample(name, durations, time.perf_counter() - start)


async def baseline(provider: ScriptedProvider, responder: Responder, total: int, workers: int, calls_per_message: int) -> Sample:
    """The same model calls, made directly on the provider (no kernel)."""
    responder.script(total * calls_per_message)
    request = ModelRequest(model=provider.model, messages=[Message.user("hello")], system="You are a benchmark.")

    async def one(_w: int) -> None:
        for _ in range(calls_per_message):
            await provider.complete(request)

    label = f"baseline: complete() x{calls_per_message}, {workers} at once"
    return await run_concurrent(label, total, workers, one)


async def through_gateway(
    kernel: Any, responder: Responder, total: int, workers: int, tool: bool, fresh_sessions: bool
) -> tuple[Sample, list[str]]:
    gateway = kernel.service("gateway")
    responder.use_tool = tool
    responder.script(total * (2 if tool else 1))
    session_ids: list[str | None] = [None] * workers
    errors: list[str] = []

    async def one(w: int) -> None:
        message = IncomingMessage(content="list the files" if tool else "hello", channel="bench", session_id=session_ids[w])
        result = await gateway.submit(message)
        if result.error or result.exit_code:
            errors.append(f"{result.exit_code}: {result.error}")
        if not fresh_sessions:
            session_ids[w] = result.session_id

    kind = "ls tool call" if tool else "plain reply"
    where = "new session each" if fresh_sessions else f"{workers} session{'s' if workers > 1 else ''}"
    return await run_concurrent(f"gateway: {kind}, {workers} at once, {where}", total, workers, one), errors


def growth_line(sample: Sample) -> str:
    """p50 of the first and last tenth of a sequential run in one session: does cost grow with history?"""
    tenth = max(1, len(sample.durations) // 10)
    first, last = sample.durations[:tenth], sample.durations[-tenth:]
    a, b = Sample("", first, sum(first)).p50, Sample("", last, sum(last)).p50
    return (
        f"history growth (one session, {len(sample.durations)} messages): first {tenth} p50 {fmt_secs(a)}, "
        f"last {tenth} p50 {fmt_secs(b)} ({b / a if a else 0:.2f}x)"
    )


def install_user_skills(home: Path, count: int) -> None:
    """``count`` user skills under OXIOS_HOME/skills, copies of the bundled code-review skill."""
    for i in range(count):
        folder = home / "skills" / f"bench-skill-{i}"
        shutil.copytree(bundled_dir() / "code-review", folder)
        text = (folder / "SKILL.md").read_text().replace("name: code-review", f"name: bench-skill-{i}", 1)
        (folder / "SKILL.md").write_text(text)


async def skills_scaling(total: int, skills: int, home: Path) -> tuple[Sample, float]:
    """Plain sequential messages (new session each) with ``skills`` user skills installed."""
    install_user_skills(home, skills)
    provider = ScriptedProvider()
    responder = Responder(provider)
    async with make_kernel_factory(home)(plugins=[provider.plugin()], config=provider.config(LIMITS)) as kernel:
        await through_gateway(kernel, responder, 4, 1, tool=False, fresh_sessions=True)
        sample, _errors = await through_gateway(kernel, responder, total, 1, tool=False, fresh_sessions=True)
        index = time_sync("prompt_index", kernel.service("skills").prompt_index, 20)
    sample.name = f"gateway: plain reply, 1 at once, new session each, {skills} user skills"
    return sample, index.p50


async def main_async(total: int, home: Path, skills: int) -> None:
    provider = ScriptedProvider()
    responder = Responder(provider)
    factory = make_kernel_factory(home)
    async with factory(plugins=[provider.plugin()], config=provider.config(LIMITS)) as kernel:
        audit = kernel.services.get("audit")
        # Warm-up: imports, first SQLite pages, first agent (not timed).
        await through_gateway(kernel, responder, 8, 1, tool=True, fresh_sessions=True)
        scenarios = [
            (False, 1, False),  # plain, sequential, one growing session
            (False, 1, True),
            (True, 1, True),
            (False, 8, False),
            (False, 32, False),
            (True, 8, False),
            (True, 32, False),
        ]
        rows: list[tuple[Sample, Sample | None]] = []
        notes: list[str] = []
        for tool, workers, fresh in scenarios:
            responder.use_tool = tool
            base = await baseline(provider, responder, total, workers, 2 if tool else 1)
            seq_before = (audit.head() or {"seq": 0})["seq"] if audit else 0
            sample, errors = await through_gateway(kernel, responder, total, workers, tool, fresh)
            seq_after = (audit.head() or {"seq": 0})["seq"] if audit else 0
            rows += [(base, None), (sample, base)]
            notes.append(f"{sample.name}: {(seq_after - seq_before) / total:.1f} audit entries per message")
            if errors:
                notes.append(f"  {len(errors)} messages failed, e.g. {errors[0]}")
            if workers == 1 and not fresh and not tool:
                notes.append("  " + growth_line(sample))
        if provider.remaining:
            notes.append(f"NOTE: {provider.remaining} scripted replies were never requested (fewer model calls than expected)")
        header(f"gateway.submit with the scripted provider ({total} messages per scenario)")
        print_rows(rows)
        print()
        for note in notes:
            print(note)
        for sample, base in rows:
            if base is not None:
                overhead = (sample.p50 - base.p50) if sample.p50 > base.p50 else 0.0
                print(f"kernel overhead per message (p50 - baseline p50), {sample.name}: {fmt_secs(overhead)}")
        no_skills = rows[3][0]  # plain, sequential, new session each, bundled skills only
        index_now = time_sync("prompt_index", kernel.service("skills").prompt_index, 20).p50
    if skills:
        with temp_home() as other_home:
            many, index_many = await skills_scaling(max(8, total // 8), skills, other_home)
        header(f"per-message cost with {skills} user skills installed (the skill index is rebuilt per message)")
        print_rows([(no_skills, None), (many, no_skills)])
        print(
            f"skills.prompt_index() p50: {fmt_secs(index_now)} with the bundled skills, {fmt_secs(index_many)} with {skills} more"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="48 messages per scenario instead of 400")
    parser.add_argument("--messages", type=int, default=None)
    parser.add_argument("--skills", type=int, default=20, help="user skills for the last section (0 skips it)")
    args = parser.parse_args()
    total = args.messages or (48 if args.quick else 400)
    print(f"gateway benchmark | {machine_line()}")
    with temp_home() as home:
        asyncio.run(main_async(total, home, args.skills))


if __name__ == "__main__":
    main()
