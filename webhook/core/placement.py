"""Where the sidecar goes (DESIGN section 7): the modes, and the first server version with native sidecars."""

from __future__ import annotations

from typing import Literal

Mode = Literal["native", "container"]
"""`native`: first init container with `restartPolicy: Always`; `container`: first regular container."""

ModeSetting = Literal["auto", "native", "container"]
"""The operator's choice: `auto` is `native` where the API server is known to be 1.29 or newer."""

NATIVE_SIDECARS_SINCE = (1, 29)
