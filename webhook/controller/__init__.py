"""The provisioning controller: creates managed `AgentIdentity` objects in Entra, as their blueprint.

A second process (`entra-webhook controller`) beside the injector. It shares the pure core
(`webhook.common.models`); the injector never imports this package.
"""
