"""A real cron run: the job's goal goes through the gateway to an agent thinking with the scripted provider."""

from __future__ import annotations

from cron_helpers import FakeClock, fresh_service
from ouroboros_helpers import CLEAR

from oxios.cron.service import CronService


async def test_a_job_runs_as_a_headless_agent_through_the_gateway(oxios_kernel_factory, scripted_provider) -> None:
    scripted_provider.enqueue_text("Top story: Oxios ships cron.")
    async with oxios_kernel_factory(plugins=[scripted_provider.plugin()], config=scripted_provider.config()) as kernel:
        clock = FakeClock("2026-05-04T08:59:30Z")
        cron = await fresh_service(kernel, clock, runner=None)  # the default runner: the gateway
        cron.create(
            {"name": "news", "schedule": "0 9 * * *", "timezone": "UTC", "goal": "Summarize top tech news", "priority": "high"}
        )
        clock.set("2026-05-04T09:00:10Z")
        assert (await cron.tick())["fired"] == ["news"]
        await cron.wait_idle()
        run = cron.runs("news")[0]
        assert run["status"] == "succeeded", run
        assert run["output"] == "Top story: Oxios ships cron." and run["session_id"] == "cron:news"
        assert run["agent_id"] and run["input_tokens"] > 0 and run["output_tokens"] > 0
        # The agent saw the goal (a plain job skips the Ouroboros routing call: one request in all).
        prompt = scripted_provider.requests[0].messages[-1].text
        assert "Summarize top tech news" in prompt and not prompt.startswith(
            "#"
        )  # the route is metadata, not text and len(scripted_provider.requests) == 1
        # The session cron:news holds the exchange (persisted by the gateway).
        history = kernel.services["sessions"].history("cron:news")
        assert [m.role for m in history][-2:] == ["user", "assistant"]
        agent = kernel.services["agents"].get(run["agent_id"])
        assert agent["session_id"] == "cron:news" and agent["priority"] == 10  # "high" on the scheduler's scale
        scripted_provider.assert_drained()


async def test_a_failing_agent_run_is_recorded_failed(oxios_kernel_factory, scripted_provider) -> None:
    from oxios.providers import ProviderUnavailableError

    for _ in range(10):
        scripted_provider.enqueue_error(ProviderUnavailableError("down", status=500))
    async with oxios_kernel_factory(
        plugins=[scripted_provider.plugin()], config=scripted_provider.config({"llm": {"max_retries": 0}})
    ) as kernel:
        clock = FakeClock("2026-05-04T08:00:00Z")
        cron: CronService = await fresh_service(kernel, clock, runner=None)
        cron.create({"name": "broken", "schedule": "every 1h", "goal": "g"})
        run = await cron.trigger("broken", wait=True)
        assert run["status"] == "failed" and run["error"]
        assert cron.get("broken")["consecutive_failures"] == 1


async def test_an_approval_in_a_headless_run_is_denied_not_waited_for(oxios_kernel_factory, scripted_provider) -> None:
    scripted_provider.enqueue_tool_call("ls", {"path": "."})
    scripted_provider.enqueue_text("Could not list the files.")
    config = scripted_provider.config({"security": {"tool_policies": {"ls": "always"}, "approval_timeout_secs": 60}})
    async with oxios_kernel_factory(plugins=[scripted_provider.plugin()], config=config) as kernel:
        cron = await fresh_service(kernel, FakeClock("2026-05-04T08:00:00Z"), runner=None)
        cron.create({"name": "lister", "schedule": "every 1h", "goal": "list the workspace"})
        run = await cron.trigger("lister", wait=True)  # would hang 60 s if it waited for a person
        assert run["status"] == "succeeded"
        tool_result = scripted_provider.requests[1].messages[-1].content[0]
        assert tool_result.is_error and "approv" in tool_result.content.lower()
        assert kernel.services["approvals"].list() == []  # nobody is left waiting
        denied = [e for e in kernel.services["audit"].entries() if e["action"] == "approval.headless_deny"]
        assert denied and denied[0]["metadata"]["session"] == "cron:lister" and not denied[0]["allowed"]


async def test_jobs_with_constraints_are_routed_to_ouroboros(oxios_kernel_factory) -> None:
    from oxios.cron.model import JobSpec, RunRequest
    from oxios.cron.runner import GatewayRunner

    async with oxios_kernel_factory() as kernel:
        ouroboros = kernel.services.get("ouroboros")
        if ouroboros is None:
            import pytest

            pytest.skip("no ouroboros service in this build")
        runner = GatewayRunner(kernel)
        session = kernel.services["sessions"].resolve("cron:x", user_id="cron", channel="cron", persona=None)
        spec = JobSpec(name="x", schedule="every 1h", goal="Write report.md", acceptance_criteria=["report.md exists"])
        message = runner.build_message(RunRequest(job=spec, run_id="r1", session_id="cron:x", trigger="manual"))
        assert message.interactive is False and "report.md exists" in message.content
        assert await ouroboros.should_handle(message, session) is True
        plain = runner.build_message(
            RunRequest(job=JobSpec(name="x", schedule="every 1h", goal="hi"), run_id="r2", session_id="cron:x", trigger="manual")
        )
        assert await ouroboros.should_handle(plain, session) is False


def seed_json(path: str, content: str) -> str:
    import json

    return json.dumps(
        {
            "goal": f"Create {path} containing {content}",
            "constraints": ["only touch the workspace"],
            "acceptance_criteria": [
                {
                    "id": "c1",
                    "description": f"{path} contains {content}",
                    "check": {"kind": "file", "path": path, "equals": content},
                }
            ],
            "ontology": [{"name": "file", "description": path}],
        }
    )


async def test_a_job_with_acceptance_criteria_runs_the_ouroboros_protocol(oxios_kernel_factory, scripted_provider) -> None:
    import json

    # Interview (clear), seed, the agent writes the file, the check passes and the judge scores the
    # job's own criterion (bound into the seed as required-1, without a check): no routing call.
    scripted_provider.enqueue_text(json.dumps(CLEAR)).enqueue_text(seed_json("report.txt", "ok"))
    scripted_provider.enqueue_tool_call("write", {"path": "report.txt", "content": "ok"}).enqueue_text("Wrote report.txt")
    scripted_provider.enqueue_text(json.dumps({"criteria": [{"id": "required-1", "score": 0.95, "evidence": "report.txt: ok"}]}))
    # Second run: the agent writes the wrong content; one generation only; the judge fails it.
    scripted_provider.enqueue_text(json.dumps(CLEAR)).enqueue_text(seed_json("report.txt", "ok"))
    scripted_provider.enqueue_tool_call("write", {"path": "report.txt", "content": "nope"}).enqueue_text("Wrote it")
    wrong = [{"id": i, "score": 0.1, "evidence": "wrong", "verdict": "fail"} for i in ("c1", "required-1")]
    scripted_provider.enqueue_text(json.dumps({"criteria": wrong, "score": 0.1}))
    config = scripted_provider.config({"orchestrator": {"default_mode": "auto", "max_generations": 1}})
    async with oxios_kernel_factory(plugins=[scripted_provider.plugin()], config=config) as kernel:
        cron = await fresh_service(kernel, FakeClock("2026-05-04T08:00:00Z"), runner=None)
        cron.create(
            {
                "name": "report",
                "schedule": "every 1h",
                "goal": "Write report.txt containing ok",
                "acceptance_criteria": ["report.txt contains ok"],
            }
        )
        passed = await cron.trigger("report", wait=True)
        assert passed["status"] == "succeeded", passed
        assert (kernel.paths.workspace / "report.txt").read_text() == "ok"
        assert "report.txt contains ok" in scripted_provider.requests[0].messages[-1].text
        failed = await cron.trigger("report", wait=True)
        assert failed["status"] == "failed" and "acceptance criteria" in failed["error"]
        scripted_provider.assert_drained()


async def test_commands_approved_up_front_run_headless_others_are_denied(oxios_kernel_factory, scripted_provider) -> None:
    """`approve = ["git status"]`: the job's headless run may run exactly that; anything else that asks is denied."""
    from oxios.cron.model import InvalidJob
    from oxios_hookspecs import Action

    async with oxios_kernel_factory(plugins=[scripted_provider.plugin()], config=scripted_provider.config()) as kernel:
        cron = kernel.services["cron"]
        cron.create({"name": "sync", "schedule": "every 1h", "goal": "sync the repo", "approve": ["git status --short"]})
        approvals = kernel.services["approvals"]
        ctx = kernel.context(agent_id="a1", session_id="cron:sync", interactive=False)
        allowed = await approvals.request(Action(kind="exec", argv=["git", "status", "--short"]), ctx, "asks")
        assert allowed.verdict == "allow" and "grant" in allowed.reason
        other = await approvals.request(Action(kind="exec", argv=["git", "status", "--long"]), ctx, "asks")
        assert other.verdict == "deny"
        elsewhere = kernel.context(agent_id="a2", session_id="cron:other", interactive=False)
        assert (
            await approvals.request(Action(kind="exec", argv=["git", "status", "--short"]), elsewhere, "asks")
        ).verdict == "deny"
        # Editing the list replaces the grants; deleting the job revokes them.
        cron.edit("sync", {"approve": ["git fetch"]})
        assert (await approvals.request(Action(kind="exec", argv=["git", "status", "--short"]), ctx, "asks")).verdict == "deny"
        assert (await approvals.request(Action(kind="exec", argv=["git", "fetch"]), ctx, "asks")).verdict == "allow"
        await cron.delete("sync")
        assert (await approvals.request(Action(kind="exec", argv=["git", "fetch"]), ctx, "asks")).verdict == "deny"
        for bad in ("rm -rf / ; echo", "/bin/sh -c x", "git log $(id)"):
            try:
                cron.create({"name": "bad", "schedule": "every 1h", "goal": "x", "approve": [bad]})
            except InvalidJob as err:
                assert str(err).startswith("approve:")
            else:
                raise AssertionError(f"{bad!r} was accepted")
