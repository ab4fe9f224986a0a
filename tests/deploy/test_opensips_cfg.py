"""deploy/opensips/opensips.cfg: loads cgrates pointed at SM, DRouting on the OpenSIPS DB,
MI where SM expects it, and a script whose route references all resolve."""

from __future__ import annotations

import re

from cgrpy.config import KEYS

from .deployfiles import OPENSIPS_CFG, compose, env_of

CFG = OPENSIPS_CFG.read_text()
CODE = "\n".join(line.split("#", 1)[0] if not line.lstrip().startswith("#") else "" for line in CFG.splitlines())
STACK = compose()["services"]


def modparam(module: str, name: str) -> str:
    m = re.search(rf'^\s*modparam\("{module}",\s*"{name}",\s*"?(.*?)"?\)\s*$', CODE, re.M)
    assert m, f"modparam {module}.{name} missing"
    return m.group(1)


def test_loads_cgrates_module_pointed_at_sm():
    assert 'loadmodule "cgrates.so"' in CODE
    host, port = modparam("cgrates", "cgrates_engine").split(":")
    assert host == "sm" and "sm" in STACK
    sm_listen = env_of(STACK["sm"])["CGRPY_OPENSIPS_LISTEN"]
    assert sm_listen.endswith(f":{port}")
    assert port == KEYS["opensips_listen"].default.rsplit(":", 1)[1] == "2014"


def test_mi_http_where_sm_sends_disconnects():
    assert 'loadmodule "mi_http.so"' in CODE and 'loadmodule "httpd.so"' in CODE
    port = modparam("httpd", "port")
    assert env_of(STACK["sm"])["CGRPY_OPENSIPS_MI_URL"] == f"http://opensips:{port}/mi"


def test_tutorial_script_logic():
    assert re.search(r'async\(cgrates_auth\("\$fU", "\$rU"\), cgrates_auth_reply\)', CODE)
    assert CODE.count('cgrates_acc("cdr|missed", "$fU", "$rU")') >= 1
    assert "$cgr_ret(SuppliersDigest)" in CODE
    assert re.search(r"if \(\$rc < 0\)", CODE)  # every refusal blocks the call
    for flag in ("GetMaxUsage", "GetAttributes", "GetSuppliers", "ProcessThresholds", "ProcessStats"):
        assert f"$cgr_opt({flag}) = 1;" in CODE
    assert "ProcessStatQueues" not in CODE  # ignored by v0.10 (opensips-protocol §A.10)
    assert 'create_dialog("B")' in CODE
    assert re.search(r"\$cgr\(Supplier\) = \$avp\(dr_carrier\)", CODE)
    assert modparam("drouting", "carrier_id_avp") == "$avp(dr_carrier)"


def test_drouting_reads_the_database_the_stack_creates():
    url = modparam("drouting", "db_url")
    m = re.fullmatch(r"postgres://(\w+):(\w+)@(\w+)/(\w+)", url)
    assert m, url
    user, password, host, db = m.groups()
    assert host == "postgres" and host in STACK
    pg_env = env_of(STACK["postgres"])
    assert (user, password) == (pg_env["POSTGRES_USER"], pg_env["POSTGRES_PASSWORD"])
    assert f"database create {db}" in " ".join(STACK["opensips-db"]["command"])
    assert f"@postgres:5432/{db}" in " ".join(STACK["drouting-sync"]["command"])
    for table in ("dr_gateways", "dr_carriers", "dr_rules"):
        assert f'"{table}"' in CODE


def test_braces_balance_and_route_references_resolve():
    assert CODE.count("{") == CODE.count("}")
    defined = set(re.findall(r"^(?:route|branch_route|failure_route|onreply_route)\[(\w+)\]", CODE, re.M))
    used = set(re.findall(r"\broute\((\w+)\)", CODE))
    used |= set(re.findall(r't_on_(?:failure|branch|reply)\("(\w+)"\)', CODE))
    used |= set(re.findall(r"async\([^;]*,\s*(\w+)\)", CODE))
    assert used <= defined, f"undefined routes {used - defined}"
    assert defined - used == set(), f"unused routes {defined - used}"
