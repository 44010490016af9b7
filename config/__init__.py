"""Settings and logging: imported by every package, importing nothing of ours."""

from config.settings import PROFILES, ClientConfig, Settings, SettingsError

__all__ = ["PROFILES", "ClientConfig", "Settings", "SettingsError"]
