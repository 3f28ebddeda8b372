from datetime import UTC, datetime, timedelta

from sftriggerd.metrics import Metrics
from sftriggerd.sources.reporter import StatusReporter
from sftriggerd.sources.status import TriggerStatus


def test_gauges_follow_the_statuses() -> None:
    metrics = Metrics()
    streaming = TriggerStatus(name="s", mode="streaming", mode_reason="x", connected=True)
    streaming.caught_up_to = datetime.now(UTC) - timedelta(seconds=30)
    polling = TriggerStatus(name="p", mode="polling", mode_reason="x")
    reporter = StatusReporter([streaming, polling], metrics)
    reporter.report()
    sample = metrics.registry.get_sample_value
    assert sample("sftriggerd_stream_connected", {"trigger": "s"}) == 1
    lag = sample("sftriggerd_checkpoint_lag_seconds", {"trigger": "s"})
    assert lag is not None and 29 < lag < 40
    assert sample("sftriggerd_checkpoint_lag_seconds", {"trigger": "p"}) is None
    streaming.connected = False
    reporter.report()
    assert sample("sftriggerd_stream_connected", {"trigger": "s"}) == 0
