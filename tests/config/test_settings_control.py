"""Settings of job control: watch interval, SSE stream length, alert thresholds."""

from __future__ import annotations

import pytest

from config import Settings, SettingsError


def test_settings_control_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.job_watch_interval == 0.5 and settings.events_max_seconds == 3600
    assert (settings.alert_queue_length, settings.alert_failure_rate, settings.alert_avg_processing_seconds) == (
        100, 0.05, 300.0)


def test_settings_control_values_are_parsed_and_checked() -> None:
    settings = Settings.from_env({"JOB_WATCH_INTERVAL": "0.2", "EVENTS_MAX_SECONDS": "60", "SYNC_TIMEOUT": "5"})
    assert (settings.job_watch_interval, settings.events_max_seconds, settings.sync_timeout) == (0.2, 60, 5)
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"JOB_WATCH_INTERVAL": "0", "EVENTS_MAX_SECONDS": "soon", "ALERT_FAILURE_RATE": "5"})
    assert len(info.value.problems) == 3
