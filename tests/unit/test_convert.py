"""Attribute converters (neutrino.resources.convert): canonical values and Neutron's reasons."""

from __future__ import annotations

import pytest

from neutrino.errors import echo
from neutrino.resources import convert as cv


def _fails(conv, value, reason=None, exc=ValueError):
    with pytest.raises(exc) as ei:
        conv(value)
    if reason is not None:
        assert str(ei.value) == reason


@pytest.mark.parametrize(
    "value,expect",
    [
        (True, True),
        (False, False),
        (1, True),
        (0, False),
        ("true", True),
        ("True", True),
        ("1", True),
        ("false", False),
        ("False", False),
        ("0", False),
        (" yes ", True),
        ("off", False),
    ],
)
def test_to_bool(value, expect):
    assert cv.to_bool(value) is expect


@pytest.mark.parametrize("value", ["maybe", 2, None, [], 1.5])
def test_to_bool_fails(value):
    _fails(cv.to_bool, value, f"'{value}' cannot be converted to boolean", exc=cv.ConversionError)


@pytest.mark.parametrize("value,expect", [(5, 5), ("101", 101), (" 7 ", 7), (3.0, 3), ("-2", -2)])
def test_to_int(value, expect):
    assert cv.to_int(value) == expect


@pytest.mark.parametrize("value", ["abc", True, 1.5, None, "1.5"])
def test_to_int_fails(value):
    _fails(cv.to_int, value, f"'{value}' is not an integer", exc=cv.ConversionError)


def test_string():
    conv = cv.string(5)
    assert conv("abc") == "abc" and conv("") == ""
    _fails(conv, "abcdef", "'abcdef' exceeds maximum length of 5")
    _fails(conv, 5, "'5' is not a valid string")
    assert cv.string(None)("x" * 1000) == "x" * 1000


def test_uuid():
    u = "7d1e3c4a-1b2c-4d5e-8f90-123456789abc"
    assert cv.uuid_str(u) == u
    assert cv.uuid_str(u.upper()) == u
    assert cv.uuid_str(u.replace("-", "")) == u
    for bad in ("not-a-uuid", "", 5, u + "0"):
        _fails(cv.uuid_str, bad, f"'{bad}' is not a valid UUID")
    assert cv.uuid_or_none(None) is None


@pytest.mark.parametrize(
    "value,expect",
    [
        ("fa:16:3e:00:00:01", "fa:16:3e:00:00:01"),
        ("FA:16:3E:AB:CD:EF", "fa:16:3e:ab:cd:ef"),
        ("FA-16-3E-00-00-01", "fa:16:3e:00:00:01"),
        ("fa163e000001", "fa:16:3e:00:00:01"),
        ("11:22:33:44:55:66", "11:22:33:44:55:66"),  # multicast
        ("01:00:5E:00:00:01", "01:00:5e:00:00:01"),
    ],
)
def test_mac(value, expect):
    assert cv.mac(value) == expect


@pytest.mark.parametrize(
    "value",
    [
        "00:00:00:00:00:00",
        "ff:ff:ff:ff:ff:ff",
        "FF:FF:FF:FF:FF:FF",
        "fa:16:3e:00:00",
        "fa:16-3e:00:00:01",
        "zz:16:3e:00:00:01",
        5,
    ],
)
def test_mac_fails(value):
    _fails(cv.mac, value, f"'{value}' is not a valid MAC address")


@pytest.mark.parametrize(
    "value,expect",
    [
        ("10.0.0.1", "10.0.0.1"),
        ("2001:DB8:0::0001", "2001:db8::1"),
        ("2001:db8:1:0:0:0:0:1", "2001:db8:1::1"),
        ("::FFFF:10.0.0.2", "::ffff:a00:2"),
    ],
)
def test_ip(value, expect):
    assert cv.ip(value) == expect


@pytest.mark.parametrize(
    "value",
    [
        "10.0.0.256",
        "10.0.0.0/24",
        "x",
        5,
        None,
        # blanks and controls around an address (Neutron: "contains whitespace")
        " 10.0.0.2 ",
        "10.0.0.2\n",
        "\t10.0.0.2",
        "10.0.0.2\x00",
        "10.0.\u00a00.2",
        # IPv6 scope ids: Python's ipaddress takes any text after '%'
        "fe80::1%eth0",
        "fe80::1%a\nb",
        "fe80::1%a,b c",
        "fe80::1%",
        "2001:db8::1%1",
        "\uff11\uff10.0.0.2",
    ],
)
def test_ip_fails(value):
    _fails(cv.ip, value, f"'{value}' is not a valid IP address")


def test_ip_or_none():
    assert cv.ip_or_none(None) is None
    assert cv.ip_or_none("10.0.0.1") == "10.0.0.1"


@pytest.mark.parametrize(
    "value,expect",
    [
        ("10.0.0.5/24", "10.0.0.5/24"),
        ("10.1.0.0", "10.1.0.0/32"),
        ("2001:DB8::/64", "2001:db8::/64"),
        ("2001:db8::1", "2001:db8::1/128"),
    ],
)
def test_cidr_keep_host(value, expect):
    assert cv.cidr_keep_host(value) == expect


@pytest.mark.parametrize(
    "value",
    [
        "10.0.0.0/33",
        "x",
        "10.0.0/24",
        5,
        None,
        "fe80::%eth0/64",
        "fe80::1%x/64",
        "fe80::/64%x",
        "fe80::%a\nb/64",
        "fe80::%a,b c/64",
        " 10.0.0.0/24",
        "10.0.0.0/24 ",
        "10.0.0.0/24\n",
        "10.0.0.0/ 24",
        "10.0.0.0 /24",
        "10.0.0.0/+24",
        "10.0.0.0/24\x00",
    ],
)
def test_cidr_fails(value):
    _fails(cv.cidr_keep_host, value, f"'{value}' is not a valid IP subnet")
    _fails(cv.subnet_cidr, value, f"'{value}' is not a valid IP subnet")


def test_subnet_cidr_masks_host_bits():
    assert cv.subnet_cidr("10.0.0.5/24") == "10.0.0.0/24"
    assert cv.subnet_cidr("2001:db8::1/64") == "2001:db8::/64"


def test_ip_or_cidr():
    assert cv.ip_or_cidr("10.0.0.1") == "10.0.0.1"
    assert cv.ip_or_cidr("10.0.1.0/24") == "10.0.1.0/24"
    assert cv.ip_or_cidr("2001:DB8::0005") == "2001:db8::5"
    _fails(cv.ip_or_cidr, "nope")
    for bad in ("fe80::1%eth0", "fe80::1%x/64", "fe80::1%a\nb", "10.0.0.1 "):
        _fails(cv.ip_or_cidr, bad)


def test_one_of_and_int_one_of():
    conv = cv.one_of("a", "b", nullable=True)
    assert conv("a") == "a" and conv(None) is None
    _fails(conv, "c", "'c' is not in ['a', 'b']")
    _fails(cv.one_of("a"), None, "'None' is not in ['a']")
    ip_version = cv.int_one_of(4, 6)
    assert ip_version(4) == 4 and ip_version("6") == 6
    _fails(ip_version, 5, "'5' is not in [4, 6]")
    _fails(ip_version, "x", "'x' is not an integer", exc=cv.ConversionError)


def test_list_of():
    conv = cv.list_of(cv.ip, unique=True, what="nameserver")
    assert conv(["10.0.0.1", "2001:DB8::1"]) == ["10.0.0.1", "2001:db8::1"]
    _fails(conv, ["8.8.8.8", "8.8.8.8"], "Duplicate nameserver '8.8.8.8'")
    _fails(conv, "8.8.8.8", "'8.8.8.8' is not a list")
    _fails(conv, ["nope"], "'nope' is not a valid IP address")
    # A type error inside a list is a validation failure, not a ConversionError.
    with pytest.raises(ValueError) as ei:
        cv.list_of(cv.to_int)(["x"])
    assert not isinstance(ei.value, cv.ConversionError)


def test_dict_of():
    conv = cv.dict_of({"start": cv.ip, "end": cv.ip}, required=("start", "end"))
    assert conv({"start": "10.0.0.1", "end": "10.0.0.9"}) == {"start": "10.0.0.1", "end": "10.0.0.9"}
    _fails(conv, {"start": "10.0.0.1", "end": "10.0.0.9", "x": 1}, "Unrecognized attribute(s) 'x'")
    _fails(conv, {"start": "10.0.0.1"})
    _fails(conv, "10.0.0.1-10.0.0.9", "'10.0.0.1-10.0.0.9' is not a dictionary")
    with pytest.raises(ValueError) as ei:
        cv.dict_of({"enable_snat": cv.to_bool})({"enable_snat": "maybe"})
    assert not isinstance(ei.value, cv.ConversionError)


def test_fixed_ips():
    conv = cv.fixed_ips(cv.dict_of({"subnet_id": cv.uuid_str, "ip_address": cv.ip}))
    assert conv([{"ip_address": "10.0.0.1"}, {"ip_address": "10.0.0.2"}]) == [
        {"ip_address": "10.0.0.1"},
        {"ip_address": "10.0.0.2"},
    ]
    _fails(conv, [{"ip_address": "10.0.0.1"}, {"ip_address": "10.0.0.1"}], "Duplicate IP address '10.0.0.1'")
    u = "7d1e3c4a-1b2c-4d5e-8f90-123456789abc"
    assert len(conv([{"subnet_id": u}, {"subnet_id": u}])) == 2  # the same subnet twice is fine


def test_nullable_and_in_range():
    assert cv.nullable(cv.to_int)(None) is None
    conv = cv.in_range(0, 10)
    assert conv("7") == 7
    _fails(conv, 11, "'11' is not in range 0 through 10")
    _fails(conv, "x", "'x' is not an integer", exc=cv.ConversionError)


@pytest.mark.parametrize(
    "value,ok", [("a", True), ("x" * 255, True), ("", False), ("x" * 256, False), ("a,b", False), (5, False)]
)
def test_tag(value, ok):
    if ok:
        assert cv.tag(value) == value
    else:
        _fails(cv.tag, value, f"'{echo(value)}' is not a valid tag")  # long values are cut (errors.echo)


def test_dict_value():
    assert cv.dict_value({"a": 1}) == {"a": 1}
    _fails(cv.dict_value, [], "'[]' is not a dictionary")
    assert cv.dict_or_none(None) is None
