"""One HTTP POST to an operator's URL (online CDR export, the ``*http_post`` actions).

Blocking on purpose, run in a thread by the callers: the standard library's client is enough for
a few posts a second, and no HTTP client library has to be kept in step with the event loop.
"""

from __future__ import annotations

import urllib.error
import urllib.request

JSON_CONTENT_TYPE = "application/json"


class DeliveryError(Exception):
    """The receiver did not take the post (not reachable, or an answer other than 2xx)."""


def http_post(url: str, body: bytes, content_type: str, timeout_s: float) -> None:
    """One POST. Anything but a 2xx answer is a :class:`DeliveryError` naming the URL."""
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:  # noqa: S310 - operator's URL
            resp.read()
    except urllib.error.HTTPError as exc:
        raise DeliveryError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeliveryError(f"{url}: {reason}") from None


__all__ = ["JSON_CONTENT_TYPE", "DeliveryError", "http_post"]
