"""The configuration schema: parsing, validation, and the reference doc staying current."""

import collections.abc
import dataclasses
import sys
import typing
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


# --- typed sections ------------------------------------------------------------------------------


def _parsed_type(parser):
    """The Python type an option's parser returns (its return annotation; str and int are themselves)."""
    return parser if parser in (str, int) else typing.get_type_hints(parser)["return"]


def test_typed_sections_and_option_table_agree():
    """Every option is a typed attribute of its section's class, and every attribute is an option."""
    section_fields = {
        f.name: typing.get_type_hints(config.Config)[f.name]
        for f in dataclasses.fields(config.Config)
        if f.name != "state_dir"
    }
    option_sections = {("default" if o.section == "DEFAULT" else o.section) for o in config.OPTIONS}
    assert set(section_fields) == option_sections
    declared = {(o.section, o.name) for o in config.OPTIONS}
    for attr, cls in section_fields.items():
        ini = "DEFAULT" if attr == "default" else attr
        names = [f.name for f in dataclasses.fields(cls)]
        assert issubclass(cls, config.Section) and dataclasses.is_dataclass(cls)
        assert cls.__dataclass_params__.frozen, cls
        assert {(ini, name) for name in names} <= declared, f"{cls.__name__} has attributes that are no option"
        assert names == [o.name for o in config.OPTIONS if o.section == ini], "order of OPTIONS"
    for o in config.OPTIONS:
        cls = section_fields["default" if o.section == "DEFAULT" else o.section]
        hints = typing.get_type_hints(cls)
        assert o.name in hints, f"[{o.section}] {o.name} has no attribute in {cls.__name__}"
        assert hints[o.name] == _parsed_type(o.type), f"[{o.section}] {o.name}: {hints[o.name]}"


def test_default_values_have_their_declared_types(tmp_path):
    cfg = config.defaults(tmp_path)
    for o in config.OPTIONS:
        value = getattr(getattr(cfg, "default" if o.section == "DEFAULT" else o.section), o.name)
        want = typing.get_origin(_parsed_type(o.type)) or _parsed_type(o.type)
        if want is collections.abc.Mapping:
            assert isinstance(value, collections.abc.Mapping), (o.section, o.name)
        else:
            assert type(value) is want, (o.section, o.name, value)


def test_sections_are_read_only_mappings_too(tmp_path):
    cfg = config.defaults(tmp_path).with_overrides({("DEFAULT", "bind_port"): "19696"})
    assert cfg.default.bind_port == 19696 == cfg.sections["DEFAULT"]["bind_port"]
    assert list(cfg.sections) == list(dict.fromkeys(o.section for o in config.OPTIONS))
    assert dict(cfg.ml2_type_geneve) == {"vni_ranges": (), "max_header_size": 30}
    assert len(cfg.token) == 1 and "expiration" in cfg.token and "nope" not in cfg.token
    with pytest.raises(KeyError):
        _ = cfg.token["nope"]
    with pytest.raises(AttributeError):
        _ = cfg.default.agent_downtime
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.default.bind_port = 1  # type: ignore[misc]  # the point: sections are frozen


def test_a_misspelt_option_is_a_type_error(tmp_path):
    """mypy knows each section's options and their types (skipped where mypy is not installed)."""
    api = pytest.importorskip("mypy.api")
    snippet = tmp_path / "uses_config.py"
    snippet.write_text(
        "from neutrino.config import defaults\n"
        "cfg = defaults('/tmp')\n"
        "ok: int = cfg.default.agent_down_time\n"
        "typo = cfg.default.agent_downtime\n"
        "wrong: str = cfg.ml2.path_mtu\n"
    )
    out, _, status = api.run(
        [str(snippet), "--follow-imports=silent", "--no-incremental", "--python-executable", sys.executable]
    )
    assert status == 1, out
    errors = [line for line in out.splitlines() if ": error:" in line]
    assert len(errors) == 2, out
    assert ':4: error: "DefaultSection" has no attribute "agent_downtime"' in errors[0]
    assert ":5: error: Incompatible types in assignment" in errors[1]
