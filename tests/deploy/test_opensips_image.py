"""deploy/opensips/Dockerfile: the OpenSIPS repository is trusted through its own keyring only,
and the image has what the compose file and opensips.cfg use from it."""

from __future__ import annotations

import re

from .deployfiles import DEPLOY, OPENSIPS_CFG, compose

DOCKERFILE = (DEPLOY / "opensips" / "Dockerfile").read_text()
CODE = "\n".join(line for line in DOCKERFILE.splitlines() if not line.lstrip().startswith("#"))


def test_every_apt_source_names_its_keyring():
    keyring = re.search(r"curl -fsSL (https://apt\.opensips\.org/\S+\.gpg) -o (/usr/share/keyrings/\S+\.gpg)", CODE)
    assert keyring, "the repository key is fetched into a keyring of its own"
    sources = re.findall(r'echo "(deb [^"]*)"', CODE)
    assert len(sources) == 2, sources
    for line in sources:
        assert line.startswith(f"deb [signed-by={keyring.group(2)}] https://apt.opensips.org bookworm "), line
    assert "apt-key" not in CODE and "trusted.gpg" not in CODE
    assert re.search(r"^FROM debian:bookworm", CODE, re.M)  # the suite the sources name


def test_image_has_what_the_stack_uses():
    for pkg in ("opensips-cgrates-module", "opensips-postgres-module", "opensips-http-modules",
                "opensips-postgres-dbschema", "opensips-cli", "postgresql-client", "sip-tester"):
        assert re.search(rf"\s{pkg}\s", CODE), pkg
    # the module folder of the Debian packages is the one opensips.cfg loads from
    assert 'mpath="/usr/lib/x86_64-linux-gnu/opensips/modules/"' in OPENSIPS_CFG.read_text()
    assert 'ENTRYPOINT ["/usr/sbin/opensips", "-F"]' in CODE
    services = compose()["services"]
    assert services["pstn-gw"]["entrypoint"][0] == "sipp"
    assert "psql" in services["opensips-db"]["command"][0]
