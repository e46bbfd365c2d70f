"""Faust's aiokafka transport, with the app's fetch wait instead of a fixed 1,500 ms.

Why: aiokafka keeps one fetch in flight per broker. When a busy partition's records are
still waiting to be consumed (the event loop is busy), the next fetch names only the other
partitions, here the idle `feedback` ones, and the broker holds a fetch that finds no data
for `fetch_max_wait_ms`; questions that arrive meanwhile wait behind it. faust-streaming
0.15 passes a fixed 1,500 ms to aiokafka and has no setting for it: under load the
questions topic stalled for ~1.6 s every few seconds. `AUTOGLM_KAFKA_FETCH_MAX_WAIT_MS`
(50) bounds that stall. The price, measured at 2 q/s: an idle consumer asks the broker 20
times a second, and the broker used 11 % of a core instead of 7-8 % (with 500 ms).
"""

from __future__ import annotations

from typing import Any

import aiokafka
from faust.transport.drivers import aiokafka as faust_aiokafka


class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's consumer thread; its aiokafka consumer waits at most `app.fetch_max_wait_ms`."""

    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = self.app.fetch_max_wait_ms  # read when the fetcher starts
        consumer._fetch_min_bytes = self.app.fetch_min_bytes
        return consumer


class Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Transport(faust_aiokafka.Transport):
    Consumer = Consumer
