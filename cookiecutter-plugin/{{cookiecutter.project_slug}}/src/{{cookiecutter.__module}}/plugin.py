{%- set names = ["hookimpl"] -%}
{%- if cookiecutter.with_provider %}{% set names = names + ["Message", "ModelInfo", "ModelRequest", "ModelResponse", "StopEvent", "TextDelta", "Usage", "UsageEvent"] %}{% endif -%}
{%- if cookiecutter.with_channel %}{% set names = names + ["IncomingMessage", "OutgoingMessage"] %}{% endif -%}
{%- if cookiecutter.with_policy %}{% set names = names + ["Action", "ActionContext", "Decision"] %}{% endif -%}
"""{{ cookiecutter.description }}

Oxios loads this module through the ``oxios`` entry point in pyproject.toml
and calls the functions marked ``@hookimpl``. Each hook is documented in the
Oxios hook reference (docs/hooks.md): when it is called, its arguments, and
what its result means. Import only ``oxios_hookspecs`` and ``oxios``'s public
names here.
"""

from __future__ import annotations

{% if cookiecutter.with_tool or cookiecutter.with_channel or cookiecutter.with_provider or cookiecutter.with_command -%}
from typing import Any

{% endif -%}
{% if names|length == 1 -%}
from oxios_hookspecs import hookimpl
{% else -%}
from oxios_hookspecs import (
{% for name in names|sort(case_sensitive=True) -%}
{{ "    " }}{{ name }},
{% endfor -%}
)
{% endif %}
NAME = "{{ cookiecutter.__name }}"
{%- if cookiecutter.with_tool %}


# -- tool: what agents can do ---------------------------------------------------------------


def text_stats(text: str, top: int = 3) -> dict[str, Any]:
    """Count the words, lines and characters of a text and list its most frequent words.

    The JSON schema the model sees comes from the type hints; this docstring is
    the tool's description. Arguments from the model are validated first, so a
    bad call becomes an error the model can correct.
    """
    words = [w.strip(".,;:!?\"'()").lower() for w in text.split()]
    counts: dict[str, int] = {}
    for word in filter(None, words):
        counts[word] = counts.get(word, 0) + 1
    frequent = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[: max(0, top)]
    return {
        "words": len([w for w in words if w]),
        "lines": len(text.splitlines()),
        "characters": len(text),
        "top_words": [{"word": w, "count": c} for w, c in frequent],
    }


@hookimpl
def register_tools(register: Any) -> None:
    # tier drives policy: read < write < exec < network
    register(text_stats, tier="read", name="{{ cookiecutter.__ident }}_text_stats")
{%- endif %}
{%- if cookiecutter.with_channel %}


# -- channel: a way people reach Oxios ------------------------------------------------------


class OutboxChannel:
    """A minimal channel: ``receive(text)`` hands a message to Oxios and the
    reply lands in ``outbox``. Replace ``receive`` with your transport's
    listener (a webhook, a socket, a polling loop) and ``send`` with its
    delivery call.
    """

    name = NAME
    supports_streaming = False

    def __init__(self) -> None:
        self.gateway: Any = None
        self.outbox: list[OutgoingMessage] = []

    async def start(self, gateway: Any) -> None:
        self.gateway = gateway  # start listeners here; keep this quick

    async def stop(self) -> None:
        self.gateway = None  # stop listeners and close connections here

    async def send(self, outgoing: OutgoingMessage) -> None:
        self.outbox.append(outgoing)

    async def receive(self, text: str, *, chat_id: str = "local", user_id: str = "default") -> Any:
        """One incoming message: the gateway resolves the session, runs the agent and persists both sides."""
        if self.gateway is None:
            raise RuntimeError(f"channel {self.name} is not started")
        message = IncomingMessage(content=text, channel=self.name, chat_id=chat_id, user_id=user_id)
        result = await self.gateway.submit(message)
        reply = OutgoingMessage(
            content=result.response, channel=self.name, chat_id=chat_id, session_id=result.session_id
        )
        await self.send(reply)
        return result


@hookimpl
def register_channels(register: Any, kernel: Any) -> None:
    # Settings live in config.toml as [channels.{{ cookiecutter.__name }}]; skip the channel when disabled.
    settings = kernel.config.channels.get(NAME, {})
    if settings.get("enabled", True):
        register(OutboxChannel())
{%- endif %}
{%- if cookiecutter.with_provider %}


# -- provider: an LLM Oxios can think with -----------------------------------------------------


class EchoProvider:
    """Answers with the last user message. Replace ``_answer`` with a call to your
    model's API; keep ``stream`` yielding text deltas, then usage, then stop."""

    def __init__(self, name: str, settings: dict[str, Any]) -> None:
        self.name = name
        self.default_model = settings.get("default_model") or "echo-1"

    def models(self) -> list[ModelInfo]:
        return [ModelInfo(id=self.default_model, provider=self.name, context_window=8192)]

    def _answer(self, request: ModelRequest) -> str:
        last = next((m.text for m in reversed(request.messages) if m.role == "user" and m.text), "")
        return f"echo: {last}"

    def _usage(self, request: ModelRequest, text: str) -> Usage:
        prompt = sum(len(m.text) for m in request.messages) + len(request.system)
        return Usage(input_tokens=prompt // 4 + 1, output_tokens=len(text) // 4 + 1)

    async def stream(self, request: ModelRequest) -> Any:
        text = self._answer(request)
        for i, word in enumerate(text.split(" ")):
            yield TextDelta(text=word if i == 0 else " " + word)
        yield UsageEvent(usage=self._usage(request, text))
        yield StopEvent(reason="end_turn")

    async def complete(self, request: ModelRequest) -> ModelResponse:
        text = self._answer(request)
        return ModelResponse(message=Message.assistant(text), usage=self._usage(request, text), model=request.model)


@hookimpl
def register_providers(register: Any) -> None:
    # config.toml: [providers.mine] kind = "{{ cookiecutter.__name }}-echo"
    register(f"{NAME}-echo", EchoProvider)
{%- endif %}
{%- if cookiecutter.with_command %}


# -- command: `oxios {{ cookiecutter.__name }} ...` ------------------------------------------------------


@hookimpl
def register_commands(app: Any) -> None:
    import typer  # import inside: `oxios --help` must stay fast

    group = typer.Typer(help="{{ cookiecutter.description }}", no_args_is_help=True)

    @group.command("hello")
    def hello(name: str = typer.Argument("world", help="Who to greet.")) -> None:
        """Say hello (replace me with your plugin's commands)."""
        typer.echo(f"Hello, {name}! ({{ cookiecutter.project_slug }})")

    app.add_typer(group, name=NAME)
{%- endif %}
{%- if cookiecutter.with_policy %}


# -- policy: a vote on what agents may do ------------------------------------------------------

SECRET_FILES = {".env", ".netrc", "id_rsa", "id_ed25519", "credentials.json"}


@hookimpl
def check_action(action: Action, context: ActionContext) -> Decision | None:
    """Deny writes to files that usually hold secrets; ask before ``git push``.

    Every policy votes on every action; deny beats ask beats allow. Return
    ``None`` to abstain, and always give a reason a person can act on.
    """
    if action.kind == "path" and action.access == "write":
        filename = action.path.replace("\\", "/").rsplit("/", 1)[-1]
        if filename in SECRET_FILES:
            reason = f"{filename} usually holds secrets; agents may not write it"
            return Decision(verdict="deny", reason=reason, policy=NAME)
    if action.kind == "exec" and action.argv[:2] == ["git", "push"]:
        return Decision(verdict="ask", reason="git push publishes work; a person should confirm", policy=NAME)
    return None
{%- endif %}
