{%- set names = [] -%}
{%- if cookiecutter.with_policy %}{% set names = names + ["Action"] %}{% endif -%}
{%- if cookiecutter.with_provider %}{% set names = names + ["Message", "ModelRequest"] %}{% endif -%}
"""Tests for {{ cookiecutter.project_slug }}, using the fixtures of ``oxios.testing``
(a pytest plugin installed with Oxios): ``oxios_kernel_factory`` starts a real
kernel in a temporary OXIOS_HOME, ``oxios_cli`` runs the CLI in-process,
``oxios_register`` registers a plugin for one test, ``scripted_provider`` stands
in for an LLM."""

from __future__ import annotations

{% if names -%}
from oxios_hookspecs import {{ names|join(", ") }}

{% endif -%}
from {{ cookiecutter.__module }} import plugin
{%- if cookiecutter.with_tool %}


async def test_tool_is_registered_and_works(oxios_kernel_factory):
    async with oxios_kernel_factory(plugins=[plugin]) as kernel:
        tool = kernel.tools.get("{{ cookiecutter.__ident }}_text_stats")
        assert tool is not None
        assert tool.spec.tier == "read"
        result = await tool.call({"text": "the cat and the hat", "top": 1}, kernel.context())
        assert not result.is_error
        assert result.data["words"] == 5
        assert result.data["top_words"] == [{"word": "the", "count": 2}]
        bad = await tool.call({"text": 42}, kernel.context())
        assert bad.is_error  # bad arguments come back as an error the model can fix
{%- endif %}
{%- if cookiecutter.with_channel %}


async def test_channel_round_trip(oxios_kernel_factory, scripted_provider):
    scripted_provider.enqueue_text("Hi! How can I help?")
    async with oxios_kernel_factory(
        plugins=[plugin, scripted_provider.plugin()], config=scripted_provider.config(), channels=True
    ) as kernel:
        channel = kernel.channels[plugin.NAME]
        result = await channel.receive("hello there")
        assert result.response == "Hi! How can I help?"
        assert channel.outbox[-1].content == "Hi! How can I help?"
        assert scripted_provider.requests[0].messages[-1].text == "hello there"
{%- endif %}
{%- if cookiecutter.with_provider %}


async def test_provider_kind_answers(oxios_kernel_factory):
    config = {
        "providers": {"mine": {"kind": f"{plugin.NAME}-echo", "default_model": "echo-1"}},
        "kernel": {"default_provider": "mine", "default_model": "echo-1"},
    }
    async with oxios_kernel_factory(plugins=[plugin], config=config) as kernel:
        assert f"{plugin.NAME}-echo" in kernel.provider_kinds
        providers = kernel.service("providers")
        response = await providers.complete(ModelRequest(model="echo-1", messages=[Message.user("ping")]))
        assert response.message.text == "echo: ping"
        request = ModelRequest(model="echo-1", messages=[Message.user("a b c")])
        texts = [event.text async for event in providers.get("mine").stream(request) if hasattr(event, "text")]
        assert "".join(texts) == "echo: a b c"
{%- endif %}
{%- if cookiecutter.with_command %}


def test_command(oxios_register, oxios_cli):
    oxios_register(plugin)
    result = oxios_cli(plugin.NAME, "hello", "Ada")
    assert result.exit_code == 0, result.output
    assert "Hello, Ada!" in result.output
{%- endif %}
{%- if cookiecutter.with_policy %}


async def test_policy_votes(oxios_kernel_factory):
    async with oxios_kernel_factory(plugins=[plugin]) as kernel:
        context = kernel.context(agent_id="test")
        denied = await kernel.check_action(Action(kind="path", path="project/.env", access="write"), context)
        assert denied.verdict == "deny"
        assert ".env" in denied.reason
        asked = await kernel.check_action(Action(kind="exec", argv=["git", "push"]), context)
        assert plugin.NAME in [vote.policy for vote in asked.votes if vote.verdict == "ask"]
        fine = await kernel.check_action(Action(kind="path", path="notes.md", access="read"), context)
        assert plugin.NAME not in [vote.policy for vote in fine.votes]
{%- endif %}
