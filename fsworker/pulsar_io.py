"""Pulsar client, consumer and producer for one replica."""

from __future__ import annotations

import _pulsar
import pulsar

from fscommon.worker_spec import WorkerSpec


class BrokerUnavailable(Exception):
    """Pulsar could not be reached or refused the subscription: retry later."""


def connect(spec: WorkerSpec) -> tuple[pulsar.Client, pulsar.Consumer, pulsar.Producer | None]:
    """Create the client, a Shared subscription named after the function, and the producer."""
    client = pulsar.Client(
        spec.pulsar_url,
        operation_timeout_seconds=10,
        connection_timeout_ms=5000,
        logger=pulsar.ConsoleLogger(pulsar.LoggerLevel.Warn),
    )
    try:
        consumer = client.subscribe(
            spec.inputs,
            spec.subscription,
            consumer_type=pulsar.ConsumerType.Shared,
            initial_position=pulsar.InitialPosition.Earliest,
            receiver_queue_size=1000,
            consumer_name=f"{spec.function}-{spec.replica}",
        )
        producer = None
        if spec.output:
            producer = client.create_producer(
                spec.output,
                producer_name=None,
                batching_enabled=True,
                batching_max_publish_delay_ms=1,
                block_if_queue_full=True,
                max_pending_messages=10000,
            )
    except (pulsar.PulsarException, _pulsar.PulsarException) as exc:
        client.close()
        raise BrokerUnavailable(f"cannot subscribe or produce at {spec.pulsar_url}: {exc}") from exc
    return client, consumer, producer
