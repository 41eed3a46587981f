"""A2A tasks live in Oxios's state database: they survive a restart, and runs a restart cut off end failed."""

from __future__ import annotations

import asyncio
import os
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from a2a_fakes import free_port, sdk_client, user_message, wait_for
from oxios_plugin_a2a import plugin as a2a_plugin


def served(scripted_provider: Any, port: int, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return scripted_provider.config({"plugins": {"a2a": {"port": port}}, **(extra or {})})


async def task_state(client: Any, task_id: str) -> int:
    from a2a.types import GetTaskRequest

    return (await client.get_task(GetTaskRequest(id=task_id))).status.state


async def test_tasks_survive_a_restart_and_cut_off_runs_end_failed(oxios_kernel_factory: Any, scripted_provider: Any) -> None:
    from a2a.types import GetTaskRequest, ListTasksRequest, TaskState

    plugins = [scripted_provider.plugin(), a2a_plugin]
    port = free_port()
    async with oxios_kernel_factory(plugins=plugins, config=served(scripted_provider, port)) as kernel:
        base = f"http://127.0.0.1:{port}"
        scripted_provider.enqueue_text("Four.")
        client = await sdk_client(base, streaming=False)
        done = [e async for e in client.send_message(user_message("What is 2 + 2?"))][-1].task
        assert done.status.state == TaskState.TASK_STATE_COMPLETED
        # A run still going when the daemon stops: it can never finish.
        scripted_provider.enqueue_hang("thinking ...")
        poller = await sdk_client(base, streaming=False, polling=True)
        cut = [e async for e in poller.send_message(user_message("take forever"))][-1].task
        await wait_for(lambda: kernel.services["a2a_tasks"].status()["running"] == 1, "the run is working")
        assert await task_state(poller, cut.id) == TaskState.TASK_STATE_WORKING
        await client.close()
        await poller.close()

    port = free_port()
    async with oxios_kernel_factory(plugins=plugins, config=served(scripted_provider, port)) as kernel:
        client = await sdk_client(f"http://127.0.0.1:{port}", streaming=False)
        fetched = await client.get_task(GetTaskRequest(id=done.id))
        assert fetched.status.state == TaskState.TASK_STATE_COMPLETED
        assert fetched.artifacts[0].parts[0].text == "Four."
        assert "What is 2 + 2?" in [p.text for m in fetched.history for p in m.parts]
        ended = await client.get_task(GetTaskRequest(id=cut.id))
        assert ended.status.state == TaskState.TASK_STATE_FAILED
        assert "interrupted: Oxios stopped" in ended.status.message.parts[0].text
        listed = await client.list_tasks(ListTasksRequest())
        assert [t.id for t in listed.tasks] == [cut.id, done.id] and listed.total_size == 2  # latest status first
        failed_only = await client.list_tasks(ListTasksRequest(status=TaskState.TASK_STATE_FAILED))
        assert [t.id for t in failed_only.tasks] == [cut.id]
        # The A2A context still leads to its Oxios session.
        scripted_provider.enqueue_text("Eight.")
        events = [e async for e in client.send_message(user_message("And doubled?", context_id=done.context_id))]
        assert events[-1].task.artifacts[0].parts[0].text == "Eight."
        assert "What is 2 + 2?" in [m.text for m in scripted_provider.requests[-1].messages]
        assert kernel.services["a2a_tasks"].status()["recovered"] == 0  # a clean stop left nothing behind
        await client.close()


CRASHING_DAEMON = textwrap.dedent(
    """
    import asyncio, os, sys
    from pathlib import Path

    from a2a.helpers import new_task_from_user_message, new_text_message
    from a2a.server.context import ServerCallContext
    from a2a.types import Role, TaskState

    from oxios.config import load
    from oxios.kernel import Kernel
    from oxios_plugin_a2a.tasks import task_store

    async def main():
        home = Path(os.environ["OXIOS_HOME"])
        kernel = Kernel(load(home / "config.toml"), home)
        await kernel.start(channels=False)
        task = new_task_from_user_message(new_text_message("work on this", role=Role.ROLE_USER))
        task.status.state = TaskState.TASK_STATE_WORKING
        await task_store(kernel).save(task, ServerCallContext())
        print(task.id, flush=True)
        os._exit(9)  # a crash: no stop, nothing cleaned up

    asyncio.run(main())
    """
)


async def test_runs_of_a_crashed_process_end_failed(oxios_kernel_factory: Any, oxios_home: Path) -> None:
    from a2a.server.context import ServerCallContext
    from a2a.types import TaskState
    from oxios_plugin_a2a.tasks import StateTaskStore

    env = {**os.environ, "OXIOS_HOME": str(oxios_home), "OXIOS_LOAD_PLUGINS": ""}
    daemon = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CRASHING_DAEMON, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    async with asyncio.timeout(120):
        out, err = await daemon.communicate()
    assert daemon.returncode == 9, err.decode()
    task_id = out.decode().split()[-1]

    async with oxios_kernel_factory(plugins=[a2a_plugin], config={"plugins": {"a2a": {"port": free_port()}}}) as kernel:
        store = kernel.services["a2a_tasks"]
        assert store.status()["recovered"] == 1
        anyone = ServerCallContext()
        task = await store.get(task_id, anyone)
        assert task.status.state == TaskState.TASK_STATE_FAILED
        assert "the Oxios process running this task ended" in task.status.message.parts[0].text

        # A store of a kernel that is still alive (a CLI command next to the daemon) leaves live runs alone.
        running = await store.get(task_id, anyone)
        running.id, running.status.state = "still-running", TaskState.TASK_STATE_WORKING
        await store.save(running, anyone)
        assert StateTaskStore(kernel).recovered == 0
        assert (await store.get("still-running", anyone)).status.state == TaskState.TASK_STATE_WORKING


async def test_streamed_tokens_are_not_each_written(oxios_kernel_factory: Any, scripted_provider: Any) -> None:
    """Each token is a working status update the SDK saves; only changes of state reach SQLite."""
    from a2a.types import TaskState

    port = free_port()
    async with oxios_kernel_factory(
        plugins=[scripted_provider.plugin(), a2a_plugin], config=served(scripted_provider, port)
    ) as kernel:
        # SQLite itself counts the writes.
        kernel.state.execute("CREATE TABLE task_writes (state INTEGER)")
        for event in ("INSERT", "UPDATE"):
            kernel.state.execute(
                f"CREATE TRIGGER count_{event.lower()} AFTER {event} ON a2a_tasks"
                " BEGIN INSERT INTO task_writes(state) VALUES (new.state); END"
            )
        scripted_provider.enqueue_text("An answer streamed in several deltas.")
        streamer = await sdk_client(f"http://127.0.0.1:{port}", streaming=True)
        updates = [e async for e in streamer.send_message(user_message("stream a lot"))]
        await streamer.close()
        writes = [TaskState.Name(r["state"]) for r in kernel.state.all("SELECT state FROM task_writes")]
    working = [
        e
        for e in updates
        if e.WhichOneof("payload") == "status_update" and e.status_update.status.state == TaskState.TASK_STATE_WORKING
    ]
    assert len(working) >= 3  # the start of work and the answer's deltas
    assert writes.count("TASK_STATE_WORKING") == 1 and writes[-1] == "TASK_STATE_COMPLETED", writes


@pytest.mark.parametrize("page_size", [1, 2])
async def test_list_pages_through_every_task_once(oxios_kernel_factory: Any, page_size: int) -> None:
    from a2a.server.context import ServerCallContext
    from a2a.types import ListTasksRequest, Task, TaskState, TaskStatus
    from a2a.utils.task import encode_page_token

    async with oxios_kernel_factory(plugins=[a2a_plugin]) as kernel:
        from oxios_plugin_a2a.tasks import task_store

        store, anyone = task_store(kernel), ServerCallContext()
        for i in range(5):
            status = TaskStatus(state=TaskState.TASK_STATE_COMPLETED)
            status.timestamp.FromSeconds(1_000 + i // 2)  # equal timestamps: the id breaks the tie
            await store.save(Task(id=f"t{i}", context_id="c", status=status), anyone)
        await store.save(Task(id="no-ts", context_id="other", status=TaskStatus(state=TaskState.TASK_STATE_COMPLETED)), anyone)
        seen, token = [], ""
        for _ in range(10):
            page = await store.list(ListTasksRequest(page_size=page_size, page_token=token), anyone)
            seen += [t.id for t in page.tasks]
            token = page.next_page_token
            if not token:
                break
        assert seen == ["t4", "t3", "t2", "t1", "t0", "no-ts"] and page.total_size == 6
        legacy = await store.list(ListTasksRequest(page_size=2, page_token=encode_page_token("t2")), anyone)
        assert [t.id for t in legacy.tasks] == ["t2", "t1"]
        with pytest.raises(Exception, match=r"(?i)page token"):
            await store.list(ListTasksRequest(page_token=encode_page_token("nope")), anyone)
        only_c = await store.list(ListTasksRequest(context_id="other"), anyone)
        assert [t.id for t in only_c.tasks] == ["no-ts"]
        await store.delete("t0", anyone)
        assert await store.get("t0", anyone) is None
