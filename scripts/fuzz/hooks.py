"""Schemathesis hooks for fortfolio's contract fuzzing (scripts/fuzz/run.sh).

Authentication: every request carries a bearer token of the fuzz account.
The token is fetched by logging in, kept, and fetched again whenever an
answer is 401 (the fuzzer itself logs out, ends sessions and changes
nothing else about the account: its password is not in the document).

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


@schemathesis.auth(refresh_interval=None, retry_on=[401])
class FuzzAccount:
    def get(self, case, context):
        r = requests.post(
            f"{BASE}/api/v1/auth/login",
            json={"email": EMAIL, "password": PASSWORD},
            timeout=30,
        )
        r.raise_for_status()
        return r.json()["access_token"]

    def set(self, case, data, context):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"


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
