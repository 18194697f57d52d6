"""Render manifests/ from the Helm chart: the chart is the one source, the kustomize files are its output.

    python -m scripts.render_manifests            # rewrite manifests/ (make manifests)
    python -m scripts.render_manifests --check    # fail, with a diff, if manifests/ differs (make lint)

Each certificate mode is rendered with `helm template` (release entra-webhook in entra-system, for a
current Kubernetes); the CRDs go to manifests/crds/, a kustomization of their own applied first and
never part of the others (as Helm's crds/), so that deleting the install never deletes a blueprint or
an identity; so does what Helm keeps at uninstall (`helm.sh/resource-policy: keep`: the controller's
ClusterRole). Objects that every mode renders alike go to manifests/base/, the rest to the mode's
directory: manifests/ itself for a certificate you bring, self-managed/ and cert-manager/ beside it,
each a kustomization on ../base. manifests/monitoring/ gets the PrometheusRule, the ServiceMonitor and
the dashboard ConfigMap, and the same alerting rules as a plain rule file. Comments in the templates
carry over; the labels that only make sense to Helm are left out.
"""

from __future__ import annotations

import argparse
import difflib
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import yaml

from scripts.go_tools import go_tools

REPO_ROOT = Path(__file__).resolve().parents[1]
CHART = REPO_ROOT / "charts" / "entra-webhook"
MANIFESTS = REPO_ROOT / "manifests"

RELEASE = "entra-webhook"
NAMESPACE = "entra-system"
# The static manifests are for current clusters: policy/v1 PodDisruptionBudget, matchConditions.
# On older ones install the chart, which picks both by the server's version.
KUBE_VERSION = "1.36.0"
# Directory (relative to manifests/) -> certificates.mode.
MODES = {"": "secret", "self-managed": "self-managed", "cert-manager": "cert-manager"}
MONITORING = (
    "metrics.prometheusRule.enabled=true",
    "metrics.serviceMonitor.enabled=true",
    "metrics.dashboard.enabled=true",
)
MONITORING_TEMPLATES = ("templates/prometheusrule.yaml", "templates/servicemonitor.yaml", "templates/dashboard.yaml")
HELM_ONLY_LABELS = ("helm.sh/chart:", "app.kubernetes.io/managed-by:")
SOURCE_PREFIX = f"# Source: {CHART.name}/"
KEPT = "helm.sh/resource-policy: keep"

# Directories go under `resources` (kustomize v3+; `bases` is deprecated and warned about). kubectl 1.20's
# own kustomize (v2.0.3) cannot read that: on such clusters build with a standalone kustomize, or use the chart.
KUSTOMIZE_NOTE = """\
# A base may not contain its overlay (kustomize refuses the cycle), so the shared objects are in base/,
# a sibling of the overlays.
"""
HEADERS = {
    "crds": """\
# The AgentBlueprint and AgentIdentity CRDs, apart from the workloads so that `kubectl delete -k` of an
# install never deletes them (which would delete every blueprint and identity), and the controller's
# ClusterRole, which it needs to release its finalizers when the install is removed (it grants nothing
# without the install's binding). Apply them first:
#   kubectl apply -k manifests/crds
# Before Kubernetes 1.25, kubectl's own schema of a CRD lacks x-kubernetes-validations: add
# --validate=false (the server keeps the rules it knows and drops the CEL ones).
# docs/operations/uninstall.md says how to remove them, and everything in them, on purpose.
""",
    "": """\
# The entra-webhook with a serving certificate you bring: `kubectl apply -k manifests/` (after
# `kubectl apply -k manifests/crds`).
# Create Secret entra-system/entra-webhook-tls (tls.crt, tls.key), e.g. from
# `entra-webhook certs --out DIR`, and patch the CA into both webhooks' clientConfig.caBundle.
# Or let something make the certificate:
#   manifests/self-managed/   the webhook creates and rotates it itself (no dependencies);
#   manifests/cert-manager/   cert-manager issues it.
#
# Use your image with:
#   images:
#     - name: entra-agent-webhook
#       newName: registry.example.com/entra-agent-webhook
#       digest: sha256:...
""",
    "self-managed": """\
# The webhook creates and rotates its own CA and serving certificate (`serve --manage-certs`): it
# keeps them in Secret entra-system/entra-webhook-tls, writes the serving pair to an emptyDir, and
# keeps both webhooks' caBundle current. No cert-manager needed.
#   kubectl apply -k manifests/self-managed
""",
    "cert-manager": """\
# cert-manager (v1.0+, cert-manager.io/v1) issues the serving certificate from a CA of its own
# and injects that CA into the MutatingWebhookConfiguration (cainjector).
#   kubectl apply -k manifests/cert-manager
""",
    "base": """\
# What every certificate mode shares; applied through manifests/ or one of the overlays beside it.
""",
    "monitoring": """\
# Prometheus alerting rules, a ServiceMonitor and a Grafana dashboard (for prometheus-operator and
# Grafana's dashboard sidecar): `kubectl apply -k manifests/monitoring`. alerts.yaml holds the same
# rules as a plain Prometheus rule file (rule_files:).
""",
}


def generated_header(source: str) -> str:
    origin = "/".join(filter(None, ("charts/entra-webhook", source)))
    return f"# Generated by `make manifests` from {origin}: edit the chart, not this file.\n"


@dataclass(frozen=True)
class Document:
    source: str  # path inside the chart, e.g. templates/rbac.yaml
    text: str


def helm_binary() -> Path:
    """The pinned helm (scripts/build/helm), built once and cached."""
    return go_tools("helm") / "helm"


def render(helm: Path, *values: str) -> list[Document]:
    """`helm template` split into documents, minus the labels only Helm uses."""
    sets = [arg for value in ("createNamespace=true", *values) for arg in ("--set", value)]
    command = [str(helm), "template", RELEASE, str(CHART), "--namespace", NAMESPACE, "--include-crds"]
    command += ["--kube-version", KUBE_VERSION, *sets]
    result = subprocess.run(command, check=False, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"helm template failed:\n{result.stderr}")
    documents = []
    for chunk in result.stdout.split("\n---\n"):
        lines = chunk.strip("\n").removeprefix("---\n").splitlines()
        sources = [line for line in lines if line.startswith(SOURCE_PREFIX)]
        if not sources or yaml.safe_load("\n".join(lines)) is None:
            continue
        kept = [line for line in lines if line not in sources and not line.strip().startswith(HELM_ONLY_LABELS)]
        documents.append(Document(sources[0].removeprefix(SOURCE_PREFIX), "\n".join(kept) + "\n"))
    return documents


def file_name(source: str) -> str:
    """templates/rbac.yaml -> rbac.yaml; crds/x.yaml stays crds/x.yaml."""
    return source.removeprefix("templates/")


def write_group(files: dict[str, str], directory: str, documents: list[Document]) -> list[str]:
    by_file: dict[str, list[Document]] = defaultdict(list)
    for document in documents:
        by_file[file_name(document.source)].append(document)
    for name, group in by_file.items():
        path = f"{directory}/{name}".lstrip("/")
        files[path] = generated_header(group[0].source) + "---\n".join(d.text for d in group)
    return sorted(by_file)


def kustomization(header: str, bases: list[str], resources: list[str]) -> str:
    text = generated_header("") + header + (KUSTOMIZE_NOTE if bases else "")
    lines = ["apiVersion: kustomize.config.k8s.io/v1beta1", "kind: Kustomization"]
    lines += ["resources:", *(f"  - {entry}" for entry in [*bases, *resources])]
    return text + "\n".join(lines) + "\n"


def alert_rule_file(documents: list[Document]) -> str:
    """The PrometheusRule's spec as a plain rule file, its text (block scalars and all) kept."""
    (rule,) = [d.text for d in documents if d.source == "templates/prometheusrule.yaml"]
    spec = rule.split("\nspec:\n", 1)[1]
    body = "".join(line.removeprefix("  ") for line in spec.splitlines(keepends=True))
    assert yaml.safe_load(body) == yaml.safe_load(rule)["spec"], "the PrometheusRule's spec did not dedent cleanly"
    return generated_header("templates/_alerts.tpl") + "# A Prometheus rule file (rule_files:).\n" + body


def render_all(helm: Path) -> dict[str, str]:
    """Every file under manifests/, by path relative to it."""
    rendered = {directory: render(helm, f"certificates.mode={mode}") for directory, mode in MODES.items()}
    crds = [d for d in rendered[""] if d.source.startswith("crds/")]
    kept = [d for d in rendered[""] if KEPT in d.text]  # what Helm keeps at uninstall goes with the CRDs
    rendered = {directory: [d for d in documents if d not in crds and d not in kept]
                for directory, documents in rendered.items()}  # fmt: skip
    shared = set.intersection(*(set(documents) for documents in rendered.values()))
    # Keep the chart's order: the first mode's documents, shared ones only.
    common = [d for d in rendered[""] if d in shared]
    files: dict[str, str] = {}
    crd_files = write_group(files, "", crds)  # crds/NAME.yaml
    kept_files = write_group(files, "crds", kept)
    files["crds/kustomization.yaml"] = kustomization(
        HEADERS["crds"], [], [name.removeprefix("crds/") for name in crd_files] + kept_files
    )
    for name in crd_files:  # paths in crds/kustomization.yaml are relative to crds/
        assert name.startswith("crds/"), name
    base_files = write_group(files, "base", common)
    files["base/kustomization.yaml"] = kustomization(HEADERS["base"], [], base_files)
    for directory, documents in rendered.items():
        own = write_group(files, directory, [d for d in documents if d not in shared])
        base = "base" if directory == "" else "../base"
        files[f"{directory}/kustomization.yaml".lstrip("/")] = kustomization(HEADERS[directory], [base], own)
    monitoring = [d for d in render(helm, *MONITORING) if d.source in MONITORING_TEMPLATES]
    monitoring_files = write_group(files, "monitoring", monitoring)
    files["monitoring/kustomization.yaml"] = kustomization(HEADERS["monitoring"], [], monitoring_files)
    files["monitoring/alerts.yaml"] = alert_rule_file(monitoring)
    return files


def committed() -> dict[str, str]:
    return {str(path.relative_to(MANIFESTS)): path.read_text() for path in MANIFESTS.rglob("*") if path.is_file()}


def check(files: dict[str, str]) -> int:
    """Exit status 1 with a unified diff when manifests/ is not what the chart renders."""
    on_disk = committed()
    diff: list[str] = []
    for path in sorted(files.keys() | on_disk.keys()):
        old, new = on_disk.get(path, ""), files.get(path, "")
        if old != new:
            diff += difflib.unified_diff(
                old.splitlines(keepends=True), new.splitlines(keepends=True), f"manifests/{path}", f"rendered/{path}"
            )
    if diff:
        sys.stdout.writelines(diff)
        print("manifests/ differs from the chart's render: run `make manifests` and commit the result", file=sys.stderr)
        return 1
    return 0


def write(files: dict[str, str]) -> None:
    for path in committed().keys() - files.keys():
        (MANIFESTS / path).unlink()
    for path, text in files.items():
        target = MANIFESTS / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    for directory in sorted((p for p in MANIFESTS.rglob("*") if p.is_dir()), reverse=True):
        if not any(directory.iterdir()):
            directory.rmdir()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="compare with manifests/ instead of writing it")
    parser.add_argument("--helm", type=Path, help="helm binary (default: build or find the pinned one)")
    args = parser.parse_args(argv)
    files = render_all(args.helm or helm_binary())
    if args.check:
        return check(files)
    write(files)
    return 0


if __name__ == "__main__":
    sys.exit(main())
