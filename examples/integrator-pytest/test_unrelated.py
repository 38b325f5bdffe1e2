"""A test that has nothing to do with bwsandbox: a session that never asks
for its fixtures must run as if the plugin were not installed
(scripts/smoke.sh also runs this test alone)."""


def test_arithmetic() -> None:
    assert 1 + 1 == 2
