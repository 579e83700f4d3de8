"""neutrino.identity.passwords: scrypt hashing contract."""

from neutrino.identity.passwords import hash_password, verify_password


def test_round_trip_and_wrong_password():
    stored = hash_password("s3cret", log2_n=10)
    assert verify_password("s3cret", stored)
    assert not verify_password("s3cret ", stored)
    assert not verify_password("", stored)


def test_self_describing_and_salted():
    a, b = hash_password("pw", log2_n=10), hash_password("pw", log2_n=10)
    assert a != b  # fresh salt each time
    scheme, log2_n, r, p, salt, key = a.split("$")
    assert (scheme, log2_n, r, p) == ("scrypt", "10", "8", "1")
    assert salt and key
    # The default cost is readable from the string and verifies as well.
    assert verify_password("pw", hash_password("pw"))


def test_malformed_stored_values_never_verify():
    for stored in (
        None,
        "",
        "plain",
        "md5$1$2$3$4$5",
        "scrypt$99$8$1$AAAA$AAAA",
        "scrypt$x$8$1$AAAA$AAAA",
        "scrypt$10$8$1$!!$!!",
    ):
        assert not verify_password("pw", stored)


def test_unicode_password():
    stored = hash_password("pässwörd✓", log2_n=10)
    assert verify_password("pässwörd✓", stored)
    assert not verify_password("passwort", stored)
