"""The worker's delivery step: claiming answer rows in one statement (real PostgreSQL), and
the outbox that delivers every reasoned poll waiting at once, in order."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from runtime.db import claim_rows, create_pool
from schemas.answer import Answer, Latency, ModelInfo
from schemas.rows import CLAIM_ANSWERS, answer_row
from schemas.settings import Settings
from workers.outbox import Outbox


def _answer(question_id: uuid.UUID, batch_id: uuid.UUID, text: str = "who directed [Heat]") -> Answer:
    return Answer(
        question_id=question_id,
        service="s",
        user_id="u",
        text=text,
        status="ok",
        model=ModelInfo(name="t", version="1"),
        batch_id=batch_id,
        question_ts=1,
        answered_ts=2,
        latency=Latency(ingest_ms=1, batch_wait_ms=1, queue_ms=1, inference_ms=1, total_ms=4),
    )


def test_claim_first_batch_owns_each_row(services: Settings) -> None:
    async def scenario() -> None:
        pool = await create_pool(services.dsn)
        try:
            q1, q2, q3 = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
            first, second = uuid.uuid4(), uuid.uuid4()
            claim = [_answer(q1, first), _answer(q2, first), _answer(q2, second)]  # q2 twice in one delivery
            found = await claim_rows(pool, CLAIM_ANSWERS, [answer_row(a) for a in claim])
            assert found.owners == {q1: first, q2: first}
            assert sorted(found.won) == sorted([q1, q2])  # q2 inserted once
            # A redelivery of the first batch finds its own rows; another batch finds a foreign
            # owner for q1 and claims the new q3.
            again = await claim_rows(
                pool, CLAIM_ANSWERS, [answer_row(_answer(q1, first)), answer_row(_answer(q3, second))]
            )
            assert again.owners == {q1: first, q3: second}
            assert again.won == [q3]  # q1 was there already: found, not won again
            async with pool.acquire() as conn:
                stored = await conn.fetch(
                    "SELECT question_id, batch_id, answers, latency FROM answers "
                    "WHERE question_id = ANY($1::uuid[]) ORDER BY question_id",
                    [q1, q2, q3],
                )
            assert len(stored) == 3
            assert {r["question_id"]: r["batch_id"] for r in stored} == {q1: first, q2: first, q3: second}
            assert all(r["answers"] == "[]" and '"total_ms"' in r["latency"] for r in stored)  # jsonb, not quoted text
            assert (await claim_rows(pool, CLAIM_ANSWERS, [])).owners == {}
        finally:
            await pool.close()

    asyncio.run(scenario())


def test_outbox_delivers_waiting_polls_together_in_order() -> None:
    async def scenario() -> list[list[int]]:
        delivered: list[list[int]] = []
        gate = asyncio.Event()

        async def deliver(polls: list[int]) -> None:
            if not delivered:
                await gate.wait()  # the first delivery is slow: polls 2-4 wait meanwhile
            delivered.append(polls)

        outbox: Outbox[int] = Outbox(deliver, limit=3)
        for poll in (1, 2, 3, 4):
            await outbox.put(poll)
            await asyncio.sleep(0)
        assert outbox.undelivered == 4
        putting = asyncio.create_task(outbox.put(5))  # 3 wait already: the consumer loop is held back
        await asyncio.sleep(0.01)
        assert not putting.done()
        gate.set()
        await putting
        await outbox.drain()
        await outbox.close()
        return delivered

    assert asyncio.run(scenario()) == [[1], [2, 3, 4], [5]]


def test_outbox_raises_a_delivery_error_to_the_consumer_loop() -> None:
    async def scenario() -> None:
        async def deliver(polls: list[int]) -> None:
            raise RuntimeError("fenced")

        outbox: Outbox[int] = Outbox(deliver, limit=2)
        await outbox.put(1)
        with pytest.raises(RuntimeError, match="fenced"):
            await outbox.drain()
        with pytest.raises(RuntimeError, match="fenced"):
            await outbox.put(2)
        with pytest.raises(RuntimeError, match="fenced"):
            outbox.raise_if_failed()  # what the consumer loop checks after an empty poll
        await outbox.close()

    asyncio.run(scenario())
