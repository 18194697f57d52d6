"""Log line timestamps: formatted once a second, read exactly as `datetime.isoformat` writes them."""

from __future__ import annotations

import datetime as dt
import random

from webhook.common.logs import timestamp


def test_the_timestamp_is_what_isoformat_writes_to_the_millisecond() -> None:
    chosen = random.Random(9)
    moments = [1_795_700_000 + chosen.random() * 86_400 for _ in range(5_000)]
    moments += [1_795_700_000.0, 1_795_700_000.9995, 1_795_700_000.999_999_6, 1_795_700_001.000_000_4]
    for created in sorted(moments):
        expected = dt.datetime.fromtimestamp(created, dt.UTC).isoformat(timespec="milliseconds")
        assert timestamp(created) == expected, created
