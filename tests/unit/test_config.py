"""The configuration schema: parsing, validation, and the reference doc staying current."""

from pathlib import Path

import pytest

from neutrino import config

ROOT = Path(__file__).resolve().parents[2]


def test_reference_doc_is_current():
    assert (ROOT / "docs" / "configuration.md").read_text() == config.reference_markdown()


def test_rendered_default_file_loads_back(tmp_path):
    path = tmp_path / "neutrino.conf"
    path.write_text(config.render_ini(config.ALL_IN_ONE))
    cfg = config.load(path)
    assert cfg.ml2.tenant_network_types == ("vxlan",)
    assert cfg.ml2_type_vlan.network_vlan_ranges == ("physnet:100:200",)
    assert cfg.default.global_physnet_mtu == 1500
    assert cfg.database_url == f"sqlite:///{tmp_path / 'neutrino.db'}"


def test_unknown_option_is_refused(tmp_path):
    path = tmp_path / "neutrino.conf"
    path.write_text("[ml2]\nno_such_option = 1\n")
    with pytest.raises(config.ConfigError, match="unknown option"):
        config.load(path)


def test_bad_value_is_refused(tmp_path):
    path = tmp_path / "neutrino.conf"
    path.write_text("[DEFAULT]\nglobal_physnet_mtu = lots\n")
    with pytest.raises(config.ConfigError, match="global_physnet_mtu"):
        config.load(path)


def test_physnet_mtus_parse(tmp_path):
    path = tmp_path / "neutrino.conf"
    path.write_text("[ml2]\nphysical_network_mtus = physnet:9000,other:1400\n")
    assert dict(config.load(path).ml2.physical_network_mtus) == {"physnet": 9000, "other": 1400}
