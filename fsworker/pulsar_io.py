"""Pulsar client, consumer and producers for one replica.

The subscription type follows the function's ordering: none -> Shared (replicas
split the load), key -> Key_Shared (one replica per key at a time), strict ->
Failover (one active replica per topic). Dead-letter producers are created on
first use, one per dead-letter topic.

Dead letters are kept until someone deals with them: a message published to a
topic with no subscription lives only as long as the namespace's retention
(none by default). Before its first dead letter to a topic, the worker makes
sure the topic has the durable subscription ``DLQ_SUBSCRIPTION`` (at the
earliest position, so nothing already there is skipped); every dead letter
then stays until ``fsctl dlq replay`` or ``purge`` acknowledges it there
(fsd/dead_letter_box.py). Dead letters are published one message per entry,
so each can be acknowledged on its own.
"""

from __future__ import annotations

import hashlib
import re

import pulsar

from fscommon.function_options import DataSchema, FunctionOptions, Guarantee, Ordering, Position
from fscommon.protocol import DLQ_SUBSCRIPTION
from fscommon.worker_spec import WorkerSpec
from fsworker.codec import avro_schema
from fsworker.pulsar_json_schema import pulsar_json_schema

_CONSUMER_TYPES = {
    Ordering.NONE: pulsar.ConsumerType.Shared,
    Ordering.KEY: pulsar.ConsumerType.KeyShared,
    Ordering.STRICT: pulsar.ConsumerType.Failover,
}


# Producer batching: one entry per loop batch (up to 1000 messages), see _producer.
PUBLISH_DELAY_MS = 10
MAX_BATCH_MESSAGES = 1000

RECEIVER_QUEUE = 1000
# Under load the loop takes whole batches in one batch_receive() call (fsworker/batch_take.py):
# it returns at once when the queue holds a full batch, else after this wait.
BATCH_RECEIVE_WAIT_MS = 1


class BrokerUnavailable(Exception):
    """Pulsar could not be reached or refused the subscription: retry later."""


def dead_letter_topic(options: FunctionOptions, function: str, input_topic: str) -> str:
    """Where a message from ``input_topic`` goes after its last retry."""
    return options.dead_letter_topic or f"{input_topic}-{function}-DLQ"


def dedup_producer_name(function: str, input_topic: str) -> str:
    """A stable producer name per (function, input topic) for broker-side deduplication."""
    digest = hashlib.sha256(input_topic.encode()).hexdigest()[:12]
    return f"fs-{function}-{digest}"


def ensure_dead_letter_subscription(client: pulsar.Client, topic: str) -> None:
    """Create the durable subscription on ``topic`` if missing (also creates the topic)."""
    consumer = client.subscribe(
        topic,
        DLQ_SUBSCRIPTION,
        consumer_type=pulsar.ConsumerType.Shared,
        initial_position=pulsar.InitialPosition.Earliest,
        receiver_queue_size=1,
    )
    # close(), not unsubscribe(): the subscription stays and retains what comes.
    consumer.close()


class PulsarIO:
    """The replica's consumer, output producer(s) and dead-letter producers."""

    def __init__(self, spec: WorkerSpec, options: FunctionOptions) -> None:
        self.spec = spec
        self.options = options
        self.client = pulsar.Client(
            spec.pulsar_url,
            operation_timeout_seconds=10,
            connection_timeout_ms=5000,
            logger=pulsar.ConsoleLogger(pulsar.LoggerLevel.Warn),
        )
        self.output: pulsar.Producer | None = None
        # effectively-once: one named producer per input topic, created on first use.
        self.dedup_outputs: dict[str, pulsar.Producer] = {}
        self._dead_letters: dict[str, pulsar.Producer] = {}
        # A full queue holds RECEIVER_QUEUE messages: a larger batch would always wait.
        self.batch_receive_max = min(spec.max_batch, RECEIVER_QUEUE)
        try:
            topics: object = spec.inputs
            if options.input_pattern:
                topics = re.compile(options.input_pattern)
            self.consumer = self.client.subscribe(
                topics,
                spec.subscription,
                consumer_type=_CONSUMER_TYPES[options.ordering],
                initial_position=(
                    pulsar.InitialPosition.Earliest
                    if options.subscription_position == Position.EARLIEST
                    else pulsar.InitialPosition.Latest
                ),
                receiver_queue_size=RECEIVER_QUEUE,
                batch_receive_policy=pulsar.ConsumerBatchReceivePolicy(
                    self.batch_receive_max, 0, BATCH_RECEIVE_WAIT_MS
                ),
                consumer_name=f"{spec.function}-{spec.replica}",
                negative_ack_redelivery_delay_ms=options.retry_delay_ms,
                pattern_auto_discovery_period=5,
            )
            if spec.output and options.guarantee != Guarantee.EFFECTIVELY_ONCE:
                self.output = self._producer(spec.output, None, batching=True)
        except pulsar.PulsarException as exc:
            self.client.close()
            raise BrokerUnavailable(
                f"cannot subscribe or produce at {spec.pulsar_url}: {exc}"
            ) from exc

    def _producer(self, topic: str, name: str | None, batching: bool) -> pulsar.Producer:
        kwargs = {}
        if self.options.output_schema == DataSchema.AVRO:
            kwargs["schema"] = avro_schema(self.options)
        elif self.options.output_schema == DataSchema.JSON:
            # Registered so typed JSON consumers (Schema.JSON(...)) may subscribe.
            json_schema = pulsar_json_schema(self.options.json_schema)
            if json_schema is not None:
                kwargs["schema"] = json_schema
        return self.client.create_producer(
            topic,
            producer_name=name,
            batching_enabled=batching,
            # The loop flushes every batch as soon as it is sent (fsworker/commit.py), so this
            # timer never delays an output; at 1 ms it cut a 1000-message batch into ~10 entries
            # while the loop was still sending, each a write the broker (and bookie) pays for.
            batching_max_publish_delay_ms=PUBLISH_DELAY_MS,
            batching_max_messages=MAX_BATCH_MESSAGES,
            block_if_queue_full=True,
            max_pending_messages=10000,
            **kwargs,
        )

    def dedup_output(self, input_topic: str) -> pulsar.Producer:
        """The effectively-once output producer for one input topic."""
        producer = self.dedup_outputs.get(input_topic)
        if producer is None:
            assert self.spec.output is not None
            # No batching: the broker deduplicates a batch by its first sequence id, so a
            # batch that starts with a replayed output would drop the new ones behind it
            # (measured: the C++ client does not send the batch's highest sequence id).
            producer = self._producer(
                self.spec.output,
                dedup_producer_name(self.spec.function, input_topic),
                batching=False,
            )
            self.dedup_outputs[input_topic] = producer
        return producer

    def dead_letter(self, input_topic: str) -> pulsar.Producer:
        """The producer for the dead-letter topic of ``input_topic`` (bytes, no schema)."""
        topic = dead_letter_topic(self.options, self.spec.function, input_topic)
        producer = self._dead_letters.get(topic)
        if producer is None:
            # The subscription first: not even the first dead letter comes before it.
            ensure_dead_letter_subscription(self.client, topic)
            producer = self.client.create_producer(topic, batching_enabled=False)
            self._dead_letters[topic] = producer
        return producer

    def producers(self) -> list[pulsar.Producer]:
        """Every producer opened so far."""
        out = [self.output] if self.output is not None else []
        return out + list(self.dedup_outputs.values()) + list(self._dead_letters.values())

    def flush(self) -> None:
        """Wait until the broker confirmed everything sent; raises if a send failed."""
        for producer in self.producers():
            producer.flush()

    def close(self) -> None:
        """Close consumer (flushing grouped acks), producers and client."""
        self.consumer.close()
        for producer in self.producers():
            producer.flush()
            producer.close()
        self.client.close()
