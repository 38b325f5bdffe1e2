"""fsutil.read_bounded: a whole file within the limit, a refusal past it,
and never a read that asks for more memory than the file can fill."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from bwsandbox import fsutil


def test_a_file_within_the_limit_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 100)
    assert fsutil.read_bounded(path, 100) == b"x" * 100
    assert fsutil.read_bounded(tmp_path / "f", 2**31) == b"x" * 100


def test_a_regular_file_over_the_limit_is_refused_on_its_stat(tmp_path: Path) -> None:
    path = tmp_path / "f"
    with path.open("wb") as fh:
        fh.truncate(3 * 2**30)  # sparse
    with pytest.raises(fsutil.TooLarge) as refused:
        fsutil.read_bounded(path, 2**31)
    assert (refused.value.size, refused.value.limit) == (3 * 2**30, 2**31)


class _Counted(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.asked: list[int] = []

    def read(self, size: int | None = -1) -> bytes:
        self.asked.append(-1 if size is None else size)
        return super().read(size)


def test_a_stream_is_read_in_pieces_and_stops_one_byte_past_the_limit() -> None:
    stream = _Counted(b"y" * (3 * 2**20))
    assert fsutil.read_bounded(stream, 2**31) == b"y" * (3 * 2**20)
    assert max(stream.asked) == 2**20  # never limit + 1 at once: read(n) reserves n bytes
    endless = _Counted(b"z" * (5 * 2**20))
    with pytest.raises(fsutil.TooLarge) as refused:
        fsutil.read_bounded(endless, 2**20 + 5)
    assert refused.value.size is None
    assert endless.tell() == 2**20 + 6  # one byte past the limit, no further


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_an_endless_device_is_refused() -> None:
    with pytest.raises(fsutil.TooLarge, match="more than 1,000"):
        fsutil.read_bounded(Path("/dev/zero"), 1000)
