"""Prometheus metrics: what operators watch to know the bot is healthy and what it costs.

Each `Metrics` owns its registry (no process-global state), so tests and several services in one
process never see each other's numbers. Queue depth is read from the queue when scraped, not
tracked by hand, so it is right even when other processes share the queue.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from bot.queue.models import QueueStats
from core.analysis_types import Feature

STAGES = ("download", "prepare", "recognize", "annotate", "reply")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    """The counters, gauges and histograms PhotoDetective exports on /metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.received = Counter(
            "photodetective_photos_received",
            "Photos submitted by users",
            ["platform"],
            registry=self.registry,
        )
        self.accepted = Counter(
            "photodetective_photos_accepted",
            "Photos accepted into the queue",
            ["platform"],
            registry=self.registry,
        )
        self.refused = Counter(
            "photodetective_photos_refused",
            "Photos refused at submission (quota, rate, size, access, store outage)",
            ["reason"],
            registry=self.registry,
        )
        self.analysed = Counter(
            "photodetective_photos_analysed",
            "Photos answered with an analysis",
            ["platform"],
            registry=self.registry,
        )
        self.failed = Counter(
            "photodetective_photos_failed",
            "Photos answered with a failure",
            ["reason"],
            registry=self.registry,
        )
        self.recognizer_calls = Counter(
            "photodetective_recognizer_calls",
            "Recognizer features run (one billed unit each on Rekognition)",
            ["backend", "feature"],
            registry=self.registry,
        )
        self.delivery_retries = Counter(
            "photodetective_delivery_retries",
            "Answers put back in the queue because their platform failed for a transient reason",
            ["platform"],
            registry=self.registry,
        )
        self.undelivered = Counter(
            "photodetective_answers_undelivered",
            "Jobs dead-lettered because their answer could not be delivered "
            "(reason: horizon = the platform stayed down past the delivery horizon; refused = "
            "refused for good, e.g. the bot was blocked)",
            ["platform", "reason"],
            registry=self.registry,
        )
        self.stage_seconds = Histogram(
            "photodetective_stage_seconds",
            "Time spent per stage of a job",
            ["stage"],
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "photodetective_queue_depth", "Jobs waiting in the queue", registry=self.registry
        )
        self.queue_in_flight = Gauge(
            "photodetective_queue_in_flight", "Jobs being worked on", registry=self.registry
        )
        self.queue_dead = Gauge("photodetective_queue_dead", "Dead-lettered jobs", registry=self.registry)
        self.queue_delivering = Gauge(
            "photodetective_queue_delivering",
            "Jobs whose finished answer waits in the queue for its platform to come back",
            registry=self.registry,
        )
        self.oldest_job_age = Gauge(
            "photodetective_queue_oldest_age_seconds", "Age of the oldest waiting job", registry=self.registry
        )

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time one stage of a job (download, prepare, recognize, annotate, reply)."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.stage_seconds.labels(stage=name).observe(time.perf_counter() - started)

    def count_recognition(self, backend: str, features: frozenset[Feature]) -> None:
        for feature in features:
            self.recognizer_calls.labels(backend=backend, feature=feature.value).inc()

    def set_queue(self, stats: QueueStats) -> None:
        """Copy a queue snapshot into the gauges, just before they are scraped."""
        self.queue_depth.set(stats.queued)
        self.queue_in_flight.set(stats.in_flight)
        self.queue_dead.set(stats.dead)
        self.queue_delivering.set(stats.delivering)
        self.oldest_job_age.set(stats.oldest_queued_age_s or 0.0)

    def render(self) -> bytes:
        """The Prometheus text exposition of everything in this registry."""
        return generate_latest(self.registry)
