"""Keep API keys out of everything rae writes: the store, logs, reports, artifacts and MLflow.

rae never holds a key in its settings (a model names the environment variable that holds it), so a key can reach
rae's output only through text rae does not control: an error message from a server or a library that quotes the
request. Every such text passes through ``redact`` before rae prints, logs or stores it: the values of the
environment variables that hold keys, and anything shaped like a key or a bearer token, become ``[redacted]``.
"""

import functools
import logging
import os
import re

REDACTED = "[redacted]"
SECRET_NAME = re.compile(r"(API_?KEY|_KEY|TOKEN|SECRET|PASSWORD)$", re.IGNORECASE)
SECRET_SHAPES = (
    re.compile(r"\b(?:sk|rk|pk)-[A-Za-z0-9_\-]{16,}"),
    re.compile(r"(?i)\bbearer\s+[A-Za-z0-9_\-.=+/]{8,}"),
    re.compile(r"(?i)(\"?(?:api[_-]?key|authorization|x-api-key)\"?\s*[:=]\s*\"?)[^\"\s,}]{8,}"),
)


def secret_values() -> tuple[str, ...]:
    """The values of environment variables whose names say they hold a secret (longest first), read from the
    environment each time: a key set later is redacted too."""
    return _secret_values_of(tuple(os.environ.items()))


@functools.lru_cache(maxsize=8)
def _secret_values_of(environment: tuple[tuple[str, str], ...]) -> tuple[str, ...]:
    values = {value for name, value in environment if _secret_name(name)}
    return tuple(sorted((value for value in values if len(value) >= 8), key=len, reverse=True))


@functools.lru_cache(maxsize=4096)
def _secret_name(name: str) -> bool:
    return SECRET_NAME.search(name) is not None


def redact(text: str) -> str:
    for value in secret_values():
        text = text.replace(value, REDACTED)
    for shape in SECRET_SHAPES:
        text = shape.sub(lambda m: (m.group(1) if m.lastindex else "") + REDACTED, text)
    return text


class RedactingFilter(logging.Filter):
    """A logging filter that redacts every record passing through the handler it is on."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        return True


def redacting_log_handler(level: int = logging.WARNING) -> logging.Handler:
    handler = logging.StreamHandler()
    handler.setLevel(level)
    handler.addFilter(RedactingFilter())
    return handler
