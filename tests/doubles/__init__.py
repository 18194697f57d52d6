"""Test doubles of the services nothing here can run: Entra's token endpoint and Microsoft Graph.

Both speak real HTTPS on loopback and keep the documented contract strictly: they reject what
the real service rejects, with its status codes, error codes and error body shapes.
"""
