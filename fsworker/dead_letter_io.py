"""The replica's Pulsar I/O, with dead letters kept until someone deals with them.

A message published to a topic with no subscription is kept only as long as
the namespace's retention says (none by default), so dead letters could vanish
before anyone looks. Before its first dead letter to a topic, the worker makes
sure the topic has the durable subscription ``DLQ_SUBSCRIPTION`` (created at
the earliest position, so nothing already there is skipped): from then on every
dead letter stays until ``fsctl dlq replay`` or ``purge`` acknowledges it there
(fsd/dead_letter_box.py). The subscription is made before the producer, so not
even the first dead letter can be published ahead of it.

Dead letters are also published one message per entry (no batching): each can
then be acknowledged on its own, which a message inside a batch cannot be
unless the broker acknowledges at batch-index level.
"""

from __future__ import annotations

import pulsar

from fscommon.protocol import DLQ_SUBSCRIPTION
from fsworker.pulsar_io import PulsarIO, dead_letter_topic


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


class RetainingPulsarIO(PulsarIO):
    """``PulsarIO`` whose dead-letter producers come after the retaining subscription."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        self._retained: dict[str, pulsar.Producer] = {}
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def dead_letter(self, input_topic: str) -> pulsar.Producer:
        """The producer for ``input_topic``'s dead-letter topic, unbatched."""
        topic = dead_letter_topic(self.options, self.spec.function, input_topic)
        producer = self._retained.get(topic)
        if producer is None:
            ensure_dead_letter_subscription(self.client, topic)
            producer = self.client.create_producer(topic, batching_enabled=False)
            self._retained[topic] = producer
        return producer

    def producers(self) -> list[pulsar.Producer]:
        """Every producer opened so far (flush and close go through this)."""
        return super().producers() + list(self._retained.values())
