"""Kubernetes mutating admission webhook that gives AI-agent Pods a Microsoft Entra Agent ID."""

__version__ = "0.1.0"
