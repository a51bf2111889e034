"""Why a request is refused, said by the layer that finds out (a service, a rule) without knowing HTTP.

The edge maps each kind to its status in one place (common.api.errors.STATUS_OF); the message is the
caller's, so it says what to do next, and `param` names the parameter or field at fault when one is.
"""
from __future__ import annotations


class Refused(Exception):
    def __init__(self, message: str, param: str | None = None):
        super().__init__(message)
        self.message, self.param = message, param


class NotFound(Refused):
    """No such thing, or none the caller may see (the two answer alike)."""


class Forbidden(Refused):
    """The caller may see it but not do this to it, or names what no request may reach."""


class Invalid(Refused):
    """A parameter or body that breaks a rule; `param` names it."""


class Conflict(Refused):
    """The thing cannot do this in its present state (a model without usable weights)."""


class TooLarge(Refused):
    """More bytes or items than a request may bring."""
