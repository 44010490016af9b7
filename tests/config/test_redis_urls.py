"""REDIS_URL's sentinel form: parsed into sentinels, service, db, credentials and TLS; malformed ones refused."""

from __future__ import annotations

import pytest

from config import Settings, SettingsError
from config.redis_urls import parse_sentinel_url


def test_sentinel_url_names_sentinels_service_db_and_password() -> None:
    parsed = parse_sentinel_url("redis+sentinel://:s3cret@10.0.0.1:26379,10.0.0.2:26380,sentinel-3/mymaster/2")

    assert parsed.sentinels == (("10.0.0.1", 26379), ("10.0.0.2", 26380), ("sentinel-3", 26379))
    assert (parsed.service_name, parsed.db, parsed.password, parsed.tls) == ("mymaster", 2, "s3cret", False)
    assert parsed.master_kwargs() == {"db": 2, "password": "s3cret"}
    assert parsed.sentinel_kwargs() == {}
    assert "s3cret" not in repr(parsed)


def test_tls_sentinel_url_passes_ca_file_and_sentinel_password() -> None:
    parsed = parse_sentinel_url(
        "rediss+sentinel://h1:26379/cache?ssl_ca_certs=/etc/ssl/redis-ca.pem&sentinel_password=other")

    assert (parsed.db, parsed.tls) == (0, True)
    assert parsed.master_kwargs() == {"db": 0, "ssl": True, "ssl_ca_certs": "/etc/ssl/redis-ca.pem"}
    assert parsed.sentinel_kwargs() == {"ssl": True, "ssl_ca_certs": "/etc/ssl/redis-ca.pem", "password": "other"}


@pytest.mark.parametrize(("url", "words"), [
    ("redis+sentinel://h1:26379", "must name the master's service name"),
    ("redis+sentinel://h1:26379/mymaster/zero", "db must be a number, got 'zero'"),
    ("redis+sentinel://h1:port/mymaster", "sentinel 'h1:port' needs a port number"),
    ("redis+sentinel:///mymaster", "names no sentinel host:port"),
    ("redis+sentinel://h1/mymaster?sockettimeout=1", "unknown options sockettimeout"),
])
def test_malformed_sentinel_urls_are_refused_at_start_with_the_form(url: str, words: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"REDIS_URL": url})

    (problem,) = info.value.problems
    assert problem.startswith("REDIS_URL ") and words in problem


def test_settings_accept_the_sentinel_form() -> None:
    url = "redis+sentinel://:pw@127.0.0.1:26379,127.0.0.1:26380/mymaster/0"

    assert Settings.from_env({"REDIS_URL": url}).redis_url == url
