"""Metrics and traces where operators already look: Prometheus, OpenTelemetry (spans and metrics).

    instruments.py   the metrics' table: names, kinds, units, attributes (Prometheus' names derived)
    metrics.py       Metrics: the in-process counters, a prometheus_client Collector; METRICS_PORT's server
    otel_metrics.py  the same instruments through an OpenTelemetry meter
    spans.py         the request's span and one span per provider call (the GenAI conventions)
    observer.py      Telemetry: what the request's owner calls; fans out to the above

Nothing here is imported unless a setting turns it on (METRICS_PORT, PROMETHEUS_METRICS), or the application has
imported OpenTelemetry itself (OPENTELEMETRY=auto): `telemetry_from` is the one place that decides.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from app.telemetry.metrics import Metrics, process_metrics
from app.telemetry.observer import RequestTrace, Telemetry, ending_of

if TYPE_CHECKING:
    from app.config import Settings

__all__ = ["Metrics", "RequestTrace", "Telemetry", "ending_of", "telemetry_from"]


def telemetry_from(settings: Settings) -> Telemetry | None:
    """The telemetry the settings ask for, or None when nothing is on: the process's Prometheus metrics
    (PROMETHEUS_METRICS, METRICS_PORT) and, with OPENTELEMETRY=auto, the application's own tracer and meter
    providers when it has set them."""
    metrics = None
    if settings.metrics_port or settings.prometheus_metrics:
        metrics = process_metrics(port=settings.metrics_port, host=settings.metrics_host)
    tracer_provider: Any = None
    meter_provider: Any = None
    if settings.opentelemetry == "auto" and "opentelemetry" in sys.modules:
        tracer_provider, meter_provider = _configured_providers()
    if metrics is None and tracer_provider is None and meter_provider is None:
        return None
    return Telemetry(metrics=metrics, tracer_provider=tracer_provider, meter_provider=meter_provider)


def _configured_providers() -> tuple[Any, Any]:
    """The tracer and meter providers the application set, each None while it is OpenTelemetry's placeholder (a
    proxy that would make every span a no-op at a cost per call)."""
    try:
        from opentelemetry import metrics, trace
    except ImportError:  # a namespace package without the API
        return None, None
    tracer_provider: Any = trace.get_tracer_provider()
    if isinstance(tracer_provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
        tracer_provider = None
    meter_provider: Any = metrics.get_meter_provider()
    if type(meter_provider).__name__ in ("_ProxyMeterProvider", "NoOpMeterProvider"):
        meter_provider = None
    return tracer_provider, meter_provider
