"""A form-level error that names the input it belongs to, shown next to that input."""

from __future__ import annotations


class FormError(ValueError):
    """Input that breaks a rule; `field` names the form input, the message says why."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message
