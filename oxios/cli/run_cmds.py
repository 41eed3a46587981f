"""`oxios run PROMPT`: one message, one answer, in this process (no daemon needed)."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import typer

from . import common

# The seed's JSON shape, in the seed's order.
RUN_JSON_KEYS = (
    "response",
    "session_id",
    "space_id",
    "space_tag",
    "seed_id",
    "agent_id",
    "phase_reached",
    "evaluation_passed",
    "exit_code",
    "duration_ms",
)


def _read_context(spec: str) -> str:
    if spec == "-":
        return sys.stdin.read()
    try:
        with open(spec, encoding="utf-8", errors="replace") as fh:
            return fh.read()
    except OSError as err:
        common.fail(f"--context-file {spec}: {err.strerror or err}", 2)


def build_prompt(prompt: str, context_text: str | None, context_name: str = "") -> str:
    if not context_text:
        return prompt
    label = "standard input" if context_name in ("", "-") else context_name
    return f"Context from {label}:\n```\n{context_text.rstrip()}\n```\n\n{prompt}"


async def run_once(
    kernel: Any,
    prompt: str,
    *,
    session: str | None = None,
    persona: str | None = None,
    model: str | None = None,
    no_interview: bool = False,
    stream: Any = None,
    terminal: bool = False,
) -> Any:
    """Submit one message through the gateway; ``stream`` gets text deltas.

    With ``terminal`` (a person at stdin), the Ouroboros interview asks its
    questions here, one prompt each, and the run continues with the answers.
    """
    from oxios_hookspecs import IncomingMessage

    from ..ouroboros.interview import answer_in_terminal
    from ..providers.errors import ProviderError

    providers = kernel.service("providers")
    try:
        providers.resolve(model or "")  # fail early, with the how-to, when nothing can answer
    except ProviderError as err:
        return None, str(err)
    if persona:
        personas = kernel.service("personas")
        try:
            personas.get(persona)
        except LookupError as err:
            return None, str(err)
    metadata: dict[str, Any] = {"no_interview": no_interview}
    if model:
        metadata["model"] = model
    asking = terminal and not no_interview
    if asking:
        # The interview may ask here; the agent's own approvals stay headless (denied), as before.
        metadata["ask_questions"] = True
    gateway = kernel.service("gateway")
    message = IncomingMessage(
        content=prompt, channel="cli", session_id=session, persona=persona, interactive=False, metadata=metadata
    )
    result = await gateway.submit(message, stream)
    ouroboros = kernel.services.get("ouroboros")
    while asking and ouroboros is not None and result.phase_reached == "Interview" and result.seed_id is None:
        questions = ouroboros.pending_questions(result.session_id)
        if not questions:
            break
        answers = await asyncio.to_thread(answer_in_terminal, questions, _ask_stderr, _say_stderr)
        message = IncomingMessage(
            content=answers, channel="cli", session_id=result.session_id, persona=persona, interactive=False, metadata=metadata
        )
        result = await gateway.submit(message, stream)
    return result, None


def _say_stderr(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def _ask_stderr(prompt: str) -> str:
    """One line from the terminal, the prompt on stderr (stdout stays the answer, or the JSON)."""
    sys.stderr.write(prompt)
    sys.stderr.flush()
    line = sys.stdin.readline()
    if not line:
        raise EOFError
    return line.rstrip("\n")


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run(
        prompt: str = typer.Argument(..., help="What to do."),
        json_out: bool = typer.Option(False, "--json", help="Print the result as JSON (no streaming)."),
        context_file: str = typer.Option(None, "--context-file", help="Prepend FILE (or - for stdin) as context."),
        exit_code: bool = typer.Option(False, "--exit-code", help="Exit 1 when the run failed or its evaluation did not pass."),
        session: str = typer.Option(None, "--session", help="Continue this session id (created when unknown)."),
        persona: str = typer.Option(None, "--persona", help="Persona to answer as (Dev, Review, Research ...)."),
        model: str = typer.Option(None, "--model", help="Model, as MODEL or PROVIDER/MODEL."),
        no_interview: bool = typer.Option(
            False, "--no-interview", help="Ask no questions: a task proceeds with assumptions written into its seed."
        ),
    ) -> None:
        """Single-shot execution: run PROMPT with an agent and print the answer (streams unless --json).

        At a terminal, a task the Ouroboros interview finds unclear gets its questions asked here.
        """
        if not prompt.strip():
            common.fail("the prompt is empty", 2)
        context_text = _read_context(context_file) if context_file else None
        text = build_prompt(prompt, context_text, context_file or "")
        streamed: list[bool] = []

        async def on_token(delta: str) -> None:
            streamed.append(True)
            sys.stdout.write(delta)
            sys.stdout.flush()

        async def go(kernel: Any) -> Any:
            return await run_once(
                kernel,
                text,
                session=session,
                persona=persona,
                model=model,
                no_interview=no_interview,
                stream=None if json_out else on_token,
                terminal=sys.stdin.isatty() and sys.stderr.isatty(),
            )

        result, problem = asyncio.run(common.with_kernel(go))
        if problem is not None:
            if json_out:
                common.echo_json({"response": "", "error": problem, "exit_code": 1})
            typer.echo(problem, err=True)
            raise typer.Exit(1)
        failed = result.error is not None or result.exit_code != 0
        code = 1 if failed or (exit_code and result.evaluation_passed is False) else 0
        if json_out:
            out = {key: getattr(result, key) for key in RUN_JSON_KEYS}
            out["exit_code"] = code
            if result.error:
                out["error"] = result.error
            common.echo_json(out)
        else:
            if not streamed and result.response:
                sys.stdout.write(result.response)
            sys.stdout.write("\n")
            if result.error:
                typer.echo(f"error: {result.error}", err=True)
        raise typer.Exit(code)
