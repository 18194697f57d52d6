"""`check` of an install: the CRDs, the webhook configuration and its certificate, the webhook reached through
the API server (a Service, or a URL), the controller's Lease and health."""

from __future__ import annotations

import datetime as dt
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from webhook.common.models import GROUP, INSTALL_CRDS, KINDS, PLURALS, VERSION
from webhook.common.text import clip
from webhook.ops.certificates import SOON, Verdict, bundle_pem, issued, served
from webhook.ops.cluster import Cluster, Unreachable, items, labels_of, path, timestamp
from webhook.ops.report import Report
from webhook.ops.selectors import matches, satisfying

CRD_FIX = f"{INSTALL_CRDS} (Helm installs them with the chart)"
SYSTEM_NAMESPACES = ("kube-system", "kube-node-lease", "kube-public")
PROBE = "entra-webhook-check"


@dataclass(frozen=True)
class Names:
    """Where the install keeps what `check` looks at (the chart's and the manifests' names by default)."""

    webhook_configuration: str = "entra-webhook"
    tls_secret: str = "entra-webhook-tls"
    lease_namespace: str = "entra-system"
    lease_name: str = "entra-webhook-controller"


def api_server(report: Report, cluster: Cluster) -> tuple[tuple[int, int], dt.datetime] | None:
    """The server's version and clock; None (and a failure) when it does not answer."""
    try:
        answer = cluster.get("/version")
    except Unreachable as error:
        report.fail("API server", f"no answer from {cluster.server} ({error})", "check the kubeconfig and the network")
        return None
    if not answer.ok or not isinstance(answer.body, dict):
        report.fail("API server", f"{cluster.server} answered {answer.status}: {answer.message}",
                    "check the kubeconfig's credentials")  # fmt: skip
        return None
    body = answer.body
    report.ok("API server", f"Kubernetes {body.get('gitVersion', '?')} at {cluster.server}")
    minor = int("".join(filter(str.isdigit, str(body.get("minor", "0")))) or 0)
    major = int("".join(filter(str.isdigit, str(body.get("major", "1")))) or 1)
    return (major, minor), cluster.now(answer)


def crds(report: Report, cluster: Cluster) -> bool:
    healthy = True
    for kind in KINDS:
        name = f"{PLURALS[kind]}.{GROUP}"
        answer = cluster.get(path("apis", "apiextensions.k8s.io", "v1", "customresourcedefinitions", name))
        if answer.status == 404:
            report.fail(f"CRD {name}", f"not installed: no {kind} can exist", CRD_FIX)
            healthy = False
            continue
        if not answer.ok:
            report.fail(f"CRD {name}", f"cannot read it: {answer.status} {answer.message}", "use an admin kubeconfig")
            healthy = False
            continue
        crd = answer.body
        conditions = {c.get("type"): c for c in (crd.get("status") or {}).get("conditions") or []}
        established = conditions.get("Established", {})
        served = [v.get("name") for v in (crd.get("spec") or {}).get("versions") or [] if v.get("served")]
        if established.get("status") != "True":
            said = established.get("message") or "not Established"
            report.fail(f"CRD {name}", f"not established: {clip(said, 200)}", "kubectl describe crd " + name)
            healthy = False
        elif (crd.get("metadata") or {}).get("deletionTimestamp"):
            report.fail(f"CRD {name}", "being deleted, and every resource of its kind with it",
                        "see docs/operations/uninstall.md; re-apply it once it is gone: " + CRD_FIX)  # fmt: skip
            healthy = False
        elif VERSION not in served:
            report.fail(f"CRD {name}", f"does not serve {VERSION} (serves {', '.join(served) or 'nothing'})", CRD_FIX)
            healthy = False
        else:
            report.ok(f"CRD {name}", f"established, serving {VERSION}")
    return healthy


def webhook_configuration(report: Report, cluster: Cluster, names: Names, now: dt.datetime) -> dict[str, Any] | None:
    """The MutatingWebhookConfiguration, its caBundle against the serving certificate, and the webhook reached
    the way the API server reaches it."""
    name = names.webhook_configuration
    subject = f"MutatingWebhookConfiguration {name}"
    answer = cluster.get(path("apis", "admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations", name))
    if answer.status == 404:
        report.fail(subject, "not found: no Pod is sent to the webhook",
                    "install the webhook (helm install, or kubectl apply -k manifests/...), or pass "
                    "--webhook-configuration NAME")  # fmt: skip
        return None
    if not answer.ok or not isinstance(answer.body, dict):
        report.fail(subject, f"cannot read it: {answer.status} {answer.message}", "use an admin kubeconfig")
        return None
    configuration: dict[str, Any] = answer.body
    hooks = [hook for hook in configuration.get("webhooks") or [] if isinstance(hook, dict)]
    if not hooks:
        report.fail(subject, "holds no webhook", "re-apply the install")
        return None
    checked: set[str] = set()
    for hook in hooks:
        entry = f"webhook {hook.get('name')}"
        client = hook.get("clientConfig") or {}
        ca_pem = bundle_pem(client.get("caBundle"))
        if ca_pem is None:
            said = "has no caBundle" if not client.get("caBundle") else "has a caBundle that is not base64 PEM"
            report.fail(entry, f"{said}: the API server cannot trust the webhook's certificate",
                        "self-managed mode writes it, cert-manager's cainjector writes it in cert-manager mode; "
                        "with your own certificate set certificates.caBundle (Helm) or patch it in")  # fmt: skip
            continue
        if hook.get("failurePolicy") == "Ignore":
            report.warn(entry, "failurePolicy Ignore: while the webhook is down, Pods start without their sidecar",
                        "webhook.failurePolicy=Fail (the default)")  # fmt: skip
        if hook.get("sideEffects") not in {"None", "NoneOnDryRun"}:
            report.warn(entry, f"sideEffects {hook.get('sideEffects')}: dry runs cannot reach it, so check cannot",
                        "sideEffects: NoneOnDryRun (the install's)")  # fmt: skip
        target = client.get("url") or str(client.get("service"))
        if target in checked:
            continue
        checked.add(target)
        if client.get("url"):
            _url(report, str(client["url"]), ca_pem, cluster.timeout, now)
        elif isinstance(client.get("service"), dict):
            _service(report, cluster, client["service"], ca_pem, names, now)
    return configuration


def _expiry(report: Report, subject: str, verdict: Verdict, now: dt.datetime, what: str) -> None:
    if verdict.problem:
        report.fail(subject, verdict.problem,
                    "make the caBundle the CA that signed the serving certificate (self-managed and cert-manager "
                    "modes keep it current; see the webhook's logs)")  # fmt: skip
    elif verdict.expires and verdict.expires - now < SOON:
        report.warn(subject, f"{what}, but it expires on {verdict.expires:%Y-%m-%d %H:%M} UTC",
                    "renew it (self-managed and cert-manager modes renew it by themselves)")  # fmt: skip
    else:
        report.ok(subject, what)


def _url(report: Report, url: str, ca_pem: bytes, timeout: float, now: dt.datetime) -> None:
    """A webhook called by URL (the API server dials it directly): checked from here, as the API server would."""
    subject = f"webhook URL {url}"
    verdict = served(url, ca_pem, timeout)
    if verdict.problem and verdict.problem.startswith("no TLS answer"):
        report.fail(subject, verdict.problem, "start the webhook, or fix the URL in the webhook configuration")
        return
    _expiry(report, subject, verdict, now, "the caBundle trusts the certificate it serves")
    if verdict.problem:
        return  # /readyz would fail the same handshake
    parts = urlsplit(url)
    ready = f"{parts.scheme}://{parts.netloc}/readyz"
    context = ssl.create_default_context(cadata=ca_pem.decode(errors="replace"))
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context))
    try:
        with opener.open(ready, timeout=timeout) as response:
            report.ok(subject, f"{ready} answers {response.status}")
    except urllib.error.HTTPError as error:
        report.fail(subject, f"{ready} answers {error.code}: {clip(error.read().decode(errors='replace'), 200)}",
                    "the webhook is not ready: see its logs")  # fmt: skip
    except (OSError, ssl.SSLError) as error:
        report.fail(subject, f"{ready} does not answer ({clip(str(error), 200)})", "start the webhook")


def _service(
    report: Report, cluster: Cluster, service: dict[str, Any], ca_pem: bytes, names: Names, now: dt.datetime
) -> None:
    """A webhook behind a Service: its endpoints, /readyz through the API server's service proxy (the way the
    API server reaches it), and the serving certificate in its Secret against the caBundle."""
    namespace, name, port = str(service.get("namespace")), str(service.get("name")), service.get("port", 443)
    subject = f"Service {namespace}/{name}"
    found = cluster.get(path("api", "v1", "namespaces", namespace, "services", name))
    if found.status == 404:
        report.fail(subject, "not found: the API server has nowhere to send Pods",
                    "re-apply the install, or fix clientConfig.service")  # fmt: skip
        return
    endpoints = cluster.get(path("api", "v1", "namespaces", namespace, "endpoints", name))
    ready = [a for subset in (endpoints.body or {}).get("subsets") or [] for a in subset.get("addresses") or []]
    if not ready:
        report.fail(subject, "no ready endpoint: no webhook Pod is ready, so Pods it selects cannot be created",
                    f"kubectl -n {namespace} get pods,deployments; the webhook Pods' logs")  # fmt: skip
    else:
        ports = (found.body.get("spec") or {}).get("ports") or [] if isinstance(found.body, dict) else []
        named = next((p.get("name") for p in ports if p.get("port") == port and p.get("name")), port)  # the proxy's way
        proxy = cluster.get(path("api", "v1", "namespaces", namespace, "services", f"https:{name}:{named}", "proxy",
                                 "readyz"))  # fmt: skip
        if proxy.ok:
            report.ok(subject, f"{len(ready)} ready endpoint(s); /readyz through the API server answers {proxy.status}")
        else:
            report.fail(subject, f"/readyz through the API server answers {proxy.status}: {clip(proxy.message, 200)}",
                        f"kubectl -n {namespace} logs of the webhook Pods")  # fmt: skip
    secret = cluster.get(path("api", "v1", "namespaces", namespace, "secrets", names.tls_secret))
    certificate = f"Secret {namespace}/{names.tls_secret}"
    if secret.status == 404:
        report.fail(certificate, "not found: the webhook has no serving certificate",
                    "self-managed and cert-manager modes make it; with your own, create it from "
                    "`entra-webhook certs --out DIR` (tls.crt, tls.key), or pass --tls-secret NAME")  # fmt: skip
        return
    if not secret.ok:
        report.warn(certificate, f"cannot read it ({secret.status}): the caBundle was not compared with the "
                    "serving certificate", "run check as someone who may read that Secret")  # fmt: skip
        return
    import base64

    data = (secret.body or {}).get("data") or {}
    if "tls.crt" not in data:
        report.fail(certificate, "holds no tls.crt", "a kubernetes.io/tls Secret holds tls.crt and tls.key")
        return
    verdict = issued(base64.b64decode(data["tls.crt"]), ca_pem, f"{name}.{namespace}.svc", now)
    _expiry(report, certificate, verdict, now, f"the caBundle trusts its certificate for {name}.{namespace}.svc")


def admission(report: Report, cluster: Cluster, configuration: dict[str, Any]) -> None:
    """A dry-run Pod the configuration sends to the webhook: the whole path, through the API server."""
    namespaces = items(cluster.get("/api/v1/namespaces"))
    ordered = sorted(namespaces, key=lambda n: (n["metadata"]["name"] != "default", n["metadata"]["name"]))
    probe = None
    for hook in configuration.get("webhooks") or []:
        pod_labels = satisfying(hook.get("objectSelector"))
        for namespace in ordered:
            name = namespace["metadata"]["name"]
            if pod_labels is None or name in SYSTEM_NAMESPACES or namespace.get("status", {}).get("phase") != "Active":
                continue
            if matches(hook.get("namespaceSelector"), labels_of(namespace)):
                probe = (hook.get("name"), name, pod_labels)
                break
        if probe:
            break
    subject = "admission through the API server"
    if probe is None:
        report.warn(subject, "no namespace is selected by the webhook configuration yet, so nothing was tried",
                    "label one: kubectl label namespace NAME entra.io/inject=enabled")  # fmt: skip
        return
    hook_name, namespace_name, pod_labels = probe
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": PROBE, "namespace": namespace_name, "labels": pod_labels},
        "spec": {"containers": [{"name": "probe", "image": "registry.k8s.io/pause:3.9"}]},
    }
    answer = cluster.dry_run_create(path("api", "v1", "namespaces", namespace_name, "pods"), pod)
    where = f'a dry-run Pod in namespace "{namespace_name}" ({hook_name})'
    if answer.ok:
        heard = [w for w in answer.warnings() if f'namespace "{namespace_name}"' in w]
        annotations = ((answer.body or {}).get("metadata") or {}).get("annotations") or {}
        if heard or "entra.io/status" in annotations:
            report.ok(subject, f"the webhook answered {where}")
        else:
            report.fail(subject, f"{where} was admitted without a word from the webhook (failurePolicy Ignore "
                        "hides a webhook that cannot be reached)", "see the lines above, and its logs")  # fmt: skip
        return
    said = answer.message
    if "denied the request" in said:
        report.warn(subject, f"the webhook denied {where}: {clip(said, 300)}")
    elif "failed calling webhook" in said or "failed to call webhook" in said:
        report.fail(subject, f"the API server cannot call the webhook for {where}: {clip(said, 400)}",
                    _call_fix(said))  # fmt: skip
    else:
        report.warn(subject, f"the API server refused {where} ({answer.status}): {clip(said, 300)}")


def _call_fix(said: str) -> str:
    if "x509" in said or "certificate" in said:
        return "the caBundle does not match the serving certificate: see the certificate lines above"
    if "no endpoints" in said or "connection refused" in said or "no route" in said:
        return "no webhook Pod answers: start it, or look at its Deployment and logs"
    if "deadline exceeded" in said or "timeout" in said.lower():
        return "the webhook did not answer within timeoutSeconds: see its logs and metrics, or the network in between"
    return "see the webhook's logs"


def controller(report: Report, cluster: Cluster, names: Names, now: dt.datetime, managed: int) -> None:
    """The leader's Lease (renewed within its duration), then its /healthz and /readyz through the API server."""
    lease_path = path("apis", "coordination.k8s.io", "v1", "namespaces", names.lease_namespace, "leases",
                      names.lease_name)  # fmt: skip
    subject = f"controller (Lease {names.lease_namespace}/{names.lease_name})"
    waiting = f"{managed} managed AgentIdentit{'y waits' if managed == 1 else 'ies wait'} for it"
    install = ("install it (Helm: controller.enabled=true; it is in every kustomize overlay) and look at its Pods: "
               f"kubectl -n {names.lease_namespace} get pods")  # fmt: skip
    answer = cluster.get(lease_path)
    if answer.status == 404:
        said = "no controller has ever led"
        if managed:
            report.fail(subject, f"{said}, and {waiting}", install)
        else:
            report.warn(subject, f"{said}: AgentIdentities with sponsors would not be created", install)
        return
    spec = (answer.body or {}).get("spec") or {}
    holder = spec.get("holderIdentity") or ""
    renewed = timestamp(spec.get("renewTime"))
    duration = float(spec.get("leaseDurationSeconds") or 15)
    if not holder or renewed is None:
        (report.fail if managed else report.warn)(subject, "no leader: the last one released the Lease", install)
        return
    age = (now - renewed).total_seconds()
    if age > duration:
        report.fail(subject, f"leader {holder} has not renewed it for {age:.0f}s (it lasts {duration:.0f}s): it "
                    "stopped, or cannot reach the API server",
                    f"kubectl -n {names.lease_namespace} get pods, and the controller's logs")  # fmt: skip
        return
    report.ok(subject, f"leader {holder}, renewed {max(age, 0):.0f}s ago")
    _leader_health(report, cluster, names, holder)


def _leader_health(report: Report, cluster: Cluster, names: Names, holder: str) -> None:
    pod_name = holder.rsplit("_", 1)[0]
    subject = f"controller leader {holder}"
    pod = cluster.get(path("api", "v1", "namespaces", names.lease_namespace, "pods", pod_name))
    if not pod.ok:
        report.ok(subject, f"not a Pod in namespace {names.lease_namespace} (it runs outside the cluster): its Lease "
                  "is its health")  # fmt: skip
        return
    ports = [p for c in (pod.body.get("spec") or {}).get("containers") or [] for p in c.get("ports") or []]
    port = next((p.get("containerPort") for p in ports if p.get("name") == "metrics"), 9090)
    said = []
    for probe in ("healthz", "readyz"):
        answer = cluster.get(path("api", "v1", "namespaces", names.lease_namespace, "pods", f"{pod_name}:{port}",
                                  "proxy", probe))  # fmt: skip
        body = answer.body if isinstance(answer.body, dict) and answer.body.get("kind") != "Status" else {}
        reason = body.get("reason") or body.get("detail")  # the controller's own answer, not a proxy error
        if not answer.ok:
            said_now = f"/{probe} through the API server answers {answer.status}: {clip(reason or answer.message, 200)}"
            (report.fail if answer.status == 503 and reason else report.warn)(
                subject, said_now, f"kubectl -n {names.lease_namespace} logs {pod_name}"
            )
            return
        said.append(f"/{probe}: {reason or answer.status}")
    report.ok(subject, "; ".join(said))
