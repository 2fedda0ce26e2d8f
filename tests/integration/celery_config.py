"""Celery settings for the test workers (``[celery] celery_config_options`` points here).

Airflow's defaults with prefetching switched off: a worker takes a task only when its one process
is free, so tasks queued together are shared between idle workers instead of being reserved by
the first worker to ask (on the Redis transport, that worker reserved several at once).
"""

from __future__ import annotations

from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG

CELERY_CONFIG = {**DEFAULT_CELERY_CONFIG, "worker_disable_prefetch": True}
