"""The sweep's workers: the queue a sweep hands its flags to when they would not fit its own deadline.

The sweep judges the whole fleet in its own function; only the writing is fanned out. Lambda's SQS
event source mapping is the engine: it runs at most `workers` workers at once (`-c sweepWorkers`) (its maximum
concurrency, and the workers' reserved concurrency, so they are neither throttled nor crowded out
by the heartbeat handler), retries a message a worker did not finish after the visibility timeout,
and moves one that fails MAX_RECEIVES times to the sweeper's dead-letter queue (alarmed). Work left
there is not lost: its runners are still active and stale, and the next sweep sends them again.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

# Workers at once. One drives about 600 flags a second with their events (make bench); eight flag a
# million runners in about four minutes, and ten million in about half an hour, while their writes
# (two a flag) and a 10M fleet's heartbeats stay within twice that fleet's usual peak, which an
# on-demand table serves at once (docs/performance.md, "Sweeper scale").
WORKERS = 8  # the default of -c sweepWorkers
WORKER_TIMEOUT = Duration.seconds(60)  # a message is a thousand runners at most: a few seconds of writes
MAX_RECEIVES = 3


class SweepWorkers(Construct):
    """The work queue, fed by the sweeper and drained by the worker function through an event source mapping."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        worker: lambda_.Function,
        dead_letters: sqs.IQueue,
        workers: int = WORKERS,
    ) -> None:
        super().__init__(scope, construct_id)
        self.queue = sqs.Queue(
            self,
            "Queue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            # AWS's advice for a Lambda-fed queue: six times the function's timeout, so a retried batch
            # never becomes visible while a worker still has it.
            visibility_timeout=Duration.seconds(6 * WORKER_TIMEOUT.to_seconds()),
            # Work older than this is out of date: its runners, still stale, are sent again by a later sweep.
            retention_period=Duration.hours(1),
            dead_letter_queue=sqs.DeadLetterQueue(queue=dead_letters, max_receive_count=MAX_RECEIVES),
        )
        worker.add_event_source(
            sources.SqsEventSource(self.queue, batch_size=1, max_concurrency=workers, report_batch_item_failures=True)
        )
