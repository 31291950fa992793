"""Schemathesis hooks for fortfolio's contract fuzzing (scripts/fuzz/run.sh).

Authentication: every request carries a bearer token of the fuzz account.
The token is fetched by logging in and kept until an answer sent with it is
`401 unauthorized` (the fuzzer logs out and ends sessions itself); the
next request logs in again. The account's password is not in the document,
so the fuzzer cannot change it.

One check of our own: a request the document says is valid must never be
refused as malformed (`validation_failed`, `invalid_json`). Business-rule
refusals of valid requests (a weak password, more shares sold than held,
too little history) are allowed by the per-operation settings in
schemathesis.toml; this check keeps that allowance from hiding a schema
that is looser than the server.
"""

import atexit
import json
import os
import threading
from collections import Counter

import requests
import schemathesis

BASE = os.environ["FORTFOLIO_FUZZ_BASE"]
EMAIL = os.environ["FORTFOLIO_FUZZ_EMAIL"]
PASSWORD = os.environ["FORTFOLIO_FUZZ_PASSWORD"]


_token = {"value": None}


def _login():
    r = requests.post(
        f"{BASE}/api/v1/auth/login",
        json={"email": EMAIL, "password": PASSWORD},
        timeout=30,
    )
    r.raise_for_status()
    return r.json()["access_token"]


@schemathesis.auth(refresh_interval=None, retry_on=[])
class FuzzAccount:
    """The fuzz account's access token, kept until the server says it is
    no longer valid (`401 unauthorized`: logged out, session ended)."""

    def get(self, case, context):
        if _token["value"] is None:
            _token["value"] = _login()
        return _token["value"]

    def set(self, case, data, context):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"


# What the fuzzer exercised: requests per operation, per query parameter
# and per header we document, and answers per status; written at exit.
_seen = {"operations": Counter(), "query": Counter(), "headers": Counter(), "statuses": Counter()}
_seen_lock = threading.Lock()
_HEADERS = ("Idempotency-Key", "X-CSRF-Token", "X-Device-Token", "X-Request-Id")
_QUERY = ("limit", "cursor", "symbol", "since", "history")


def _write_seen():
    path = os.environ.get("FORTFOLIO_FUZZ_EXERCISED")
    if path:
        with open(path, "w") as f:
            json.dump({k: dict(sorted(v.items())) for k, v in _seen.items()}, f, indent=1)


atexit.register(_write_seen)


@schemathesis.hook
def after_call(context, case, response):
    with _seen_lock:
        _seen["operations"][f"{case.method} {case.path}"] += 1
        for name in (case.query or {}):
            if name in _QUERY:
                _seen["query"][f"{case.path}?{name}"] += 1
        for name in (case.headers or {}):
            if name in _HEADERS:
                _seen["headers"][name] += 1
        _seen["statuses"][str(response.status_code)] += 1
    if response.status_code != 401:
        return
    sent = (case.headers or {}).get("Authorization", "")
    if _token["value"] and sent == f"Bearer {_token['value']}":
        try:
            code = response.json().get("code")
        except ValueError:
            return
        if code == "unauthorized":
            _token["value"] = None


MALFORMED = {"validation_failed", "invalid_json"}


@schemathesis.check
def valid_requests_are_not_refused_as_malformed(ctx, response, case):
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return None
    content_type = response.headers.get("content-type", "")
    if isinstance(content_type, list):
        content_type = content_type[0] if content_type else ""
    if not content_type.startswith("application/problem+json"):
        return None
    try:
        code = response.json().get("code")
    except ValueError:
        return None
    if code in MALFORMED:
        raise AssertionError(
            f"a request the document calls valid was refused as `{code}`: {response.json().get('detail')}"
        )
    return None
