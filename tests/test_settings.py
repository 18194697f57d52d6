"""Operator settings: flags win over env vars, and every error names the flag and the env var."""

from __future__ import annotations

import pytest

from webhook.common.settings import SettingsError
from webhook.core.settings import DEFAULT_IMAGE, Settings, load_settings, parse_server_version


def test_defaults_pin_the_sidecar_image_and_port() -> None:
    settings = load_settings({}, {})
    assert settings.sidecar_image == DEFAULT_IMAGE
    assert settings.sidecar_port == 5000
    assert settings.mode == "auto"
    assert settings.run_as_user == 1654


def test_env_vars_are_read_and_flags_win() -> None:
    environ = {"ENTRA_WEBHOOK_SIDECAR_PORT": "6000", "ENTRA_WEBHOOK_MODE": "native"}
    settings = load_settings({"mode": "container", "sidecar_port": None}, environ)
    assert settings.sidecar_port == 6000
    assert settings.mode == "container"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            {"sidecar_image": "mcr.microsoft.com/entra-sdk/auth-sidecar:latest"},
            "--sidecar-image (ENTRA_WEBHOOK_SIDECAR_IMAGE): must be pinned",
        ),
        ({"sidecar_image": "mcr.microsoft.com/entra-sdk/auth-sidecar"}, "must be pinned by a tag other than latest"),
        (
            {"sidecar_port": "80"},
            "--sidecar-port (ENTRA_WEBHOOK_SIDECAR_PORT): Input should be greater than or equal to 1024",
        ),
        ({"mode": "sidecar"}, "--mode (ENTRA_WEBHOOK_MODE): Input should be 'auto', 'native' or 'container'"),
        (
            {"sidecar_memory_limit": "256MB"},
            "--sidecar-memory-limit (ENTRA_WEBHOOK_SIDECAR_MEMORY_LIMIT): must be a Kubernetes quantity",
        ),
        ({"run_as_user": "0"}, "--run-as-user (ENTRA_WEBHOOK_RUN_AS_USER): Input should be greater than or equal to 1"),
    ],
)
def test_bad_settings_name_the_flag_and_env_var(flags: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as error:
        load_settings(flags, {})
    assert message in str(error.value)


def test_image_pinned_by_digest_is_accepted() -> None:
    image = "mcr.microsoft.com/entra-sdk/auth-sidecar@sha256:" + "a" * 64
    assert load_settings({"sidecar_image": image}, {}).sidecar_image == image


def test_registry_port_is_not_mistaken_for_a_tag() -> None:
    with pytest.raises(SettingsError, match="must be pinned"):
        load_settings({"sidecar_image": "registry.local:5000/auth-sidecar"}, {})


@pytest.mark.parametrize(
    ("mode", "version", "expected"),
    [
        ("auto", None, "container"),
        ("auto", (1, 28), "container"),
        ("auto", (1, 29), "native"),
        ("auto", (1, 31), "native"),
        ("native", None, "native"),
        ("container", (1, 31), "container"),
    ],
)
def test_default_mode_follows_the_server_version(mode: str, version: tuple[int, int] | None, expected: str) -> None:
    assert Settings(mode=mode).default_mode(version) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "version"), [("1.29", (1, 29)), ("v1.30.2", (1, 30)), ("v1.29.3-eks-1a2b", (1, 29)), (" 1.20 ", (1, 20))]
)
def test_a_server_version_reads_as_major_and_minor(text: str, version: tuple[int, int]) -> None:
    assert parse_server_version(text) == version


@pytest.mark.parametrize("text", ["", "latest", "1", "1.x", "v1.\u0662\u0669", "1." + "9" * 5000])
def test_anything_else_is_refused_with_an_example(text: str) -> None:
    with pytest.raises(SettingsError, match=r"--server-version wants MAJOR.MINOR such as 1.29 or v1.29.3, got"):
        parse_server_version(text)
