"""A host key file that cannot be read (emptied, overwritten) gets a message
naming the file and the way out, never `internal error: KeyImportError`; and
`hostkey rotate` is that way out: it keeps the corrupt file aside and makes
new keys, losing nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from bwsandbox.cli.main import main
from bwsandbox.server import hostkeys

ED25519 = "ssh_host_ed25519_key"


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A data directory whose host keys were made, as a first `serve` does."""
    hostkeys.ensure(tmp_path)
    return tmp_path


def _spoil(data: Path, name: str, content: bytes, folder: str = "") -> Path:
    path = hostkeys.keys_dir(data) / folder / name
    path.write_bytes(content)
    return path


@pytest.mark.parametrize("name", [name for name, _alg, _opts in hostkeys.KEY_FILES])
@pytest.mark.parametrize(("content", "reason"), [
    (b"", "the file is empty"),
    (b"not a key at all\n", "not an OpenSSH private key"),
    (bytes(range(256)), "not an OpenSSH private key"),
])
def test_loading_a_corrupt_key_names_the_file_and_the_way_out(
    data: Path, name: str, content: bytes, reason: str
) -> None:
    path = _spoil(data, name, content)
    with pytest.raises(hostkeys.CorruptHostKey) as caught:
        hostkeys.ensure(data)  # what `serve` (Sandbox.start) calls
    message = str(caught.value)
    assert str(path) in message and reason in message
    assert f"bwsandbox hostkey rotate --data-dir {data}" in message and "backup" in message
    assert path.read_bytes() == content  # reading it changed nothing


def test_serve_show_and_known_hosts_say_which_file_and_what_to_do(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _spoil(data, ED25519, b"")
    for argv in (["serve", "--port", "0", "--eu-port", "0"], ["hostkey", "show"],
                 ["hostkey", "known-hosts"]):
        assert main([*argv, "--data-dir", str(data)]) == 1, argv
        err = capsys.readouterr().err
        assert f"the host key {path} cannot be read (the file is empty)" in err, argv
        assert "internal error" not in err and "Traceback" not in err
    assert path.read_bytes() == b""


def test_rotate_keeps_the_corrupt_key_aside_and_makes_new_keys(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = hostkeys.keys_dir(data)
    rsa_before = (folder / "ssh_host_rsa_key").read_bytes()
    path = _spoil(data, ED25519, b"garbage\n")
    assert main(["hostkey", "rotate", "--data-dir", str(data)]) == 0
    out = capsys.readouterr().out
    [aside] = folder.glob(f"{ED25519}.corrupt-*")
    assert aside.read_bytes() == b"garbage\n"
    assert f"The host key {path} could not be read: kept aside as {aside}." in out
    # The readable keys were rotated as usual: retired, not lost.
    [retired] = (folder / "retired").iterdir()
    assert (retired / "ssh_host_rsa_key").read_bytes() == rsa_before
    assert len(hostkeys.ensure(data)) == len(hostkeys.KEY_FILES)
    assert main(["hostkey", "show", "--data-dir", str(data)]) == 0


def test_a_corrupt_staged_key_is_named_and_announce_again_replaces_it(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hostkeys.rotate(data, announce=True)
    path = _spoil(data, ED25519, b"", folder="next")
    assert main(["hostkey", "show", "--data-dir", str(data)]) == 1
    err = capsys.readouterr().err
    assert f"the host key {path} cannot be read" in err and "--announce" in err
    assert main(["hostkey", "rotate", "--announce", "--data-dir", str(data)]) == 0
    [aside] = hostkeys.keys_dir(data).glob(f"next-{ED25519}.corrupt-*")
    assert aside.read_bytes() == b""
    assert len(hostkeys.announced(data)) == len(hostkeys.KEY_FILES)


def test_promoting_a_staged_set_with_a_corrupt_key_makes_that_key_new(data: Path) -> None:
    hostkeys.rotate(data, announce=True)
    _spoil(data, ED25519, b"", folder="next")
    rotation = hostkeys.rotate(data)
    assert rotation.active
    assert sorted(k.type for k in rotation.keys) == sorted(alg for _n, alg, _o in hostkeys.KEY_FILES)
    assert not (hostkeys.keys_dir(data) / "next").exists()
    [aside] = hostkeys.keys_dir(data).glob(f"next-{ED25519}.corrupt-*")
    assert rotation.set_aside == [(hostkeys.keys_dir(data) / "next" / ED25519, aside)]
    assert rotation.remade == []  # a staged key: nobody trusted it yet


def test_announce_with_a_corrupt_key_in_use_says_that_key_is_not_announced(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _spoil(data, ED25519, b"")
    assert main(["hostkey", "rotate", "--announce", "--data-dir", str(data)]) == 0
    out = capsys.readouterr().out
    [aside] = hostkeys.keys_dir(data).glob(f"{ED25519}.corrupt-*")
    assert out.count("could not be read: kept aside") == 1  # each key read once
    assert f"The host key {path} could not be read: kept aside as {aside}." in out
    assert f"Not announced: {path} could not be read" in out and "changed host key" in out
    assert len(hostkeys.ensure(data)) == len(hostkeys.announced(data)) == len(hostkeys.KEY_FILES)
