"""`entra-webhook inject` and `certs`, run as a user runs them."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509

from tests.conftest import FIXTURES
from webhook.cli import main
from webhook.core.pod import SIDECAR_NAME
from webhook.core.workloads import find_templates

WORKLOADS = FIXTURES / "workloads"
CONFIG = str(FIXTURES / "config.yaml")
KINDS = ["pod", "deployment", "statefulset", "daemonset", "replicaset", "replicationcontroller", "job", "cronjob"]


def inject(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[Any], str]:
    code = main(["inject", *args])
    captured = capsys.readouterr()
    documents = [doc for doc in yaml.safe_load_all(captured.out) if doc is not None] if code == 0 else []
    return code, documents, captured.err


def sidecar_names(template: Any) -> list[str]:
    spec = template["spec"]
    return [c["name"] for c in spec.get("initContainers", []) + spec["containers"] if c["name"] == SIDECAR_NAME]


def app_env(template: Any) -> dict[str, str]:
    agent = next(c for c in template["spec"]["containers"] if c["name"] == "agent")
    return {item["name"]: item["value"] for item in agent["env"]}


@pytest.mark.parametrize("kind", KINDS)
def test_every_workload_kind_gets_its_pod_template_injected(capsys: pytest.CaptureFixture[str], kind: str) -> None:
    code, documents, _ = inject(capsys, "-f", str(WORKLOADS / f"{kind}.yaml"), "--config", CONFIG)
    assert code == 0
    (document,) = documents
    (template,) = find_templates(document)
    assert sidecar_names(template.pod) == [SIDECAR_NAME]
    assert app_env(template.pod) == {
        "SIDECAR_URL": "http://localhost:5000",
        "BLUEPRINT_APP_ID": "2f0e9c41-8d2b-4f6a-b1c3-0a9e8d7c6b5a",
        "AGENT_IDENTITY_APP_ID": "f3897825-fd03-45f5-90eb-fdbf26135650",
    }
    original = yaml.safe_load((WORKLOADS / f"{kind}.yaml").read_text())
    assert document["kind"] == original["kind"]
    if kind != "pod":  # a workload's own metadata is not its Pod's
        assert document["metadata"] == original["metadata"]


@pytest.mark.parametrize("kind", ["job", "cronjob"])
def test_job_templates_in_container_mode_warn_on_stderr(capsys: pytest.CaptureFixture[str], kind: str) -> None:
    _, _, err = inject(capsys, "-f", str(WORKLOADS / f"{kind}.yaml"), "--config", CONFIG)
    assert "a Job never completes" in err
    assert err.startswith(f'warning: {"CronJob" if kind == "cronjob" else "Job"} "agent" in namespace "agents":')


def test_native_mode_flag_puts_the_sidecar_first_in_init_containers(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["-f", str(WORKLOADS / "job.yaml"), "--config", CONFIG, "--mode", "native", "--server-version", "v1.30.2"]
    _, documents, err = inject(capsys, *args)
    template = documents[0]["spec"]["template"]
    assert template["spec"]["initContainers"][0]["name"] == SIDECAR_NAME
    assert template["spec"]["initContainers"][0]["restartPolicy"] == "Always"
    assert err == ""


def test_native_mode_without_a_server_version_injects_a_regular_container_and_says_how_to_declare_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, documents, err = inject(capsys, "-f", str(WORKLOADS / "pod.yaml"), "--config", CONFIG, "--mode", "native")
    spec = documents[0]["spec"]
    assert "initContainers" not in spec
    assert spec["containers"][0]["name"] == SIDECAR_NAME
    assert "native sidecar requested, but the API server's version is unknown" in err
    assert "declare the version with --server-version (e.g. 1.29)" in err


def test_a_malformed_server_version_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["inject", "-f", str(WORKLOADS / "pod.yaml"), "--server-version", "latest"])
    assert exit_.value.code == 2
    said = capsys.readouterr().err
    assert "argument --server-version: wants MAJOR.MINOR such as 1.29 or v1.29.3, got 'latest'" in said


def test_v1_list_items_are_each_injected_and_others_pass_through(capsys: pytest.CaptureFixture[str]) -> None:
    code, documents, _ = inject(capsys, "-f", str(WORKLOADS / "list.yaml"), "--config", CONFIG)
    assert code == 0
    items = documents[0]["items"]
    assert [item["kind"] for item in items] == ["Deployment", "ConfigMap", "Pod"]
    assert sidecar_names(items[0]["spec"]["template"]) == [SIDECAR_NAME]
    assert items[1] == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "untouched", "namespace": "agents"},
        "data": {"key": "value"},
    }
    assert app_env(items[2])["AGENT_IDENTITY_APP_ID"] == "0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"


def test_multi_document_stream_uses_its_own_config_and_keeps_order(capsys: pytest.CaptureFixture[str]) -> None:
    code, documents, _ = inject(capsys, "-f", str(WORKLOADS / "stream.yaml"), "--namespace", "team")
    assert code == 0
    assert [doc["kind"] for doc in documents] == ["AgentBlueprint", "Service", "Deployment"]
    original = list(yaml.safe_load_all((WORKLOADS / "stream.yaml").read_text()))
    assert documents[:2] == original[:2]
    template = documents[2]["spec"]["template"]
    assert sidecar_names(template) == [SIDECAR_NAME]
    assert app_env(template) == {
        "SIDECAR_URL": "http://localhost:5000",
        "BLUEPRINT_APP_ID": "2f0e9c41-8d2b-4f6a-b1c3-0a9e8d7c6b5a",
    }


def test_template_without_namespace_uses_default_namespace_without_flag(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = inject(capsys, "-f", str(WORKLOADS / "stream.yaml"))
    assert code == 1
    assert err == (
        'denied: Deployment "agent" in namespace "default": entra.io/blueprint names "inline", but namespace '
        '"default" has no AgentBlueprint of that name (have: none)\n'
    )


def test_injecting_the_output_again_changes_nothing(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    main(["inject", "-f", str(WORKLOADS / "list.yaml"), "--config", CONFIG])
    first = capsys.readouterr().out
    (tmp_path / "once.yaml").write_text(first)
    main(["inject", "-f", str(tmp_path / "once.yaml"), "--config", CONFIG])
    assert capsys.readouterr().out == first


def test_a_denial_prints_the_message_and_exits_1(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = (WORKLOADS / "pod.yaml").read_text().replace("sales-agent", "sales-agnt")
    (tmp_path / "bad.yaml").write_text(bad)
    code, _, err = inject(capsys, "-f", str(tmp_path / "bad.yaml"), "--config", CONFIG)
    assert code == 1
    assert err.startswith('denied: pod "agent" in namespace "agents": entra.io/agent-identity names "sales-agnt"')
    assert capsys.readouterr().out == ""


def test_invalid_yaml_names_the_file_and_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text("kind: Pod\nmetadata: {name: [\n")
    code, _, err = inject(capsys, "-f", str(tmp_path / "broken.yaml"))
    assert code == 2
    assert err.startswith(f"entra-webhook inject: {tmp_path / 'broken.yaml'}:3:1: not valid YAML")


def test_missing_config_path_is_a_usage_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = inject(capsys, "-f", str(WORKLOADS / "pod.yaml"), "--config", str(tmp_path / "nope"))
    assert code == 2
    assert "no such file or directory (given as config)" in err


def test_stdin_is_read_when_the_file_is_a_dash() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "webhook.cli", "inject", "-f", "-", "--config", CONFIG],
        input=(WORKLOADS / "deployment.yaml").read_text(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    (document,) = yaml.safe_load_all(result.stdout)
    assert sidecar_names(document["spec"]["template"]) == [SIDECAR_NAME]


def test_certs_writes_a_tls_secret_s_files_and_prints_the_ca_bundle(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    names = ["--service", "hook", "--namespace", "ns", "--dns", "extra.example", "--ip", "127.0.0.1"]
    code = main(["certs", "--out", str(tmp_path), *names])
    assert code == 0
    assert sorted(path.name for path in tmp_path.iterdir()) == ["ca.crt", "ca.key", "tls.crt", "tls.key"]
    assert (tmp_path / "tls.key").stat().st_mode & 0o777 == 0o600
    assert base64.b64decode(capsys.readouterr().out.strip()) == (tmp_path / "ca.crt").read_bytes()
    cert = x509.load_pem_x509_certificate((tmp_path / "tls.crt").read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == [
        "hook",
        "hook.ns",
        "hook.ns.svc",
        "hook.ns.svc.cluster.local",
        "extra.example",
    ]
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    ca = x509.load_pem_x509_certificate((tmp_path / "ca.crt").read_bytes())
    cert.verify_directly_issued_by(ca)


def serve_once(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    tls = ["--cert-file", str(tmp_path / "tls.crt"), "--key-file", str(tmp_path / "tls.key")]
    command = [sys.executable, "-m", "webhook.cli", "serve", "--config", CONFIG, "--metrics-port", "0", *tls, *args]
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=30)


def test_serve_with_a_missing_certificate_names_the_flags_and_the_fix(tmp_path: Path) -> None:
    result = serve_once(tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().endswith(
        f"cannot load the serving certificate --cert-file {tmp_path / 'tls.crt'} --key-file {tmp_path / 'tls.key'}: "
        "[Errno 2] No such file or directory (make a pair with `entra-webhook certs --out DIR`)"
    )


def test_bad_settings_stop_serve_before_it_listens(tmp_path: Path) -> None:
    result = serve_once(tmp_path, "--sidecar-image", "auth-sidecar:latest")
    assert result.returncode == 2
    assert "--sidecar-image (ENTRA_WEBHOOK_SIDECAR_IMAGE): must be pinned by a tag other than latest" in result.stderr


def test_serve_with_a_broken_kubeconfig_names_it_and_the_alternative(tmp_path: Path) -> None:
    (tmp_path / "kubeconfig").write_text("clusters: [\n")
    result = serve_once(tmp_path, "--kubeconfig", str(tmp_path / "kubeconfig"))
    assert result.returncode == 2
    assert f"cannot use --kubeconfig {tmp_path / 'kubeconfig'}:" in result.stderr
    assert "or --config PATH to read blueprints and identities from files" in result.stderr


def test_offline_inject_uses_the_id_a_managed_identity_s_status_records(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    document = yaml.safe_load((WORKLOADS / "deployment.yaml").read_text())
    annotations = document["spec"]["template"]["metadata"].setdefault("annotations", {})
    annotations["entra.io/agent-identity"] = "managed-agent"
    source = tmp_path / "managed.yaml"
    source.write_text(yaml.safe_dump(document))
    code, (injected,), _ = inject(capsys, "-f", str(source), "--config", CONFIG, "--namespace", "agents")
    assert code == 0
    (template,) = find_templates(injected)
    assert app_env(template.pod)["AGENT_IDENTITY_APP_ID"] == "6c1d0b7e-2a3f-4e5d-9c8b-7a6f5e4d3c2b"


def test_offline_inject_denies_a_managed_identity_that_is_not_ready(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    document = yaml.safe_load((WORKLOADS / "pod.yaml").read_text())
    document["metadata"]["annotations"] = {"entra.io/agent-identity": "pending-agent"}
    source = tmp_path / "pending.yaml"
    source.write_text(yaml.safe_dump(document))
    code, _, err = inject(capsys, "-f", str(source), "--config", CONFIG, "--namespace", "agents")
    assert code == 1
    assert 'AgentIdentity "pending-agent" is managed by the controller and not ready yet' in err


EXAMPLES = Path(__file__).parents[1] / "examples"


def test_the_examples_inject_offline(capsys: pytest.CaptureFixture[str]) -> None:
    code, documents, err = inject(capsys, "-f", str(EXAMPLES / "agent.yaml"), "--config", str(EXAMPLES))
    assert (code, err) == (0, "")
    deployment = documents[1]
    assert app_env(deployment["spec"]["template"])["AGENT_IDENTITY_APP_ID"] == "f3897825-fd03-45f5-90eb-fdbf26135650"


def test_offline_the_example_managed_identity_is_explained_until_its_provisioned_object_is_given(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source = str(EXAMPLES / "managed-agent.yaml")
    code, _, err = inject(capsys, "-f", source, "--config", str(EXAMPLES))
    assert code == 1
    assert err == (
        'denied: Deployment "research-agent" in namespace "agents": AgentIdentity "research-agent" is managed by the '
        "controller and not ready yet (the controller has not reported on it yet (is `entra-webhook controller` "
        "running?)); Pods naming it are admitted once it is: kubectl describe agentidentity research-agent -n agents\n"
        "hint: offline, inject knows only the status its --config files hold. Once `kubectl get agentidentity "
        "research-agent -n agents` shows READY True, export it and pass it after the others: kubectl get "
        "agentidentity research-agent -n agents -o yaml > research-agent.yaml, then add --config research-agent.yaml "
        "(or give an existing identity's id as spec.clientId)\n"
    )
    # What `kubectl get agentidentity research-agent -n agents -o yaml` prints once the controller made it.
    (exported,) = [d for d in yaml.safe_load_all((EXAMPLES / "identities.yaml").read_text())
                   if d["metadata"]["name"] == "research-agent"]  # fmt: skip
    exported["status"] = {
        "clientId": "6c1d0b7e-2a3f-4e5d-9c8b-7a6f5e4d3c2b",
        "conditions": [{"type": "Ready", "status": "True", "reason": "Provisioned", "message": "exists in Entra"}],
    }
    (tmp_path / "research-agent.yaml").write_text(yaml.safe_dump(exported))
    config = ["--config", str(EXAMPLES), "--config", str(tmp_path / "research-agent.yaml")]
    code, documents, err = inject(capsys, "-f", source, *config)
    assert (code, err) == (0, "")
    template = documents[1]["spec"]["template"]
    assert sidecar_names(template) == [SIDECAR_NAME]
    assert app_env(template)["AGENT_IDENTITY_APP_ID"] == "6c1d0b7e-2a3f-4e5d-9c8b-7a6f5e4d3c2b"


def test_a_hand_written_pod_with_a_wrong_type_is_denied_naming_the_field(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    manifest = tmp_path / "pod.yaml"
    manifest.write_text(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: agent\n  namespace: agents\n"
        "  annotations: {entra.io/agent-identity: sales-agent, entra.io/sidecar-port: 5001}\n"
        "spec:\n  containers:\n    - name: agent\n      image: example.com/agent:1.0\n      env: {A: b}\n"
    )
    code, _, err = inject(capsys, "-f", str(manifest), "--config", CONFIG)
    assert code == 1
    assert err == (
        'denied: pod "agent" in namespace "agents": metadata.annotations["entra.io/sidecar-port"] must be a string '
        "(quote it in YAML), got a number, which Kubernetes refuses too: correct it\n"
    )


def test_config_exported_by_kubectl_get_as_a_v1_list_is_used(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    document = yaml.safe_load((WORKLOADS / "pod.yaml").read_text())
    document["metadata"]["annotations"] = {"entra.io/agent-identity": "research-agent"}
    (tmp_path / "pod.yaml").write_text(yaml.safe_dump(document))
    exported = str(FIXTURES / "exported-config.yaml")
    code, (injected,), err = inject(capsys, "-f", str(tmp_path / "pod.yaml"), "--config", exported)
    assert (code, err) == (0, "")
    assert app_env(injected)["AGENT_IDENTITY_APP_ID"] == "6c1d0b7e-2a3f-4e5d-9c8b-7a6f5e4d3c2b"


def test_resources_in_a_v1_list_of_the_injected_file_itself_are_used(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    exported = yaml.safe_load((FIXTURES / "exported-config.yaml").read_text())
    document = yaml.safe_load((WORKLOADS / "pod.yaml").read_text())
    document["metadata"]["annotations"] = {"entra.io/agent-identity": "research-agent"}
    exported["items"].append(document)
    (tmp_path / "all.yaml").write_text(yaml.safe_dump(exported))
    code, (output,), err = inject(capsys, "-f", str(tmp_path / "all.yaml"))
    assert (code, err) == (0, "")
    assert app_env(output["items"][2])["AGENT_IDENTITY_APP_ID"] == "6c1d0b7e-2a3f-4e5d-9c8b-7a6f5e4d3c2b"
