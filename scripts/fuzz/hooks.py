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

import os

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


@schemathesis.hook
def after_call(context, case, response):
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
