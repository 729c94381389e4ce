"""Community group orders (社区集单): progress per (session, community), threshold, cutoff, delivery promise;
fulfilment batches, pick lists and pickup codes."""

from __future__ import annotations

from linli.core.runtime import Runtime


def register_background(runtime: Runtime) -> None:
    """The consumer that counts paid units into group orders, and the durable cutoff timer. (Importing
    the tasks registers the delivery-fee payment purpose too: refund jobs settle fee refunds.)"""
    from linli.groupbuy.tasks import CONSUMER, CUTOFF_JOB, count_consumer, cutoff_job

    if CONSUMER not in runtime.consumers.consumers:
        runtime.consumers.add(count_consumer())
    if CUTOFF_JOB not in runtime.jobs.handlers:
        runtime.jobs.add(CUTOFF_JOB, cutoff_job)
