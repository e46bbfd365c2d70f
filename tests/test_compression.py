"""Compressed transport (`kafka_compression`, docs/serving.md#compression), against the real
broker: a record batch written by our producers with each codec is stored compressed (read
from the broker's log segments) and reads back the same through our consumers and through
librdkafka; the pipeline answers with every hop compressed, whatever codec a client chose.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from confluent_kafka import Producer

from harness.bench.disk import batch_codecs, log_dir, topic_bytes
from runtime.kafka_config import consumer_config, producer_config
from schemas.answer import Answer
from schemas.question import Question
from schemas.settings import Settings
from schemas.topics import ANSWERS, BATCHES, QUESTIONS, topic_name
from tests.conftest import Pipeline, read_topic

pytestmark = pytest.mark.timeout(300)

CODECS = ("none", "gzip", "lz4", "zstd")
N = 60


def questions(n: int) -> list[Question]:
    now = int(time.time() * 1000)
    return [
        Question(
            question_id=uuid.uuid4(),
            service="svc-0",
            user_id=f"user-{i % 3}",
            text=f"what movies did [Ginger Rogers] act in {i}",
            ts=now,
        )
        for i in range(n)
    ]


async def produce(settings: Settings, topic: str, values: list[bytes], transactional: bool = False) -> None:
    """All `values` through one of our producers: plain, or transactional as a worker's
    (workers.delivery: producer_config plus a transactional id)."""
    config = producer_config(settings, "compression-test")
    if transactional:
        config["transactional_id"] = f"{settings.worker_group_id}-compression-test"
    producer = AIOKafkaProducer(**config)
    await producer.start()
    try:
        if transactional:
            await producer.begin_transaction()
        sent = [await producer.send(topic, v, key=str(i % 3).encode()) for i, v in enumerate(values)]
        await asyncio.gather(*sent)
        if transactional:
            await producer.commit_transaction()
    finally:
        await producer.stop()


async def consume(settings: Settings, topic: str, expect: int, timeout_s: float = 60.0) -> list[bytes]:
    """Read `topic` from its beginning with our consumer configuration (read_committed)."""
    consumer = AIOKafkaConsumer(**consumer_config(settings, None, "compression-test-reader"))
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in range(settings.partitions)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        out: list[bytes] = []
        deadline = time.monotonic() + timeout_s
        while len(out) < expect and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                out += [r.value for r in records]
        return out
    finally:
        await consumer.stop()


def local_broker(settings: Settings) -> None:
    if log_dir(settings) is None:
        pytest.skip("the stored codec is read from the local broker's log segments; this broker is external")


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("transactional", [False, True], ids=["plain", "transactional"])
def test_each_codec_is_stored_compressed_and_reads_back(isolated: Settings, codec: str, transactional: bool) -> None:
    local_broker(isolated)
    settings = isolated.model_copy(update={"kafka_compression": codec})
    topic = topic_name(settings, ANSWERS if transactional else QUESTIONS)
    values = [q.to_bytes() for q in questions(N)]
    asyncio.run(produce(settings, topic, values, transactional))

    assert sorted(asyncio.run(consume(settings, topic, N))) == sorted(values)
    assert sorted(m.value() for m in read_topic(settings, topic, N, 60)) == sorted(values)

    stored = batch_codecs(settings, topic)
    assert set(stored) - {"control"} == {codec}, stored
    assert ("control" in stored) == transactional, stored  # the commit markers, never compressed
    on_disk = topic_bytes(settings, topic)
    assert on_disk is not None
    if codec == "none":
        assert on_disk > sum(map(len, values))
    else:  # 60 similar questions in a few batches: any codec at least halves them
        assert on_disk < 0.5 * sum(map(len, values)), (codec, on_disk, sum(map(len, values)))


def test_pipeline_answers_with_every_hop_compressed(isolated: Settings, pipeline: Pipeline) -> None:
    """A client that compresses with lz4 (librdkafka), a pipeline set to zstd: the stream
    processor's Faust consumer reads lz4, batches and answers are stored as zstd, and a
    librdkafka consumer reads the answers."""
    local_broker(isolated)
    pipeline.configure(kafka_compression="zstd", reasoner="baseline")
    pipeline.start("streams", "streams")
    pipeline.start("worker-1", "workers")
    asked = questions(20)
    client = Producer(
        {"bootstrap.servers": isolated.kafka_bootstrap_servers, "compression.type": "lz4", "linger.ms": 20}
    )
    for q in asked:
        client.produce(topic_name(isolated, QUESTIONS), q.to_bytes(), key=q.user_id.encode())
    assert client.flush(30) == 0

    got = [Answer.from_bytes(m.value()) for m in read_topic(isolated, topic_name(isolated, ANSWERS), len(asked), 240)]
    assert {a.question_id for a in got} == {q.question_id for q in asked}, pipeline.logs()
    assert set(batch_codecs(isolated, topic_name(isolated, QUESTIONS))) == {"lz4"}
    assert set(batch_codecs(isolated, topic_name(isolated, BATCHES))) == {"zstd"}
    assert set(batch_codecs(isolated, topic_name(isolated, ANSWERS))) == {"zstd", "control"}


def test_faust_producer_follows_the_setting(isolated: Settings) -> None:
    """The producer Faust builds itself gets the same codec as ours (runtime.faust_config)."""
    from streams.app import create_app

    for codec, expected in (("zstd", "zstd"), ("none", None)):
        app = create_app(isolated.model_copy(update={"kafka_compression": codec}))
        assert app.conf.producer_compression_type == expected
        assert app.conf.producer_acks == -1


def test_bytes_and_cpu_per_question() -> None:
    from harness.bench.experiments.compression import bytes_per_question, cpu_us_per_question, versus_none

    grown = bytes_per_question({"questions": 100, "batches": 0}, {"questions": 1100, "batches": 500}, 10)
    assert grown == {"questions": 100.0, "batches": 50.0, "total": 150.0}
    assert bytes_per_question({"questions": None}, {"questions": 5}, 10) is None  # an external broker
    # 50 % of a core at 100 answers/s: 5 ms per question
    assert cpu_us_per_question({"pipeline:streams": 50.0, "kafka": 10.0}, 100.0) == {
        "streams": 5000.0,
        "kafka": 1000.0,
        "total": 6000.0,
    }
    runs = [
        {"codec": "none", "bytes_per_question": {"total": 200.0}, "cpu_us_per_question": {"total": 900.0}},
        {"codec": "zstd", "bytes_per_question": {"total": 150.0}, "cpu_us_per_question": {"total": 950.0}},
    ]
    assert versus_none(runs) == {"zstd": {"bytes_ratio": {"total": 0.75}, "cpu_us_diff": {"total": 50.0}}}


@pytest.mark.timeout(300)
def test_compression_experiment_smoke(services: Settings, tmp_path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: ANN001
    """`autoglm bench --experiments compression` with the instant echo reasoner: each codec's
    run stores its topics with that codec and reports bytes and CPU per question."""
    import json

    from harness.bench import main

    local_broker(services)
    argv = ["--json", "--quick", "--reasoner", "echo", "--systems", "ceiling", "--experiments", "compression"]
    argv += ["--experiment-rate", "30", "--duration-s", "1", "--max-steps", "1", "--windows", ""]
    argv += ["--budget-s", "20", "--out", str(tmp_path)]
    main(argv)  # the exit status speaks for the ceiling's search, not for the experiment
    result = json.loads(capsys.readouterr().out)["experiments"]["compression"]
    assert "error" not in result, result.get("error")
    assert [r["codec"] for r in result["runs"]] == ["none", "lz4", "zstd"]
    for run in result["runs"]:
        for topic in ("questions", "batches", "answers"):
            assert set(run["stored_batches"][topic]) - {"control"} == {run["codec"]}, run["stored_batches"]
            assert run["bytes_per_question"][topic] > 0
        assert run["cpu_us_per_question"]["streams"] > 0 and run["answered"] > 0
    assert set(result["codec_cost"]["codecs"]) == {"gzip", "lz4", "zstd"}
    assert "Experiment: compression" in (tmp_path / "report.md").read_text()
