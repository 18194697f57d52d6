"""Operator settings: validated once at start from flags and `ENTRA_WEBHOOK_*` env vars."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict
from pydantic_core import PydanticCustomError

from webhook.common.settings import SettingsError, load_model, setting
from webhook.core.placement import NATIVE_SIDECARS_SINCE, Mode, ModeSetting

DEFAULT_IMAGE = "mcr.microsoft.com/entra-sdk/auth-sidecar:1.1.2-azurelinux3.0-distroless"
ENV_PREFIX = "ENTRA_WEBHOOK_"

# The .NET container images' `app` user; the sidecar image names it but gives no number.
DOTNET_APP_UID = 1654

_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")


def _quantity(value: str) -> str:
    if not _QUANTITY.fullmatch(value):
        raise PydanticCustomError(
            "quantity",
            "must be a Kubernetes quantity such as 50m, 1, 128Mi or 1Gi, got {value}",
            {"value": value},
        )
    return value


def _pinned_image(value: str) -> str:
    """An image pinned by tag or digest; `latest` and untagged images drift under the operator's feet."""
    name, _, digest = value.partition("@")
    last = name.rsplit("/", 1)[-1]
    tag = last.partition(":")[2]
    if digest:
        if not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
            raise PydanticCustomError(
                "image", "has a malformed digest (want sha256:<64 hex>): {value}", {"value": value}
            )
        return value
    if not tag or tag == "latest" or not _TAG.fullmatch(tag):
        raise PydanticCustomError(
            "image",
            "must be pinned by a tag other than latest or by a digest, for example {default}, got {value}",
            {"value": value, "default": DEFAULT_IMAGE},
        )
    return value


Quantity = Annotated[str, AfterValidator(_quantity)]


class Settings(BaseModel):
    """What the operator chooses for every injected sidecar."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sidecar_image: Annotated[str, AfterValidator(_pinned_image)] = setting(
        DEFAULT_IMAGE, "the injected sidecar's image, pinned by a tag other than latest or by a digest"
    )
    sidecar_port: int = setting(  # non-root cannot bind below 1024
        5000, "the sidecar's port, 1024..65535 (a Pod that uses it takes another with entra.io/sidecar-port)",
        ge=1024, le=65535,
    )  # fmt: skip
    mode: ModeSetting = setting(
        "auto",
        "where the sidecar goes: native (first init container, restartPolicy Always; Kubernetes 1.29+), container "
        "(first container), or auto (native where the API server is 1.29 or newer, else container)",
    )
    sidecar_cpu_request: Quantity = setting("50m", "the sidecar's CPU request (a Kubernetes quantity)")
    sidecar_memory_request: Quantity = setting("128Mi", "the sidecar's memory request (a Kubernetes quantity)")
    sidecar_cpu_limit: Quantity = setting("500m", "the sidecar's CPU limit (a Kubernetes quantity)")
    sidecar_memory_limit: Quantity = setting("256Mi", "the sidecar's memory limit (a Kubernetes quantity)")
    run_as_user: int = setting(DOTNET_APP_UID, "the sidecar's numeric user (the .NET images' app user)", ge=1)
    own_namespace: str = setting("entra-system", "the webhook's own namespace, never injected")

    def default_mode(self, server_version: tuple[int, int] | None) -> Mode:
        """`auto` picks native sidecars only where the API server is known to support them."""
        if self.mode != "auto":
            return self.mode
        if server_version is not None and server_version >= NATIVE_SIDECARS_SINCE:
            return "native"
        return "container"


_VERSION = re.compile(r"v?([0-9]{1,4})\.([0-9]{1,4})(\.[0-9]+)?([-+].*)?", re.ASCII)


def parse_server_version(text: str) -> tuple[int, int]:
    """`1.29`, `v1.29.3` or `v1.29.3-eks-1a2b` as (1, 29); what `kubectl version` prints for the server."""
    found = _VERSION.fullmatch(text.strip())
    if not found:
        raise SettingsError(f"--server-version wants MAJOR.MINOR such as 1.29 or v1.29.3, got {text[:64]!r}")
    return int(found[1]), int(found[2])


def load_settings(flags: Mapping[str, Any], environ: Mapping[str, str]) -> Settings:
    return load_model(Settings, flags, environ, ENV_PREFIX)
