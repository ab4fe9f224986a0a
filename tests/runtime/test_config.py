"""Configuration: defaults, file, environment, and one clear line for every mistake."""

from __future__ import annotations

import pytest

from cgrpy.config import ConfigError, load_settings


def test_defaults_match_design_ports():
    s = load_settings(env={})
    assert s.addr("attributes") == "127.0.0.1:20051"
    assert s.addr("sm") == "127.0.0.1:20058"
    assert s.metrics_port("rals") == 9153
    assert s.debit_interval == 10_000_000_000
    assert s.rounding_decimals == 5
    assert s.attributes_string_indexed_fields is None  # unset = index all fields
    assert s.attributes_prefix_indexed_fields == []


def test_env_overrides_file(tmp_path):
    cfg = tmp_path / "cgrpy.toml"
    cfg.write_text('debit_interval = "5s"\nrounding_decimals = 4\n')
    s = load_settings(env={"CGRPY_CONFIG": str(cfg), "CGRPY_ROUNDING_DECIMALS": "6"})
    assert s.debit_interval == 5_000_000_000
    assert s.rounding_decimals == 6
    assert s.sources["debit_interval"] == "file" and s.sources["rounding_decimals"] == "env"


def test_json_list_settings():
    s = load_settings(env={"CGRPY_ATTRIBUTES_PREFIX_INDEXED_FIELDS": '["*req.Destination"]',
                           "CGRPY_STATS_STRING_INDEXED_FIELDS": "[]"})
    assert s.attributes_prefix_indexed_fields == ["*req.Destination"]
    assert s.stats_string_indexed_fields == []


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CGRPY_DEBIT_INTERVALL": "10s"}, "environment CGRPY_DEBIT_INTERVALL: unknown setting"),
        ({"CGRPY_DEBIT_INTERVAL": "ten seconds"}, "config debit_interval: not a duration"),
        ({"CGRPY_RALS_GRPC_PORT": "fifty"}, "config rals_grpc_port:"),
        ({"CGRPY_ATTRIBUTES_PREFIX_INDEXED_FIELDS": "*req.Destination"}, "config attributes_prefix_indexed_fields:"),
        ({"CGRPY_SM_BACKEND_FAILURE_POLICY": "maybe"}, "config sm_backend_failure_policy: must be deny or allow"),
        ({"CGRPY_CONFIG": "/nonexistent/cgrpy.toml"}, "config file /nonexistent/cgrpy.toml: not found"),
    ],
)
def test_bad_configuration_is_one_clear_line(env, message):
    with pytest.raises(ConfigError) as err:
        load_settings(env=env)
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


def test_unknown_key_in_file(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("debit_intervall = '10s'\n")
    with pytest.raises(ConfigError, match="unknown key 'debit_intervall'"):
        load_settings(env={"CGRPY_CONFIG": str(cfg)})
