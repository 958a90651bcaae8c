"""``/metrics``: the latest snapshot in the Prometheus text exposition format, through
``prometheus_client`` with a registry of its own (never the process-wide default one).

Families are built at each scrape from one snapshot (a custom collector), so a scrape never
mixes two runs and a check that left the selection leaves the metrics too. ``mgn_check_status``
has one series per status a check can have, 1 for the current one and 0 for the others (as
kube-state-metrics does), so alerts can say ``mgn_check_status{status="fail"} == 1``. Labels
carry the report's ids, which are redacted: a secret in a parametrized id never reaches them.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .._model import Status
from .state import ServeState

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self, state: ServeState) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_SnapshotCollector(state))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _SnapshotCollector(Collector):
    def __init__(self, state: ServeState) -> None:
        self._state = state

    def collect(self) -> Iterator[Metric]:
        snapshot, running_since = self._state.view()
        yield CounterMetricFamily("mgn_runs", "Runs of the selection completed since mgn verify serve started.",
                                  value=snapshot.runs if snapshot is not None else 0)
        yield GaugeMetricFamily("mgn_run_in_progress", "1 while a run of the selection is going.",
                                value=1 if running_since is not None else 0)
        if snapshot is None:
            return
        report = snapshot.report
        yield GaugeMetricFamily("mgn_last_run_timestamp_seconds", "Unix time at which the latest run finished.",
                                value=snapshot.finished_at)
        yield GaugeMetricFamily("mgn_run_duration_seconds", "Seconds the latest run took.", value=report.duration_s)
        yield GaugeMetricFamily("mgn_run_exit_code", "Exit code of the latest run, as mgn verify would exit.",
                                value=int(report.exit_code))
        yield GaugeMetricFamily("mgn_healthy", "1 when nothing failed or errored in the latest run (/healthz 200).",
                                value=1 if snapshot.healthy else 0)
        status = GaugeMetricFamily("mgn_check_status", "Status of each check in the latest run: 1 for the current "
                                   "status, 0 for the others.", labels=["check", "layer", "status"])
        duration = GaugeMetricFamily("mgn_check_duration_seconds", "Seconds each check took in the latest run.",
                                     labels=["check", "layer"])
        for check, result in zip(_unique_ids([r.id for r in report.results]), report.results, strict=True):
            for each in Status:
                status.add_metric([check, result.layer, str(each)], 1 if result.status is each else 0)
            duration.add_metric([check, result.layer], result.duration_s)
        yield status
        yield duration


def _unique_ids(ids: list[str]) -> list[str]:
    """Redaction can make two ids equal (``p.login[***]`` twice); a scrape with a duplicate
    series is rejected whole, so a repeated id gets ``#2``, ``#3``... as in report order."""
    seen: dict[str, int] = {}
    unique = []
    for cid in ids:
        seen[cid] = seen.get(cid, 0) + 1
        unique.append(cid if seen[cid] == 1 else f"{cid}#{seen[cid]}")
    return unique
