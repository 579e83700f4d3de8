"""HTTPS by default (issue 16) with the unchanged ``openstack`` CLI and openstacksdk: the openrc
files and clouds.yaml that ``neutrino up`` writes carry the CA, so verification is on and
needs no flag; without the CA the same calls fail verification."""

from __future__ import annotations

import json

import openstack
import pytest
from keystoneauth1 import exceptions as ks_exceptions

pytestmark = pytest.mark.compat


def test_openstack_cli_verifies_the_server_with_the_openrc_ca(cloud) -> None:
    assert cloud.admin["OS_AUTH_URL"].startswith("https://")
    assert cloud.admin["OS_CACERT"] == str(cloud.state_dir / "pki" / "ca.pem")
    cloud.osc("demo", "network", "create", "tls-net")
    names = [n["Name"] for n in json.loads(cloud.osc("demo", "network", "list", "-f", "json").stdout)]
    assert "tls-net" in names
    catalog = json.loads(cloud.osc("admin", "catalog", "list", "-f", "json").stdout)
    urls = [ep["url"] for entry in catalog for ep in entry["Endpoints"]]
    assert urls and all(u.startswith("https://") for u in urls), catalog


def test_openstack_cli_without_the_ca_fails_verification(cloud) -> None:
    no_ca = {k: v for k, v in cloud.demo.items() if k != "OS_CACERT"}
    demo, cloud.demo = cloud.demo, no_ca
    try:
        proc = cloud.osc("demo", "network", "list", ok=False)
    finally:
        cloud.demo = demo
    assert proc.returncode != 0
    assert "CERTIFICATE_VERIFY_FAILED" in proc.stderr or "SSL" in proc.stderr, proc.stderr


def _sdk(cloud, cacert: str | None) -> openstack.connection.Connection:
    return openstack.connect(
        auth_url=cloud.demo["OS_AUTH_URL"],
        cacert=cacert,
        username="demo",
        password=cloud.demo["OS_PASSWORD"],
        project_name="demo",
        user_domain_name="Default",
        project_domain_name="Default",
        region_name="RegionOne",
    )


def test_openstacksdk_with_and_without_the_ca(cloud) -> None:
    conn = _sdk(cloud, cloud.demo["OS_CACERT"])
    net = conn.network.create_network(name="tls-sdk-net")
    assert conn.network.get_network(net.id).name == "tls-sdk-net"
    conn.network.delete_network(net.id)
    with pytest.raises((ks_exceptions.SSLError, openstack.exceptions.SDKException)) as err:
        list(_sdk(cloud, None).network.networks())
    assert "CERTIFICATE_VERIFY_FAILED" in str(err.value) or "SSL" in str(err.value), err.value


def test_clouds_yaml_names_the_ca(cloud) -> None:
    clouds = json.loads((cloud.state_dir / "clouds.yaml").read_text())["clouds"]
    assert {c["cacert"] for c in clouds.values()} == {cloud.admin["OS_CACERT"]}
    assert all(c["auth"]["auth_url"].startswith("https://") for c in clouds.values())
