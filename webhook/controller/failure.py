"""How a pass stops: `Failure` (reported, then retried) and `Retry` (reported already)."""

from __future__ import annotations

from webhook.controller import advice
from webhook.controller.entra import GraphError


class Retry(Exception):
    """Reported in the status already; try again after a backoff, or after `after` seconds."""

    def __init__(self, reason: str, after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.after = after


class Failure(Exception):
    """A pass that cannot go on: reported as conditions and an Event, then retried."""

    def __init__(
        self,
        reason: str,
        message: str,
        after: float | None = None,  # what Graph asked for (Retry-After)
        *,
        forget_intent: bool = False,  # a create refused outright: nothing to wait for
        unusable: bool = False,  # the identity is gone or not the blueprint's: Pods may not use it
    ) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
        self.after = after
        self.forget_intent = forget_intent
        self.unusable = unusable

    @classmethod
    def of_graph(cls, error: GraphError, *, forget_intent: bool = False) -> Failure:
        # A blueprint refused a read of an identity is refused that identity: not one of its own.
        unusable = error.code == advice.DENIED and error.operation == "get"
        return cls(error.code, advice.refusal(error), error.retry_after, forget_intent=forget_intent, unusable=unusable)

    @classmethod
    def of_token(cls, code: str, message: str, who: str, directory: bool = False) -> Failure:
        """A token request refused (its AADSTS code) or not answered, as `who`."""
        return cls(code, f"token request as {who} failed: {message} ({advice.token_advice(code, directory)})")
