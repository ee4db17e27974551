"""Credentials never shown: database URLs as records, reports and messages may print them.

:func:`redact` turns ``postgresql+psycopg://user:secret@host:5432/db`` into
``postgresql+psycopg://user:***@host:5432/db`` (SQLAlchemy's own rendering, which also keeps the
driver and query), and also masks a ``password=`` given in the query string (libpq accepts it
there). :func:`redact_text` does the same for every URL found inside a longer text, such as an
error message.
"""

from __future__ import annotations

import re

__all__ = ["MASK", "redact", "redact_text"]

#: What a password is replaced with.
MASK = "***"

#: Query parameters that carry a secret (libpq's ``password`` and ``sslpassword``).
_SECRET_PARAMS = ("password", "sslpassword")
# scheme://user:password@host: the password runs to the last "@" before the path (a raw "@" or ":"
# in it is masked whole)
_USERINFO = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@]*):(?P<pw>[^\s/]*)@")
# ?password=... in a URL's query, or password=... in a libpq "key=value" connection string
_QUERY_SECRET = re.compile(r"(?P<head>(?:^|[?&\s])(?:%s)=)(?P<pw>[^&\s#]*)" % "|".join(_SECRET_PARAMS), re.IGNORECASE)


def _mask(text: str) -> str:
    text = _USERINFO.sub(lambda m: f"{m['head']}:{MASK}@", text)
    return _QUERY_SECRET.sub(lambda m: m["head"] + (MASK if m["pw"] else ""), text)


def redact(uri: str | None) -> str | None:
    """A database URL with its password (in the user part or the query) replaced by ``***``.

    Args:
        uri: a SQLAlchemy URL (or None).

    Returns:
        The URL to show; None for None. A URL without a password comes back as given.
    """
    if uri is None:
        return None
    text = str(uri)
    try:
        # SQLAlchemy is heavy to import (0.15 s) and only needed when a URL is shown
        from sqlalchemy.engine.url import make_url

        text = make_url(text).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy can parse: masked below all the same
        pass
    # then the query's password, and what a raw "@" in a password may have left of it
    return _mask(text)


def redact_text(text: str | None) -> str | None:
    """Every ``scheme://user:password@...`` and ``password=...`` query value in a text, masked.

    Args:
        text: free text (an error message, a log line); None stays None.

    Returns:
        The text with each password replaced by ``***``.
    """
    if text is None:
        return None
    return _mask(str(text))
