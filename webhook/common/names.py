"""Kubernetes names as the API server checks them, so a name is judged the same way everywhere we read one."""

from __future__ import annotations

import re

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
SUBDOMAIN_LIMIT = 253


def is_object_name(value: str) -> bool:
    """An object's metadata.name (a DNS subdomain): what an annotation or a spec field may name."""
    return len(value) <= SUBDOMAIN_LIMIT and DNS_SUBDOMAIN.fullmatch(value) is not None
