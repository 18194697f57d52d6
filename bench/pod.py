"""The "typical Pod" every measurement uses, so the core and HTTP figures describe the same work.

It is shaped like what a mutating webhook really receives from a Deployment: made by a
ReplicaSet (generateName, ownerReferences), already defaulted by the API server and mutated by
the built-in admission plugins (the ServiceAccount token volume, default tolerations).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

Json = dict[str, Any]

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
NAMESPACE = "agents"
UID = "0d7e5c1a-3f4b-4a9e-8c2d-6b1a0f9e8d7c"

_TOKEN_VOLUME = "kube-api-access-7x2kq"
_TOKEN_MOUNT = {
    "name": _TOKEN_VOLUME,
    "readOnly": True,
    "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
}


def _container(name: str, image: str, port: int, env: dict[str, str], mounts: list[Json]) -> Json:
    return {
        "name": name,
        "image": image,
        "ports": [{"name": "http" if port == 8080 else "metrics", "containerPort": port, "protocol": "TCP"}],
        "env": [{"name": key, "value": value} for key, value in env.items()],
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
        "volumeMounts": [*mounts, dict(_TOKEN_MOUNT)],
        "readinessProbe": {
            "httpGet": {"path": "/ready", "port": port, "scheme": "HTTP"},
            "periodSeconds": 10,
            "timeoutSeconds": 1,
            "successThreshold": 1,
            "failureThreshold": 3,
        },
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
        "imagePullPolicy": "IfNotPresent",
    }


def typical_pod() -> Json:
    """Built anew on each call, so no measurement can leak a mutation into the next."""
    agent_env = {"LOG_LEVEL": "info", "AGENT_NAME": "sales", "MAX_TOKENS": "4096", "REGION": "westeurope"}
    exporter_env = {"EXPORTER_PORT": "9102", "SCRAPE_INTERVAL": "15s"}
    pod: Json = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": "sales-agent-6f9c8d7b5-",
            "namespace": NAMESPACE,
            "labels": {
                "app.kubernetes.io/name": "sales-agent",
                "app.kubernetes.io/part-of": "agents",
                "app.kubernetes.io/version": "1.4.2",
                "pod-template-hash": "6f9c8d7b5",
            },
            "annotations": {
                "entra.io/agent-identity": "sales-agent",
                "prometheus.io/scrape": "true",
                "prometheus.io/port": "9102",
                "kubectl.kubernetes.io/restartedAt": "2024-11-20T09:14:03Z",
            },
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": "sales-agent-6f9c8d7b5",
                    "uid": "5a0b8e3c-2d41-4f7a-9c6e-1b2d3f4a5c6d",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "serviceAccountName": "sales-agent",
            "serviceAccount": "sales-agent",
            "volumes": [
                {"name": "agent-config", "configMap": {"name": "sales-agent-config", "defaultMode": 420}},
                {
                    "name": _TOKEN_VOLUME,
                    "projected": {
                        "defaultMode": 420,
                        "sources": [
                            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                            {
                                "downwardAPI": {
                                    "items": [
                                        {
                                            "path": "namespace",
                                            "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"},
                                        }
                                    ]
                                }
                            },
                        ],
                    },
                },
            ],
            "containers": [
                _container(
                    "agent",
                    "registry.example.com/agents/sales:1.4.2",
                    8080,
                    agent_env,
                    [{"name": "agent-config", "mountPath": "/etc/agent", "readOnly": True}],
                ),
                _container("exporter", "registry.example.com/agents/exporter:0.9.0", 9102, exporter_env, []),
            ],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "securityContext": {"runAsNonRoot": True, "fsGroup": 2000},
            "schedulerName": "default-scheduler",
            "tolerations": [
                {
                    "key": f"node.kubernetes.io/{taint}",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                }
                for taint in ("not-ready", "unreachable")
            ],
            "priority": 0,
            "enableServiceLinks": True,
            "preemptionPolicy": "PreemptLowerPriority",
        },
    }
    return pod


def typical_review() -> Json:
    """examples/admission-review.json with its Pod replaced by the typical one."""
    review: Json = json.loads((EXAMPLES / "admission-review.json").read_text(encoding="utf-8"))
    review["request"]["uid"] = UID
    review["request"]["namespace"] = NAMESPACE
    review["request"]["object"] = typical_pod()
    return review


def review_body() -> bytes:
    """The exact bytes wrk POSTs: compact JSON, as the API server sends it."""
    return json.dumps(typical_review(), separators=(",", ":")).encode()
