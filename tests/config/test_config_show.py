"""`cgr config show`: every key with its effective value and its source; bad config exits 2."""

from __future__ import annotations

import json

from cgrpy.cli.main import main
from cgrpy.config import KEYS


def test_config_show_sources(tmp_path, monkeypatch, capsys):
    for var in [v for v in __import__("os").environ if v.startswith("CGRPY_")]:
        monkeypatch.delenv(var)
    cfg = tmp_path / "cgrpy.toml"
    cfg.write_text('rounding_decimals = 6\nattributes_prefix_indexed_fields = ["Destination"]\n')
    monkeypatch.setenv("CGRPY_CONFIG", str(cfg))
    monkeypatch.setenv("CGRPY_DEBIT_INTERVAL", "0s")
    assert main(["config", "show", "--json"]) == 0
    rows = {r["key"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == set(KEYS)
    assert rows["rounding_decimals"] | {} == {"key": "rounding_decimals", "env": "CGRPY_ROUNDING_DECIMALS",
                                               "value": "6", "source": "file",
                                               "cgrates": "general.rounding_decimals"}
    assert (rows["debit_interval"]["value"], rows["debit_interval"]["source"]) == ("0s", "env")
    assert rows["attributes_prefix_indexed_fields"]["value"] == '["Destination"]'
    assert (rows["attributes_string_indexed_fields"]["value"], rows["tpid"]["source"]) == ("null", "default")

    assert main(["config", "show", "--changed"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    assert lines[0].split() == ["rounding_decimals", "6", "file", "(general.rounding_decimals)"]


def test_config_show_bad_value(monkeypatch, capsys):
    monkeypatch.setenv("CGRPY_ROUNDING_DECIMALS", "five")
    assert main(["config", "show"]) == 2
    assert capsys.readouterr().err.strip() == "cgr config: config rounding_decimals: invalid literal for int() with base 10: 'five' (got 'five')"
