from datetime import UTC, datetime, timedelta

from sftriggerd.lag_history import LagHistory
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


def test_only_the_leader_of_a_trigger_reports_its_gauges() -> None:
    metrics = Metrics()
    status = TriggerStatus(name="s", mode="streaming", mode_reason="x", connected=True)
    status.caught_up_to = datetime.now(UTC) - timedelta(hours=2)
    led = {"s"}
    reporter = StatusReporter([status], metrics, leads=lambda trigger: trigger in led)
    reporter.report()
    sample = metrics.registry.get_sample_value
    assert sample("sftriggerd_stream_connected", {"trigger": "s"}) == 1
    # Another replica took the trigger over: what this one last knew of it is not reported
    # (a lag that only grows here would fire the alert; "connected" would hide a real drop).
    led.clear()
    reporter.report()
    assert sample("sftriggerd_stream_connected", {"trigger": "s"}) is None
    assert sample("sftriggerd_checkpoint_lag_seconds", {"trigger": "s"}) is None
    reporter.report()  # nothing left to forget: no error


def test_the_reported_lag_goes_into_the_history_only_where_led() -> None:
    metrics = Metrics()
    status = TriggerStatus(name="s", mode="polling", mode_reason="x")
    status.caught_up_to = datetime.now(UTC) - timedelta(seconds=42)
    led = {"s"}
    history = LagHistory()
    reporter = StatusReporter([status], metrics, leads=lambda t: t in led, history=history)
    reporter.report()
    gauge = metrics.registry.get_sample_value("sftriggerd_checkpoint_lag_seconds", {"trigger": "s"})
    kept = list(history.kept("s").values())
    # The chart's value is the gauge's value: one definition of lag.
    assert gauge is not None and kept == [gauge]
    led.clear()
    reporter.report()
    assert history.kept("s") == {} and history.last_hour("s").highest is None
