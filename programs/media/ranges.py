"""HTTP `Range` requests for a file of known size (RFC 9110 § 14), as video players send
them to seek. Only a single byte range is served as a 206; several ranges, another unit
or a header that does not parse are ignored and the whole file is sent (the RFC allows
either), and a range that starts past the end is a 416."""

from __future__ import annotations

import re
from dataclasses import dataclass

_SINGLE = re.compile(r"^bytes=(\d*)-(\d*)$")


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1


class Unsatisfiable(Exception):
    """The range lies wholly outside the file: answer 416."""


def parse(header: str | None, size: int) -> ByteRange | None:
    """The one range to send, None for the whole file; raises Unsatisfiable."""
    if not header:
        return None
    match = _SINGLE.match(header.strip().replace(" ", ""))
    if match is None:
        return None  # another unit, several ranges, or garbage
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # the last n bytes
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise Unsatisfiable
        return ByteRange(start=max(0, size - suffix), end=size - 1)
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None  # invalid: ignored
    if start >= size:
        raise Unsatisfiable
    return ByteRange(start=start, end=min(end, size - 1))
