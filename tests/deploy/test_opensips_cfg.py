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


def test_every_sm_replica_is_an_engine_for_failover():
    """Several cgrates_engine entries, in order: the module uses the first that answers and fails
    over to the next (each a compose SM replica listening where the entry says)."""
    engines = re.findall(r'^\s*modparam\("cgrates",\s*"cgrates_engine",\s*"([^"]+)"\)', CODE, re.M)
    assert engines == ["sm:2014", "sm-2:2014"]
    for engine in engines:
        host, port = engine.split(":")
        assert env_of(STACK[host])["CGRPY_OPENSIPS_LISTEN"] == f"0.0.0.0:{port}"
        assert env_of(STACK[host])["CGRPY_STORDB_URL"] == env_of(STACK["sm"])["CGRPY_STORDB_URL"]
        assert STACK[host]["healthcheck"]["test"][:4] == ["CMD", "cgr", "health", "--service"]
    assert 0 < int(modparam("cgrates", "retry_timeout")) <= 60  # a restarted replica is used again


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
    assert "ProcessStatQueues" not in CODE  # ignored by v0.10
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
    assert env_of(STACK["opensips-db"])["OPENSIPS_DB_NAME"] == db
    assert 'database create "$OPENSIPS_DB_NAME"' in " ".join(STACK["opensips-db"]["command"])
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


# Core pseudo-variables of OpenSIPS 3.x (core variables reference) and those of the modules the
# script loads. Anything else is a typo or a variable OpenSIPS dropped, which stops the parse.
CORE_VARS = {
    "avp", "var", "ci", "cl", "cs", "ct", "cT", "dd", "di", "dp", "dP", "ds", "du", "err.class",
    "err.level", "err.info", "err.rcode", "err.rreason", "fd", "fn", "fu", "fU", "ft", "hdr",
    "mb", "mf", "mi", "ml", "od", "op", "oP", "ou", "oU", "pd", "pn", "pp", "pU", "pu", "rb",
    "rc", "rd", "re", "retcode", "rm", "rp", "rP", "rr", "rs", "rt", "ru", "rU", "ru_q", "si",
    "sp", "src_ip", "socket_in", "socket_out", "td", "tn", "to", "tt", "tu", "tU", "time", "Ts",
    "Tf", "TS", "Tsm", "ua", "branch", "route", "log_level", "msg.flag", "bf", "cfg_line",
    "cfg_file", "DLG_status", "DLG_lifetime", "DLG_dir", "DLG_flags", "DLG_timeout", "DLG_end_reason",
}
MODULE_VARS = {"cgr", "cgr_opt", "cgr_ret", "cgr_ctx"}  # cgrates
# core variables OpenSIPS 3.3 removed, with their replacement
REMOVED_VARS = {"Ri": "$socket_in(ip)", "Rp": "$socket_in(port)", "RAi": "$socket_in(advertised_ip)",
                "RAp": "$socket_in(advertised_port)", "af": "$socket_in(af)", "pr": "$socket_in(proto)",
                "proto": "$socket_in(proto)"}


def _vars(code: str) -> set[str]:
    return set(re.findall(r"\$\(?([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_]+)*)", code))


def test_every_variable_exists_in_opensips_3():
    used = _vars(CODE)
    removed = {v: REMOVED_VARS[v] for v in used if v in REMOVED_VARS}
    assert not removed, f"variables removed in OpenSIPS 3.3: {removed}"
    assert used <= CORE_VARS | MODULE_VARS, f"unknown variables {sorted(used - CORE_VARS - MODULE_VARS)}"


def test_variable_check_rejects_what_opensips_3_rejects():
    assert "Ri" in _vars("$cgr(OriginHost) = $Ri;")
    assert not set(_vars("$cgr(OriginHost) = $Ri;")) <= CORE_VARS | MODULE_VARS
    assert _vars('xlog("$(var(rest){s.len}) $socket_in(ip)")') == {"var", "socket_in"}


# registrar's named flags (OpenSIPS 3.x): the 2.x single letters ("m", "b", ...) stop the start-up
LOOKUP_FLAGS = {"no-branches", "to-branches-only", "branch", "method-filtering", "case-insensitive",
                "global", "ua-filtering", "max-ping-latency"}
SAVE_FLAGS = {"memory-only", "no-reply", "max-contacts", "force-registration", "matching-mode",
              "path-off", "path-lazy", "path-strict", "path-received", "min-expires", "max-expires"}


def _registrar_flags(code: str, func: str) -> list[str]:
    return re.findall(rf'\b{func}\("[^"]*",\s*"([^"]*)"', code)


def test_registrar_takes_named_flags():
    for func, allowed in (("lookup", LOOKUP_FLAGS), ("save", SAVE_FLAGS)):
        for flags in _registrar_flags(CODE, func):
            names = {f.split("=", 1)[0].strip() for f in flags.split(",")}
            assert names <= allowed, f'{func}(..., "{flags}"): not named flags of OpenSIPS 3.x'
    assert _registrar_flags(CODE, "lookup"), "the script looks registered users up"
    assert _registrar_flags('lookup("location", "m")', "lookup") == ["m"]


def test_module_folder_is_set():
    # without mpath a packaged OpenSIPS hands "signaling.so" to dlopen as a bare name and fails
    m = re.search(r'^mpath="(/[^"]+/)"$', CODE, re.M)
    assert m, "mpath missing"
    assert CODE.index("mpath=") < CODE.index("loadmodule")


def test_registrations_kept_in_the_stack_database():
    assert modparam("usrloc", "working_mode_preset") == "single-instance-sql-write-back"
    assert modparam("usrloc", "db_url") == modparam("drouting", "db_url")
    assert CODE.index('loadmodule "db_postgres.so"') < CODE.index('loadmodule "usrloc.so"')
    create = " ".join(STACK["opensips-db"]["command"])
    assert "database_modules=drouting usrloc" in create and "'location'" in create
