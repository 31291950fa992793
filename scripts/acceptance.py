#!/usr/bin/env python3
"""Acceptance checks against the release binary, as a user would drive it.

    cargo build --release && python3 scripts/acceptance.py [section ...]

Sections: hardening foundation defenses twofactor events lifecycle portfolio predictions scaled openapi packaging.
The packaging section runs scripts/release.sh, lintian, and scripts/package-test.sh,
which installs the .deb on this machine as root and removes every trace.
The openapi section also runs the contract fuzzing (scripts/fuzz/run.sh 500;
set SCHEMATHESIS to schemathesis's `st`) and opens /docs with chromedriver.
The scaled section starts its own PostgreSQL (initdb, as user postgres) and
redis-server, so it can stop and start them.
Needs: python3 with requests, pyotp and aiosmtpd; zbarimg (zbar-tools).
Each check prints PASS/FAIL with the figures it measured; the exit code is
the number of failures. Every server runs on loopback with a fresh data dir.
"""

import base64
import hashlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import concurrent.futures as cf

import pyotp
import requests
import urllib3

urllib3.disable_warnings()

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "fortfolio")
PASSWORD = "violet-anchor-tundra-41"
FAILURES = []


def check(name, ok, detail=""):
    print(f"{'PASS' if ok else 'FAIL'}  {name}" + (f"  [{detail}]" if detail else ""), flush=True)
    if not ok:
        FAILURES.append(name)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Server:
    """`fortfolio serve` in its own data dir, with env overrides."""

    def __init__(self, env=None, data=None, port=None):
        self.dir = data or tempfile.mkdtemp(prefix="ff-acc-")
        self.port = port or free_port()
        self.env = dict(os.environ)
        self.env.update({"FORTFOLIO_LOGGING__DIR": os.path.join(self.dir, "logs"), "FORTFOLIO_LOGGING__LEVEL": "warn"})
        self.env.update(env or {})
        self.base = f"https://127.0.0.1:{self.port}/api/v1"
        self.proc = None
        self.start()

    def start(self):
        self.log = open(os.path.join(self.dir, "server.log"), "a")
        self.proc = subprocess.Popen(
            [BIN, "serve", "--data-dir", os.path.join(self.dir, "data"), "--bind", f"127.0.0.1:{self.port}"],
            env=self.env, stdout=self.log, stderr=self.log, cwd=self.dir)
        for _ in range(100):
            try:
                if requests.get(self.base + "/health", verify=False, timeout=1).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError("server did not start: " + open(os.path.join(self.dir, "server.log")).read()[-2000:])

    def stop(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)
        self.proc.wait(timeout=40)

    def restart(self):
        self.stop()
        self.start()

    def cli(self, *args, stdin=None):
        return subprocess.run([BIN, *args, "--data-dir", os.path.join(self.dir, "data")], env=self.env,
                              capture_output=True, text=True, input=stdin, cwd=self.dir)

    def req(self, method, path, token=None, headers=None, **kw):
        h = dict(headers or {})
        if token:
            h["Authorization"] = f"Bearer {token}"
        return requests.request(method, self.base + path, headers=h, verify=False, timeout=30, **kw)

    def register(self, email, ua=None):
        r = self.req("POST", "/auth/register", json={"email": email, "password": PASSWORD},
                     headers={"User-Agent": ua} if ua else None)
        assert r.status_code == 201, r.text
        return r.json()

    def login(self, email, password=PASSWORD, headers=None):
        return self.req("POST", "/auth/login", json={"email": email, "password": password}, headers=headers)


def lifted(**extra):
    env = {f"FORTFOLIO_RATE_LIMITS__{k.upper()}": "100000/s" for k in
           ["register", "login", "two_factor", "refresh", "logout", "password", "account", "portfolio", "prices", "news",
            "predictions", "admin", "recovery"]}
    env.update(extra)
    return env


def is_problem(r, status, code):
    try:
        body = r.json()
    except ValueError:
        return False
    return (r.status_code == status and r.headers.get("content-type") == "application/problem+json"
            and body.get("code") == code and all(k in body for k in ("type", "title", "status", "detail")))


# ---------------------------------------------------------------- foundation
def foundation():
    print("== foundation (issue 2)")
    s = Server(lifted())
    h = s.req("GET", "/health").json()
    check("health answers per SPEC §6", h.get("status") == "ok" and {"version", "uptime_seconds", "storage", "state"} <= h.keys(), json.dumps(h))
    cert = open(os.path.join(s.dir, "data/tls/cert.pem")).read()
    s.restart()
    check("self-signed certificate kept across restarts", open(os.path.join(s.dir, "data/tls/cert.pem")).read() == cert)

    reg = s.register("ann@example.com")
    check("register → 201 with tokens and user", {"user", "access_token", "refresh_token", "token_type", "expires_in", "device_token"} <= reg.keys())
    check("duplicate → 409 email_taken", is_problem(s.req("POST", "/auth/register", json={"email": "ann@example.com", "password": PASSWORD}), 409, "email_taken"))
    check("'password' → 422 weak_password", is_problem(s.req("POST", "/auth/register", json={"email": "b@example.com", "password": "password"}), 422, "weak_password"))
    check("bad email → 422 validation_failed", is_problem(s.req("POST", "/auth/register", json={"email": "nope", "password": PASSWORD}), 422, "validation_failed"))

    check("login → 200 tokens", s.login("ann@example.com").status_code == 200)
    # Timing: wrong password vs unknown email, 20 tries each, interleaved.
    wrong, unknown = [], []
    s2 = Server(lifted(FORTFOLIO_AUTH__LOCKOUT_THRESHOLD="1000"))
    s2.register("tim@example.com")
    bodies = []
    for i in range(20):
        for email, bucket in (("tim@example.com", wrong), (f"ghost{i}@example.com", unknown)):
            t = time.perf_counter()
            r = s2.login(email, "wrong-password-xyz")
            bucket.append(time.perf_counter() - t)
            bodies.append(r)
    mw, mu = statistics.median(wrong), statistics.median(unknown)
    shapes = {tuple(sorted(r.json().keys())) for r in bodies}
    check("wrong password and unknown email: same 401 body shape", len(shapes) == 1 and all(is_problem(r, 401, "invalid_credentials") for r in bodies))
    check("median latencies differ < 15 %", abs(mw - mu) / max(mw, mu) < 0.15, f"wrong {mw*1000:.1f} ms, unknown {mu*1000:.1f} ms, diff {abs(mw-mu)/max(mw,mu)*100:.1f} %")
    s2.stop()

    other = s.login("ann@example.com").json()
    r = s.req("POST", "/auth/refresh", json={"refresh_token": reg["refresh_token"]})
    pair = r.json()
    check("refresh returns a new pair", r.status_code == 200 and pair["refresh_token"] != reg["refresh_token"])
    check("old refresh again → 401 refresh_token_reused", is_problem(s.req("POST", "/auth/refresh", json={"refresh_token": reg["refresh_token"]}), 401, "refresh_token_reused"))
    check("…and the new pair of that session is dead", s.req("GET", "/me", pair["access_token"]).status_code == 401
          and s.req("POST", "/auth/refresh", json={"refresh_token": pair["refresh_token"]}).status_code == 401)
    check("…while other sessions work", s.req("GET", "/me", other["access_token"]).status_code == 200)

    sess = s.login("ann@example.com").json()
    s.req("POST", "/auth/logout", sess["access_token"])
    check("logout: access refused at once", is_problem(s.req("GET", "/me", sess["access_token"]), 401, "unauthorized"))
    s.restart()
    check("logout: still refused after restart", s.req("GET", "/me", sess["access_token"]).status_code == 401)
    check("logout: its refresh token is dead", s.req("POST", "/auth/refresh", json={"refresh_token": sess["refresh_token"]}).status_code == 401)

    tok = s.login("ann@example.com").json()
    a = tok["access_token"]
    b64 = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()
    payload = a.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    forged = {
        "alg none": b64({"alg": "none", "typ": "JWT"}) + "." + payload + ".",
        "wrong signature": a[:-6] + ("AAAAAA" if not a.endswith("AAAAAA") else "BBBBBB"),
        "expired": None,
        "refresh as access": tok["refresh_token"],
    }
    import hmac, hashlib
    key = bytes.fromhex(open(os.path.join(s.dir, "data/jwt.key")).read().strip())
    exp_claims = dict(claims, exp=int(time.time()) - 5, iat=int(time.time()) - 100)
    head = b64({"alg": "HS256", "typ": "JWT"})
    body = b64(exp_claims)
    sig = base64.urlsafe_b64encode(hmac.new(key, f"{head}.{body}".encode(), hashlib.sha256).digest()).rstrip(b"=").decode()
    forged["expired"] = f"{head}.{body}.{sig}"
    for name, t in forged.items():
        check(f"forged token refused: {name}", is_problem(s.req("GET", "/me", t), 401, "unauthorized"))
    check("forged token refused: access as refresh", s.req("POST", "/auth/refresh", json={"refresh_token": a}).status_code == 401)

    s1 = s.login("ann@example.com").json()
    s2t = s.login("ann@example.com").json()
    new_pw = "quartz-meadow-lantern-77"
    r = s.req("POST", "/me/password", s2t["access_token"], json={"current_password": PASSWORD, "new_password": new_pw})
    check("password change ends every other session", r.status_code == 200 and s.req("GET", "/me", s1["access_token"]).status_code == 401
          and s.req("GET", "/me", s2t["access_token"]).status_code == 200)
    check("new password works, old does not", s.login("ann@example.com", new_pw).status_code == 200 and s.login("ann@example.com").status_code == 401)

    raw = lambda body: requests.post(s.base + "/auth/register", data=body, headers={"Content-Type": "application/json"}, verify=False)
    check("malformed JSON → 400 invalid_json", is_problem(raw("{oops"), 400, "invalid_json"))
    r = raw('{"password": "x"}')
    check("missing field → 422 naming it", is_problem(r, 422, "validation_failed") and r.json().get("field") == "email")
    r = raw('{"email": 5, "password": "x"}')
    check("wrong type → 422 naming it", is_problem(r, 422, "validation_failed") and r.json().get("field") == "email")
    check("unknown route → 404 not_found", is_problem(s.req("GET", "/nope"), 404, "not_found"))
    check("wrong method → 405", s.req("DELETE", "/health").status_code == 405)
    garbage = [raw("\x00\xff"), raw("[]"), raw('{"email": {"$ne": 1}}'), s.req("GET", "/me", "a.b.c"), s.req("GET", "/prices/%2e%2e%2f"),
               s.req("POST", "/portfolio/buy", tok["access_token"], json={"symbol": "X" * 5000, "quantity": "1e999999"})]
    check("no request makes the server answer 500", all(r.status_code < 500 for r in garbage), str([r.status_code for r in garbage]))

    # Admin CLI with the server running and stopped.
    s.register("dis@example.com")
    live = s.login("dis@example.com").json()["access_token"]
    out = s.cli("admin", "user", "list", "--json")
    check("admin user list --json (server running)", out.returncode == 0 and any(u["email"] == "dis@example.com" for u in json.loads(out.stdout)))
    out = s.cli("admin", "user", "disable", "dis@example.com")
    check("admin user disable (server running)", out.returncode == 0)
    check("disabled: login → 403 account_disabled", is_problem(s.login("dis@example.com"), 403, "account_disabled"))
    check("disabled: live tokens stop working", s.req("GET", "/me", live).status_code == 401)
    s.stop()
    out = s.cli("admin", "user", "enable", "dis@example.com")
    out2 = s.cli("admin", "user", "list", "--json")
    check("admin commands with the server stopped", out.returncode == 0 and out2.returncode == 0 and
          next(u for u in json.loads(out2.stdout) if u["email"] == "dis@example.com")["disabled"] is False)
    s.start()

    env = dict(s.env, FORTFOLIO_AUTH__JWT_SECRET="x" * 40 + "-very-secret", FORTFOLIO_SMTP__PASSWORD="smtp-secret-9")
    out = subprocess.run([BIN, "config", "check"], env=env, capture_output=True, text=True)
    check("config check shows no secret", out.returncode == 0 and "very-secret" not in out.stdout and "smtp-secret-9" not in out.stdout)
    out = subprocess.run([BIN, "serve", "--data-dir", tempfile.mkdtemp()], env=dict(s.env, FORTFOLIO_SERVER__MAX_CONCURRENT_REQUESTS="lots"), capture_output=True, text=True, timeout=10)
    check("invalid key value stops startup with one line naming it", out.returncode != 0 and len(out.stderr.strip().splitlines()) == 1
          and "server.max_concurrent_requests" in out.stderr, out.stderr.strip())
    s.stop()


# ---------------------------------------------------------------- defenses
def defenses():
    print("== defensive layers (issue 3)")
    s = Server(lifted(FORTFOLIO_RATE_LIMITS__REGISTER="3/min"))
    s.register("lock@example.com")
    owner = s.login("lock@example.com").json()
    codes = [s.login("lock@example.com", "wrong-guess-1").status_code for _ in range(5)]
    last = s.login("lock@example.com", "wrong-guess-1")
    check("5 wrong passwords → 423 with Retry-After", codes[:4] == [401] * 4 and codes[4] == 423 and is_problem(last, 423, "account_locked") and "Retry-After" in last.headers, str(codes))
    check("right password from a new client refused while locked", s.login("lock@example.com").status_code == 423)
    r = s.login("lock@example.com", headers={"X-Device-Token": owner["device_token"]})
    check("owner's device token still logs in", r.status_code == 200)
    s.restart()
    check("lock survives a restart", s.login("lock@example.com").status_code == 423)
    out = s.cli("admin", "user", "unlock", "lock@example.com")
    check("admin user unlock (server running) lets the password in", out.returncode == 0 and s.login("lock@example.com").status_code == 200)

    def reg_from(ip, n, xff=None):
        sess = requests.Session()
        sess.mount("https://", SourceAddressAdapter(ip))
        h = {"X-Forwarded-For": xff} if xff else {}
        return sess.post(s.base + "/auth/register", json={"email": f"r{n}-{ip}-{time.time_ns()}@example.com", "password": PASSWORD}, headers=h, verify=False)
    rs = [reg_from("127.0.0.1", i) for i in range(4)]
    r4 = rs[3]
    check("4th register from one IP → 429 with Retry-After and RateLimit-*", [r.status_code for r in rs] == [201, 201, 201, 429] and is_problem(r4, 429, "rate_limited")
          and all(h in r4.headers for h in ("Retry-After", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")))
    check("another IP is unaffected", reg_from("127.0.0.2", 9).status_code == 201)
    check("forged X-Forwarded-For from an untrusted peer changes nothing", reg_from("127.0.0.1", 10, "203.0.113.77").status_code == 429)
    s.stop()
    p = Server(lifted(FORTFOLIO_RATE_LIMITS__REGISTER="3/min", FORTFOLIO_SERVER__TRUSTED_PROXIES='["127.0.0.1/32"]'))
    s = p
    codes = [reg_from("127.0.0.1", i, "198.51.100.5").status_code for i in range(4)]
    check("from a trusted proxy it keys on the forwarded client", codes == [201, 201, 201, 429] and reg_from("127.0.0.1", 9, "198.51.100.6").status_code == 201, str(codes))
    p.stop()

    q = Server(lifted(FORTFOLIO_SERVER__MAX_CONCURRENT_REQUESTS="2", FORTFOLIO_SERVER__MAX_QUEUED_REQUESTS="2"))
    q.register("q@example.com")
    health_ok = []
    stop = threading.Event()

    def poll():
        while not stop.is_set():
            health_ok.append(q.req("GET", "/health").status_code == 200)
            time.sleep(0.02)
    t = threading.Thread(target=poll)
    t.start()
    with cf.ThreadPoolExecutor(50) as ex:
        results = list(ex.map(lambda _: q.login("q@example.com"), range(50)))
    stop.set()
    t.join()
    statuses = [r.status_code for r in results]
    shed = [r for r in results if r.status_code == 503]
    check("50 concurrent logins: some 503 overloaded, no other error", shed and all(is_problem(r, 503, "overloaded") and "Retry-After" in r.headers for r in shed)
          and set(statuses) <= {200, 503}, f"200: {statuses.count(200)}, 503: {statuses.count(503)}")
    check("/health answers throughout", health_ok and all(health_ok), f"{len(health_ok)} probes")
    q.stop()

    c = Server(lifted(FORTFOLIO_SERVER__CORS_ALLOWED_ORIGINS='["https://app.example.com"]', FORTFOLIO_SERVER__MAX_BODY_BYTES="4096"))
    r = c.req("POST", "/auth/register", json={"email": "cookie@example.com", "password": PASSWORD})
    jar = r.cookies
    patch = lambda headers=None, cookies=None, token=None: requests.patch(c.base + "/me", json={"full_name": "C"}, headers=dict(headers or {}, **({"Authorization": f"Bearer {token}"} if token else {})), cookies=cookies, verify=False)
    csrf_name = "__Host-fortfolio_csrf"  # TLS is on: the cookie carries the __Host- prefix
    cookies = {"fortfolio_access": jar["fortfolio_access"], csrf_name: jar[csrf_name]}
    check("cookie PATCH /me without X-CSRF-Token → 403 csrf_failed", is_problem(patch(cookies=cookies), 403, "csrf_failed"))
    check("…with the matching token it passes", patch({"X-CSRF-Token": jar[csrf_name]}, cookies).status_code == 200)
    check("…a Bearer request passes without it", patch(token=r.json()["access_token"]).status_code == 200)
    others = [requests.post(c.base + p_, json={}, cookies=cookies, verify=False) for p_ in ("/auth/logout", "/auth/logout-all", "/auth/2fa/enable", "/portfolio/buy")]
    others.append(requests.delete(c.base + "/me/sessions/x", cookies=cookies, verify=False))
    check("every other state-changing route needs it too", all(is_problem(x, 403, "csrf_failed") for x in others), str([x.status_code for x in others]))
    pre = lambda origin: requests.options(c.base + "/me", headers={"Origin": origin, "Access-Control-Request-Method": "PATCH"}, verify=False)
    ok = pre("https://app.example.com")
    check("preflight from an allowed origin echoes it with credentials", ok.headers.get("access-control-allow-origin") == "https://app.example.com" and ok.headers.get("access-control-allow-credentials") == "true")
    check("a disallowed origin gets no CORS headers", "access-control-allow-origin" not in pre("https://evil.example.com").headers)
    big = c.req("POST", "/auth/login", json={"email": "x" * 8000, "password": "y"})
    check("a body over max_body_bytes → 413", is_problem(big, 413, "payload_too_large"))
    hs = [c.req("GET", "/health"), big, c.req("GET", "/nope"), ok]
    want = ["x-content-type-options", "x-frame-options", "referrer-policy", "content-security-policy", "strict-transport-security", "x-request-id"]
    check("every response carries the security headers", all(all(w in r.headers for w in want) for r in hs))
    c.stop()


class SourceAddressAdapter(requests.adapters.HTTPAdapter):
    def __init__(self, ip, **kw):
        self.ip = ip
        super().__init__(**kw)

    def init_poolmanager(self, *a, **kw):
        kw["source_address"] = (self.ip, 0)
        return super().init_poolmanager(*a, **kw)


# ---------------------------------------------------------------- 2FA
def twofactor():
    print("== two-factor (issue 4)")
    s = Server(lifted())
    tok = s.register("tf@example.com")["access_token"]
    e = s.req("POST", "/auth/2fa/enable", tok, json={"password": PASSWORD}).json()
    png = os.path.join(s.dir, "qr.png")
    open(png, "wb").write(base64.b64decode(e["qr_png"].split(",", 1)[1]))
    z = subprocess.run(["zbarimg", "--raw", "-q", png], capture_output=True, text=True)
    check("QR PNG decodes to exactly otpauth_uri", z.stdout.strip() == e["otpauth_uri"], z.stdout.strip()[:60])
    totp = pyotp.TOTP(e["secret"])
    r = s.req("POST", "/auth/2fa/verify", tok, json={"code": totp.now()})
    codes = r.json().get("backup_codes", [])
    check("an independent TOTP (pyotp) verifies; 10 backup codes", r.status_code == 200 and len(codes) == 10)
    check("enabling twice → 409", is_problem(s.req("POST", "/auth/2fa/enable", tok, json={"password": PASSWORD}), 409, "two_factor_already_enabled"))
    l = s.login("tf@example.com").json()
    check("login returns the challenge, not tokens", l.get("two_factor_required") is True and "access_token" not in l and l.get("expires_in") == 300)
    bad = s.req("POST", "/auth/login/2fa", json={"challenge_token": l["challenge_token"], "code": "000000" if totp.now() != "000000" else "111111"})
    check("a wrong code counts toward lockout", is_problem(bad, 401, "invalid_2fa_code") and bad.json().get("attempts_remaining") == 4)
    # The verify step used the current step; wait for the next one.
    time.sleep(30 - time.time() % 30 + 0.5)
    code = totp.now()
    r = s.req("POST", "/auth/login/2fa", json={"challenge_token": l["challenge_token"], "code": code})
    check("challenge + fresh code gives tokens", r.status_code == 200 and "access_token" in r.json())
    l2 = s.login("tf@example.com").json()
    check("the same code again → 401 invalid_2fa_code", is_problem(s.req("POST", "/auth/login/2fa", json={"challenge_token": l2["challenge_token"], "code": code}), 401, "invalid_2fa_code"))
    check("a reused challenge → 401 challenge_expired", is_problem(s.req("POST", "/auth/login/2fa", json={"challenge_token": l["challenge_token"], "code": code}), 401, "challenge_expired"))
    s.cli("admin", "user", "unlock", "tf@example.com")
    remaining = []
    for c_ in codes:
        ch = s.login("tf@example.com").json()["challenge_token"]
        r = s.req("POST", "/auth/2fa/backup-code", json={"challenge_token": ch, "backup_code": c_})
        remaining.append(r.json().get("backup_codes_remaining") if r.status_code == 200 else None)
        if len(remaining) % 4 == 0:
            s.cli("admin", "user", "unlock", "tf@example.com")
    ch = s.login("tf@example.com").json()["challenge_token"]
    again = s.req("POST", "/auth/2fa/backup-code", json={"challenge_token": ch, "backup_code": codes[0]})
    check("each of the 10 backup codes works exactly once; counts what remains", remaining == list(range(9, -1, -1)) and is_problem(again, 401, "invalid_backup_code"), str(remaining))
    check("disabling needs a valid code", is_problem(s.req("POST", "/auth/2fa/disable", tok, json={"password": PASSWORD, "code": "123"}), 401, "invalid_2fa_code"))
    time.sleep(30 - time.time() % 30 + 0.5)
    r = s.req("POST", "/auth/2fa/disable", tok, json={"password": PASSWORD, "code": totp.now()})
    check("after disable, login gives tokens directly", r.status_code == 200 and "access_token" in s.login("tf@example.com").json())
    t2 = s.register("tf2@example.com")["access_token"]
    sec = s.req("POST", "/auth/2fa/enable", t2, json={"password": PASSWORD}).json()["secret"]
    s.req("POST", "/auth/2fa/verify", t2, json={"code": pyotp.TOTP(sec).now()})
    s.stop()
    blob = b"".join(open(os.path.join(root, f), "rb").read() for root, _, fs in os.walk(os.path.join(s.dir, "data")) for f in fs if not f.endswith(".sock"))
    raw = base64.b32decode(sec + "=" * (-len(sec) % 8))
    check("the TOTP secret is nowhere in the data dir in plain text", sec.encode() not in blob and raw not in blob and e["secret"].encode() not in blob)
    out = s.cli("admin", "user", "reset-2fa", "tf2@example.com")
    s.start()
    check("admin user reset-2fa turns it off", out.returncode == 0 and "access_token" in s.login("tf2@example.com").json())
    s.stop()


# ---------------------------------------------------------------- admin
def admin():
    print("== admin API (issue 15, SPEC §11)")
    s = Server(lifted(FORTFOLIO_AUTH__REAUTH_MAX_AGE="4s"))
    out = s.cli("admin", "user", "create", "--email", "root@example.com", "--role", "admin", "--password-stdin", stdin=PASSWORD)
    check("admin user create --role admin", out.returncode == 0, out.stderr[-200:])
    user = s.register("plain@example.com")["access_token"]
    r = s.req("GET", "/admin/users", user)
    check("a user → 403 forbidden; no token → 401", is_problem(r, 403, "forbidden") and s.req("GET", "/admin/users").status_code == 401)
    adm = s.login("root@example.com").json()["access_token"]
    page = s.req("GET", "/admin/users", adm, params={"q": "PLAIN"}).json()
    target = page["items"][0] if page.get("items") else {}
    check("users search by email, case-insensitive", len(page.get("items", [])) == 1 and target.get("email") == "plain@example.com"
          and target.get("role") == "user" and target.get("disabled") is False, str(page)[:200])
    st = s.req("GET", "/admin/status", adm).json()
    check("status counts users, sessions, outbox", st.get("users") == 2 and st.get("sessions_active", 0) >= 2 and "outbox_depth" in st, str(st))
    r = s.req("POST", f"/admin/users/{target.get('id')}/disable", adm)
    check("a fresh login may disable; the user's token stops at once", r.status_code == 200 and r.json().get("disabled") is True
          and s.req("GET", "/me", user).status_code == 401, r.text[:200])
    time.sleep(4.5)
    r = s.req("POST", f"/admin/users/{target.get('id')}/enable", adm)
    check("after reauth_max_age → 403 reauthentication_required", is_problem(r, 403, "reauthentication_required") and "authenticated_at" in r.json())
    check("a wrong password at /auth/reauthenticate → 401", s.req("POST", "/auth/reauthenticate", adm, json={"password": "wrong password here"}).status_code == 401)
    r = s.req("POST", "/auth/reauthenticate", adm, json={"password": PASSWORD})
    check("reauthenticate answers authenticated_at and fresh_until", r.status_code == 200 and {"authenticated_at", "fresh_until"} <= set(r.json()))
    r = s.req("POST", f"/admin/users/{target.get('id')}/enable", adm)
    check("after step-up the admin may enable", r.status_code == 200 and r.json().get("disabled") is False)
    ev = s.req("GET", "/admin/security-events", adm, params={"user": "plain@example.com", "event": "account_disabled", "since": "1h"}).json()
    d = (ev.get("items") or [{}])[0].get("details", {})
    check("security events filtered by user, type, since; they name the admin", d.get("actor") == "root@example.com" and d.get("by") == "admin_api", str(d)[:300])
    me = s.req("GET", "/admin/users", adm, params={"q": "root@"}).json()["items"][0]["id"]
    check("an admin cannot demote themselves", is_problem(s.req("POST", f"/admin/users/{me}/role", adm, json={"role": "user"}), 403, "forbidden"))
    r = s.req("POST", f"/admin/users/{target.get('id')}/role", adm, json={"role": "admin"})
    check("promote over the API", r.status_code == 200 and r.json().get("role") == "admin")
    out = s.cli("admin", "user", "set-role", "root@example.com", "user")
    check("admin user set-role demotes; the stored role is checked on the next request",
          out.returncode == 0 and is_problem(s.req("GET", "/admin/status", adm), 403, "forbidden"), out.stderr[-200:])
    check("bad filters → 422", s.req("GET", "/admin/security-events", s.login("plain@example.com").json()["access_token"], params={"since": "yesterday"}).status_code == 422)
    tok = s.register("stepup@example.com")["access_token"]
    totp = pyotp.TOTP(s.req("POST", "/auth/2fa/enable", tok, json={"password": PASSWORD}).json()["secret"])
    code = totp.now()
    s.req("POST", "/auth/2fa/verify", tok, json={"code": code})
    check("a TOTP code already used → 401 invalid_2fa_code", is_problem(s.req("POST", "/auth/reauthenticate", tok, json={"code": code}), 401, "invalid_2fa_code"))
    time.sleep(30 - time.time() % 30 + 0.5)
    check("the next TOTP code reauthenticates", s.req("POST", "/auth/reauthenticate", tok, json={"code": totp.now()}).status_code == 200)
    s.stop()


# ---------------------------------------------------------------- events
def smtp_sink(port):
    from aiosmtpd.controller import Controller

    class H:
        def __init__(self):
            self.msgs = []

        async def handle_DATA(self, server, session, envelope):
            self.msgs.append(envelope.content.decode("utf8", "replace"))
            return "250 OK"
    h = H()
    ctl = Controller(h, hostname="127.0.0.1", port=port)
    ctl.start()
    return ctl, h


def alerts_of(msgs):
    """The mails other than the verification link every registration sends."""
    return [m for m in msgs if "Subject: Confirm your fortfolio email address" not in m]


def wait_for(pred, secs):
    end = time.time() + secs
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.2)
    return pred()


def events():
    print("== events, devices, alerts (issue 5)")
    port = free_port()
    ctl, sink = smtp_sink(port)
    mail = {"FORTFOLIO_SMTP__HOST": "127.0.0.1", "FORTFOLIO_SMTP__PORT": str(port), "FORTFOLIO_SMTP__SECURITY": "none"}
    logs = tempfile.mkdtemp()
    open(os.path.join(logs, "security.log.2020-01-01"), "w").write("old\n")
    s = Server(lifted(FORTFOLIO_LOGGING__DIR=logs, **mail))
    s.env["FORTFOLIO_LOGGING__DIR"] = logs
    check("a file dated older than the retention is removed at start", not os.path.exists(os.path.join(logs, "security.log.2020-01-01")))
    tok = s.register("ev@example.com", ua="ua-one")["access_token"]
    # Every registration also mails a verification link (issue 16): count alerts only.
    alerts = lambda box: alerts_of(box.msgs)
    subj = lambda: [next((l[9:] for l in m.splitlines() if l.startswith("Subject: ")), "") for m in alerts(sink)]
    s.login("ev@example.com", headers={"User-Agent": "ua-two"})
    ok1 = wait_for(lambda: len(alerts(sink)) == 1, 10)
    new_pw = "quartz-meadow-lantern-77"
    s.req("POST", "/me/password", tok, json={"current_password": PASSWORD, "new_password": new_pw})
    ok2 = wait_for(lambda: len(alerts(sink)) == 2, 10)
    sec = s.req("POST", "/auth/2fa/enable", tok, json={"password": new_pw}).json()["secret"]
    s.req("POST", "/auth/2fa/verify", tok, json={"code": pyotp.TOTP(sec).now()})
    ok3 = wait_for(lambda: len(alerts(sink)) == 3, 10)
    for _ in range(5):
        s.login("ev@example.com", "bad-guess-12345", headers={"User-Agent": "attacker"})
    ok4 = wait_for(lambda: len(alerts(sink)) == 4, 10)
    time.sleep(1)
    sj = subj()
    check("new-device login, password change, 2FA enabled, lockout: one email each with the right subject",
          ok1 and ok2 and ok3 and ok4 and len(alerts(sink)) == 4 and "New sign-in" in sj[0] and "password was changed" in sj[1]
          and "turned on" in sj[2] and "locked" in sj[3], " | ".join(sj))
    logtext = open(os.path.join(logs, "security.log")).read() + open(os.path.join(logs, "security.json")).read()
    check("the password never appears in any mail or log", not any(p in m for m in sink.msgs + [logtext] for p in (PASSWORD, new_pw, "bad-guess-12345")))
    lines = open(os.path.join(logs, "security.json")).read().splitlines()
    objs = [json.loads(l) for l in lines]
    fields = {"timestamp", "event", "outcome", "user_id", "email", "ip", "user_agent", "request_id", "details"}
    kinds = {o["event"] for o in objs}
    want = {"register", "login_success", "login_failure", "new_device_login", "password_changed", "two_factor_enabled", "account_locked"}
    check("security.json: one valid JSON object per line with the SPEC fields", all(fields <= o.keys() for o in objs) and want <= kinds, ", ".join(sorted(kinds)))
    text_lines = open(os.path.join(logs, "security.log")).read().splitlines()
    check("security.log has the matching text lines", len(text_lines) == len(lines) and all(f" {k} " in "\n".join(text_lines) for k in want))

    other = s.register("ev2@example.com")["access_token"]
    tok2 = s.login("ev@example.com", new_pw).json()
    tok2 = tok2.get("access_token") or None
    # 2FA is on now: use the password-change session's token.
    mine = s.req("GET", "/me/security-events?limit=500", tok).json()["items"]
    ids = [e["id"] for e in mine]
    me_id = s.req("GET", "/me", tok).json()["id"]
    check("GET /me/security-events: own events, newest first", mine and ids == sorted(ids, reverse=True) and all(e["user_id"] == me_id for e in mine), f"{len(mine)} events")
    out = s.cli("admin", "events", "--user", "ev@example.com", "--json")
    adm = json.loads(out.stdout) if out.returncode == 0 else []
    check("admin events --user E --json shows the same events", [e["id"] for e in adm] == ids)
    d = s.req("GET", "/me/devices", tok).json()["items"]
    check("GET /me/devices lists both devices", {x["user_agent"] for x in d} >= {"ua-one", "ua-two"}, str([x["user_agent"] for x in d]))

    # Latency with SMTP down vs up, and delivery after restart.
    s.stop()
    ctl.stop()
    dead_port = free_port()
    env = lifted(FORTFOLIO_SMTP__HOST="127.0.0.1", FORTFOLIO_SMTP__PORT=str(dead_port), FORTFOLIO_SMTP__SECURITY="none")
    d2 = Server(env)
    d2.register("lat@example.com")

    def median_login(n=20):
        ts = []
        for i in range(n):
            t = time.perf_counter()
            r = d2.login("lat@example.com", headers={"User-Agent": f"agent-{time.time_ns()}"})
            ts.append(time.perf_counter() - t)
            assert r.status_code == 200, r.text
        return statistics.median(ts)
    down = median_login()
    d2.restart()
    ctl2, sink2 = smtp_sink(dead_port)
    queued = 20 + 0  # 20 new-device logins above
    arrived = wait_for(lambda: len(alerts(sink2)) >= queued, 60)
    up = median_login()
    wait_for(lambda: len(alerts(sink2)) >= 40, 30)
    time.sleep(3)
    check("SMTP down vs up: median login latency within 20 %", abs(down - up) / max(down, up) < 0.2, f"down {down*1000:.1f} ms, up {up*1000:.1f} ms")
    check("queued alerts arrive exactly once after restart + SMTP start", arrived and len(alerts(sink2)) == 40, f"{len(alerts(sink2))} mails for 40 new-device logins")
    d2.stop()
    ctl2.stop()


# ---------------------------------------------------------------- portfolio
def portfolio():
    print("== portfolio, prices, news (issue 6)")
    from http.server import HTTPServer, BaseHTTPRequestHandler
    feed = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>Loopback Wire</title>
<item><title>Tesla posts great record quarter</title><link>http://wire.test/1</link><guid>w1</guid>
<pubDate>Fri, 27 Nov 2026 09:00:00 GMT</pubDate><description>TSLA up.</description></item></channel></rss>"""

    class H(BaseHTTPRequestHandler):
        def do_GET(self):
            body = feed if self.path == "/good.rss" else b"\x00garbage<<<"
            self.send_response(200)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass
    httpd = HTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    fp = httpd.server_address[1]
    feeds = json.dumps([f"http://127.0.0.1:{fp}/bad.rss", f"http://127.0.0.1:{fp}/good.rss"])
    s = Server(lifted(FORTFOLIO_MARKET__NEWS_FEEDS=feeds, FORTFOLIO_MARKET__NEWS_REFRESH="2s"))
    tok = s.register("pf@example.com")["access_token"]
    syms = [p["symbol"] for p in s.req("GET", "/prices", tok).json()["items"]]
    check("a fresh serve lists the bundled symbols", {"SPY", "AAPL", "MSFT", "WTI"} <= set(syms), f"{len(syms)} symbols")
    h = s.req("GET", "/prices/SPY?history=1y", tok).json()["history"]
    check("GET /prices/SPY?history=1y: ~252 real candles, oldest first", 245 <= len(h) <= 260 and h[0]["date"] < h[-1]["date"], f"{len(h)} candles {h[0]['date']}..{h[-1]['date']}")
    for _ in range(3):
        s.req("POST", "/portfolio/buy", tok, json={"symbol": "TLT", "quantity": "0.1", "price": "0.1"})
    pos = next(p for p in s.req("GET", "/portfolio", tok).json()["positions"] if p["symbol"] == "TLT")
    check("3 × 0.1 at 0.1: quantity 0.3, cost basis 0.03 exactly", pos["quantity"] == "0.3" and pos["cost_basis"] == "0.03", f"{pos['quantity']} / {pos['cost_basis']}")
    before = s.req("GET", "/portfolio", tok).json()["positions"]
    r = s.req("POST", "/portfolio/sell", tok, json={"symbol": "TLT", "quantity": "1", "price": "1"})
    check("selling more than held → 422 insufficient_quantity, nothing changes", is_problem(r, 422, "insufficient_quantity") and s.req("GET", "/portfolio", tok).json()["positions"] == before)
    s.req("POST", "/portfolio/buy", tok, json={"symbol": "KO", "quantity": "10", "price": "40"})
    with cf.ThreadPoolExecutor(40) as ex:
        res = list(ex.map(lambda _: s.req("POST", "/portfolio/sell", tok, json={"symbol": "KO", "quantity": "1", "price": "41"}).status_code, range(40)))
    ko = next(p for p in s.req("GET", "/portfolio", tok).json()["positions"] if p["symbol"] == "KO")
    sells = [t for t in s.req("GET", "/portfolio/transactions?symbol=KO&limit=500", tok).json()["items"] if t["side"] == "sell"]
    check("holding 10, 40 concurrent sells: exactly 10 succeed, quantity 0, 10 sells", res.count(201) == 10 and ko["quantity"] == "0" and len(sells) == 10, f"201×{res.count(201)}")
    key = {"Idempotency-Key": "acc-key-1"}
    a = s.req("POST", "/portfolio/buy", tok, headers=key, json={"symbol": "MSFT", "quantity": "1", "price": "50"}).json()
    b = s.req("POST", "/portfolio/buy", tok, headers=key, json={"symbol": "MSFT", "quantity": "1", "price": "50"}).json()
    n = len([t for t in s.req("GET", "/portfolio/transactions?symbol=MSFT", tok).json()["items"]])
    check("a retried buy with the same Idempotency-Key: same transaction, executed once", a["transaction"]["id"] == b["transaction"]["id"] and n == 1)

    # SIGKILL in the middle of a stream of buys.
    answered = []
    stop = threading.Event()

    def stream():
        i = 0
        while not stop.is_set():
            try:
                r = s.req("POST", "/portfolio/buy", tok, json={"symbol": "XOM", "quantity": "1", "price": "80"})
                if r.status_code == 201:
                    answered.append(r.json()["transaction"]["id"])
            except requests.RequestException:
                pass
            i += 1
    threads = [threading.Thread(target=stream) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(2)
    s.proc.kill()
    s.proc.wait()
    stop.set()
    for t in threads:
        t.join()
    s.start()
    txs = s.req("GET", "/portfolio/transactions?symbol=XOM&limit=500", tok).json()
    ids = [t["id"] for t in txs["items"]]
    cur = txs["next_cursor"]
    while cur:
        page = s.req("GET", f"/portfolio/transactions?symbol=XOM&limit=500&cursor={cur}", tok).json()
        ids += [t["id"] for t in page["items"]]
        cur = page["next_cursor"]
    xom = next(p for p in s.req("GET", "/portfolio", tok).json()["positions"] if p["symbol"] == "XOM")
    check("SIGKILL mid-stream: every 201 buy is in the ledger; position equals ledger",
          set(answered) <= set(ids) and xom["quantity"] == str(len(ids)), f"{len(answered)} answered, {len(ids)} in ledger, quantity {xom['quantity']}")

    csv = os.path.join(s.dir, "acme.csv")
    open(csv, "w").write("Date,Open,High,Low,Close,Volume\n2024-01-02,1,2,0.5,1.5,10\n2024-01-03,x,2,0.5,1.5,10\n2024-01-04,1,2,0.5,1.75,10\nbad,1,1,1,1,1\n2024-01-05,1,2,0.5,2,10\n")
    out = s.cli("prices", "import", csv)
    served = s.req("GET", "/prices/ACME", tok).json()
    check("prices import: two malformed rows named, rest kept, served at once", out.returncode == 0 and "acme.csv:3:" in out.stderr and "acme.csv:5:" in out.stderr and served.get("price") == "2", out.stderr.strip().replace("\n", " | "))
    got = wait_for(lambda: any(i["source"] == "Loopback Wire" for i in s.req("GET", "/news?limit=10", tok).json()["items"]), 10)
    items = s.req("GET", "/news?limit=10", tok).json()["items"]
    check("GET /news: items with sentiment labels", items and all(i["sentiment"]["label"] in ("positive", "neutral", "negative") for i in items))
    check("a local RSS feed's items appear within one refresh; a garbage feed does not stop it", got and items[0]["title"].startswith("Tesla") and items[0]["symbols"] == ["TSLA"])
    log = open(os.path.join(s.dir, "server.log")).read()
    check("the garbage feed is logged", "bad.rss" in log and "news feed failed" in log)
    s.stop()
    httpd.shutdown()


# ---------------------------------------------------------------- predictions
def predictions():
    print("== predictions (issue 7)")
    s = Server(lifted())
    tok = s.register("ml@example.com")["access_token"]
    r = s.req("POST", "/predictions", tok, json={"symbol": "SPY", "horizon_days": 5})
    p = r.json()
    keys = {"symbol", "horizon_days", "as_of", "last_close", "predicted_close", "predicted_return", "direction", "probability_up", "interval", "model", "evaluation"}
    ev = p.get("evaluation", {})
    check("POST /predictions returns every SPEC field", r.status_code == 200 and keys <= p.keys() and {"kind", "features", "trained_from", "trained_to", "samples"} <= p["model"].keys()
          and {"method", "folds", "directional_accuracy", "baseline_directional_accuracy", "mae", "baseline_mae"} <= ev.keys())
    check("probability_up in [0,1], low < predicted_close < high", 0 <= p["probability_up"] <= 1 and float(p["interval"]["low"]) < float(p["predicted_close"]) < float(p["interval"]["high"]),
          f"p_up {p['probability_up']}, {p['interval']['low']} < {p['predicted_close']} < {p['interval']['high']}")
    r2 = s.req("POST", "/predictions", tok, json={"symbol": "SPY", "horizon_days": 5})
    dur = float(r2.headers["server-timing"].split("dur=")[1])
    first = float(r.headers["server-timing"].split("dur=")[1])
    check("two identical requests: identical answers; the cached one < 5 ms at the server", r2.json() == p and dur < 5, f"first {first:.1f} ms, cached {dur:.3f} ms")
    out = s.cli("model", "evaluate", "SPY", "--horizon", "5")
    check("model evaluate prints the fold table and the baselines", out.returncode == 0 and "FOLD" in out.stdout and "baseline" in out.stdout, out.stdout.splitlines()[-2] if out.stdout else out.stderr)
    print(out.stdout)
    s.stop()



# ---------------------------------------------------------------- hardening
def hardening():
    print("== hardening (issue 10)")
    import http.client
    import ssl
    import random
    import string
    port = free_port()
    ctl, sink = smtp_sink(port)
    mail = {"FORTFOLIO_SMTP__HOST": "127.0.0.1", "FORTFOLIO_SMTP__PORT": str(port), "FORTFOLIO_SMTP__SECURITY": "none",
            "FORTFOLIO_SMTP__FROM": "fortfolio@alerts.example.org"}
    s = Server(lifted(**mail))

    # 1. lockout race
    s.register("race@example.com")
    pw = [f"wrong-guess-{i}" for i in range(99)] + [PASSWORD]
    with cf.ThreadPoolExecutor(100) as ex:
        rs = list(ex.map(lambda p_: s.login("race@example.com", p_), pw))
    st = [r.status_code for r in rs]
    check("100 concurrent guesses (right one last): ≤ threshold evaluated, never 200",
          200 not in st and st.count(401) <= 4 and st.count(401) + st.count(423) == 100, f"401: {st.count(401)}, 423: {st.count(423)}")
    check("…and the lock they set stands against the right password", is_problem(s.login("race@example.com"), 423, "account_locked"))

    # 2. rate limits never switch to the token's user (default login limit: 5/min)
    d = Server()
    tok = d.register("rl@example.com")["access_token"]
    st = [d.login(f"nobody{i}@example.com", "x-wrong-password").status_code for i in range(5)]
    with_token = d.req("POST", "/auth/login", tok, json={"email": "nobody9@example.com", "password": "x"})
    check("an IP at its login limit stays limited whatever token it attaches", st == [401] * 5 and is_problem(with_token, 429, "rate_limited"), str(st + [with_token.status_code]))
    d.stop()

    # 3. slowloris: 300 half-open connections, header timeout 2 s
    main, s = s, Server(lifted(FORTFOLIO_SERVER__HEADER_READ_TIMEOUT="2s"))
    def stalled(conns, budget):
        """/health's status while `conns` stall, and how many the server closed within `budget` s."""
        t0 = time.time()
        health = s.req("GET", "/health").status_code
        closed = 0
        for c in conns:
            c.settimeout(max(0.1, budget - (time.time() - t0)))
            try:
                while c.recv(4096):  # a 408 answer may come before the close
                    pass
                closed += 1
            except socket.timeout:
                pass
            except OSError:  # reset: closed too
                closed += 1
            c.close()
        return health, closed, time.time() - t0

    conns = [socket.create_connection(("127.0.0.1", s.port)) for _ in range(300)]
    for c in conns:
        c.sendall(b"\x16\x03\x01")  # a TLS record header, never finished
    health, closed, took = stalled(conns, 15)
    check("300 half-open connections (stuck in the TLS handshake) are closed in time and /health keeps answering", health == 200 and closed == 300, f"closed {closed}/300 in {took:.1f} s")
    ctx = ssl._create_unverified_context()
    conns = [ctx.wrap_socket(socket.create_connection(("127.0.0.1", s.port))) for _ in range(300)]
    for c in conns:
        c.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    health, closed, took = stalled(conns, 10)
    check("…the same for 300 TLS connections stuck in their headers (header_read_timeout 2 s)", health == 200 and closed == 300, f"closed {closed}/300 in {took:.1f} s")
    s.stop()
    s = main

    # 4. metrics labels
    hc = http.client.HTTPSConnection("127.0.0.1", s.port, context=ctx)
    for i in range(20000):
        m = "".join(random.choices(string.ascii_uppercase, k=12))
        hc.request(m, "/api/v1/health" if i % 2 else f"/api/v1/x{i}")
        hc.getresponse().read()
    size = len(s.req("GET", "/metrics").content) if False else len(requests.get(f"https://127.0.0.1:{s.port}/metrics", verify=False).content)
    check("20,000 made-up methods leave /metrics under 100 KB", size < 100_000, f"{size} bytes")

    # 5. log injection
    forged = "x@example.com\n2026-01-01T00:00:00Z login_success outcome=success email=victim@example.com\r\x1b[2J"
    s.req("POST", "/auth/login", json={"email": forged, "password": "whatever-pass"})
    time.sleep(0.5)
    log = open(os.path.join(s.dir, "logs", "security.log"), encoding="utf8", errors="replace").read()
    lines = [l for l in log.split("\n") if "victim@example.com" in l]
    check("a forged newline in an email stays on one line of security.log", len(lines) == 1 and "login_failure" in lines[0] and "\x1b" not in log and "\r" not in log, repr(lines[:2])[:200])
    out = s.cli("admin", "events", "--event", "login_failure")
    check("…and admin events prints no control characters", out.returncode == 0 and "\x1b" not in out.stdout and "victim" in out.stdout)

    # 6. secrets in config check
    cfg = os.path.join(s.dir, "leaky.toml")
    open(cfg, "w").write('[market]\nnews_feeds = ["https://feeduser:feedpass99@feeds.example.com/rss?api_key=KEY123"]\n'
                         'price_provider = "https://prices.example.com/q?apikey=PKEY456&symbol={symbol}"\n'
                         '[storage]\npostgres_url = "postgres://u@db/x?password=DBPASS77"\n')
    out = subprocess.run([BIN, "config", "check", "--config", cfg], capture_output=True, text=True, env=s.env)
    check("config check redacts URL passwords and query secrets", out.returncode == 0 and not any(x in out.stdout + out.stderr for x in ("feedpass99", "KEY123", "PKEY456", "DBPASS77")), (out.stdout + out.stderr)[-200:])

    # 7. device tokens
    reg = s.register("dev@example.com")
    s.req("POST", "/auth/logout-all", reg["access_token"])
    for _ in range(5):
        s.login("dev@example.com", "attacker-guess-1")
    r = s.login("dev@example.com", headers={"X-Device-Token": reg["device_token"]})
    check("after logout-all, the old device token no longer passes a lock", is_problem(r, 423, "account_locked"))
    s.cli("admin", "user", "unlock", "dev@example.com")
    fresh = s.login("dev@example.com").json()
    devs = s.req("GET", "/me/devices", fresh["access_token"]).json()["items"]
    gone = s.req("DELETE", f"/me/devices/{devs[0]['id']}", fresh["access_token"])
    for _ in range(5):
        s.login("dev@example.com", "attacker-guess-1")
    r = s.login("dev@example.com", headers={"X-Device-Token": fresh["device_token"]})
    check("/me/devices lists it as trusted; DELETE revokes its token", devs[0].get("trusted") is True and gone.status_code == 204 and is_problem(r, 423, "account_locked"))
    s.cli("admin", "user", "unlock", "dev@example.com")

    # 8. admin actions: events with the actor, alerts to the user
    n0 = len(sink.msgs)
    s.register("adm@example.com")
    s.cli("admin", "user", "reset-2fa", "adm@example.com")
    s.cli("admin", "user", "disable", "adm@example.com")
    s.cli("admin", "user", "enable", "adm@example.com")
    wait_for(lambda: len(alerts_of(sink.msgs[n0:])) >= 2, 10)
    out = s.cli("admin", "events", "--user", "adm@example.com", "--json")
    evs = json.loads(out.stdout) if out.returncode == 0 else []
    kinds = {e["event"]: e for e in evs}
    check("reset-2fa, disable, enable are events naming the actor",
          all(k in kinds and kinds[k]["details"].get("actor", "").startswith("cli") for k in ("two_factor_reset", "account_disabled", "account_enabled")), str(list(kinds)))
    new = alerts_of(sink.msgs[n0:])
    check("…and reset-2fa and disable mail the user", sum("adm@example.com" in m for m in new) >= 2, f"{len(new)} mails")
    check("alert mails carry Message-ID and a UTC Date", new and all("Message-ID: <" in m and "@alerts.example.org>" in m and "+0000" in m for m in new))

    # 9. 2FA step-up
    t = s.register("su@example.com")["access_token"]
    check("enabling 2FA needs the password", is_problem(s.req("POST", "/auth/2fa/enable", t, json={}), 422, "validation_failed")
          and is_problem(s.req("POST", "/auth/2fa/enable", t, json={"password": "nope-nope-nope"}), 401, "invalid_credentials"))

    # 10. login CSRF
    r = requests.post(s.base + "/auth/login", data=json.dumps({"email": "su@example.com", "password": PASSWORD}), headers={"Content-Type": "text/plain"}, verify=False)
    r2 = requests.post(s.base + "/auth/login", data=json.dumps({"email": "su@example.com", "password": PASSWORD}).encode(), verify=False)
    check("a login body without a JSON content type → 415", is_problem(r, 415, "invalid_json") and is_problem(r2, 415, "invalid_json"))

    # 12. overflow sell
    t = s.register("big@example.com")["access_token"]
    b = s.req("POST", "/portfolio/buy", t, json={"symbol": "BIG", "quantity": "1000000000000", "price": "1000000000000"})
    ok = s.req("POST", "/portfolio/buy", t, json={"symbol": "BIG", "quantity": "1000", "price": "1000000000"})
    sell = s.req("POST", "/portfolio/sell", t, json={"symbol": "BIG", "quantity": "0.00000003", "price": "1"})
    pos = next(p_ for p_ in s.req("GET", "/portfolio", t).json()["positions"] if p_["symbol"] == "BIG")
    txs = s.req("GET", "/portfolio/transactions?symbol=BIG", t).json()["items"]
    from decimal import Decimal as D
    held = sum(D(x["quantity"]) * (1 if x["side"] == "buy" else -1) for x in txs)
    check("the 1e12 × 1e12 order answers 422 and the position equals its ledger",
          b.status_code == 422 and b.headers.get("content-type") == "application/problem+json" and ok.status_code == 201 and sell.status_code == 201 and D(pos["quantity"]) == held,
          f"{b.status_code} {b.json().get('code')}, position {pos['quantity']} vs ledger {held}")
    s.stop()
    ctl.stop()

    # 15. out-of-sample interval coverage
    tot_in = tot_n = 0
    per = {}
    for sym in ("SPY", "KO", "JPM", "AAPL"):
        out = subprocess.run([BIN, "model", "evaluate", sym, "--json", "--data-dir", os.path.join(s.dir, "data")], capture_output=True, text=True, env=s.env)
        ev = json.loads(out.stdout) if out.returncode == 0 else {}
        ev = ev.get("evaluation", ev)
        folds = ev.get("fold_details") or ev.get("folds") or []
        for f in folds if isinstance(folds, list) else []:
            n = f.get("test_samples", 0)
            tot_in += f.get("interval_coverage", 0) * n
            tot_n += n
        per[sym] = ev.get("interval_coverage")
    pooled = tot_in / tot_n if tot_n else None
    check("out-of-sample 90 % interval coverage is reported; pooled over SPY/KO/JPM/AAPL within 0.85–0.95",
          pooled is not None and 0.85 <= pooled <= 0.95 and all(v is not None for v in per.values()), f"pooled {pooled}, per symbol {per}")

# ---------------------------------------------------------------- scaled (issue 12)
class PrivateRedis:
    """A redis-server of our own, so an outage can be staged."""

    def __init__(self):
        self.port = free_port()
        self.start()

    def start(self):
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True).stdout.strip() == b"PONG", 10)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/"


class PrivatePostgres:
    """A PostgreSQL cluster of our own (initdb as user postgres, trust auth)."""

    def __init__(self):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="ff-pg-")
        os.chmod(self.dir, 0o777)
        self.data = os.path.join(self.dir, "data")
        bindir = "/usr/lib/postgresql/" + sorted(os.listdir("/usr/lib/postgresql"))[-1] + "/bin"
        self.pg_ctl = os.path.join(bindir, "pg_ctl")
        subprocess.run(["runuser", "-u", "postgres", "--", os.path.join(bindir, "initdb"), "-D", self.data, "-U", "postgres",
                        "--auth=trust", "-E", "UTF8"], check=True, capture_output=True)
        self.start()

    def start(self):
        subprocess.run(["runuser", "-u", "postgres", "--", self.pg_ctl, "-D", self.data, "-l", os.path.join(self.dir, "log"),
                        "-w", "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off", "start"],
                       check=True, capture_output=True)

    def stop(self):
        subprocess.run(["runuser", "-u", "postgres", "--", self.pg_ctl, "-D", self.data, "-m", "fast", "-w", "stop"],
                       check=True, capture_output=True)

    def new_database(self):
        name = "ff_" + os.urandom(4).hex()
        subprocess.run(["psql", "-q", f"postgres://postgres@127.0.0.1:{self.port}/postgres", "-c", f"CREATE DATABASE {name}"],
                       check=True, capture_output=True)
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"


SHARED_KEYS = {"FORTFOLIO_AUTH__JWT_SECRET": "acceptance-shared-secret-0123456789abcdef",
               "FORTFOLIO_AUTH__TOTP_KEY": "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"}


def scaled_env(pg_url, redis_url, **extra):
    env = {"FORTFOLIO_STORAGE__BACKEND": "postgres", "FORTFOLIO_STORAGE__POSTGRES_URL": pg_url,
           "FORTFOLIO_STATE__BACKEND": "redis", "FORTFOLIO_STATE__REDIS_URL": redis_url,
           "FORTFOLIO_STATE__REDIS_PREFIX": "acc" + os.urandom(3).hex() + ":", **SHARED_KEYS}
    env.update(extra)
    return env


def load(servers, tokens, seconds, stop_flag, out):
    """Mixed reads and logins on every server until stop_flag is set; counts statuses."""
    def one(i):
        s = servers[i % len(servers)]
        tok = tokens[i % len(tokens)]
        try:
            if i % 5 == 0:
                r = s.login(tok[1])
            else:
                r = s.req("GET", "/portfolio" if i % 2 else "/me", tok[0])
            out.append((time.time(), r.status_code, r.headers.get("content-type", ""), (r.json() or {}).get("code") if r.status_code >= 400 else None))
        except requests.RequestException as e:
            out.append((time.time(), 0, "", repr(e)[:60]))
    i = 0
    with cf.ThreadPoolExecutor(8) as ex:
        while not stop_flag.is_set():
            list(ex.map(one, range(i, i + 16)))
            i += 16
            time.sleep(0.02)


def scaled():
    print("== scaled mode: two instances on PostgreSQL + Redis (issue 12)")
    pg, rd = PrivatePostgres(), PrivateRedis()
    env = scaled_env(pg.new_database(), rd.url, **lifted(FORTFOLIO_RATE_LIMITS__PRICES="5/min"))
    a, b = Server(env), Server(env)
    h = a.req("GET", "/health").json()
    check("/health names the real backends", h["storage"] == "postgres" and h["state"] == "redis", str(h))
    a.register("x@example.com")
    r = b.login("x@example.com")
    check("registered on A, logs in on B", r.status_code == 200, str(r.status_code))
    tok = a.login("x@example.com").json()["access_token"]
    ok_before = b.req("GET", "/me", tok).status_code == 200
    a.req("POST", "/auth/logout", tok)
    t0 = time.time()
    refused = wait_for(lambda: b.req("GET", "/me", tok).status_code == 401, 1.0)
    check("an access token logged out on A is refused on B within 1 s", ok_before and refused, f"{time.time() - t0:.3f} s")
    a.register("lock@example.com")
    codes = [(a if i % 2 == 0 else b).login("lock@example.com", "wrong-guess-123456").status_code for i in range(5)]
    after = [srv.login("lock@example.com").status_code for srv in (a, b)]
    check("5 wrong passwords over A and B lock the account on both (423)", after == [423, 423], f"{codes} then {after}")
    t = b.login("x@example.com").json()["access_token"]
    seq = [(a if i % 2 == 0 else b).req("GET", "/prices", t).status_code for i in range(5)]
    sixth = [srv.req("GET", "/prices", t) for srv in (a, b)]
    check("a 5/min limit is shared: the 6th request on either gets 429",
          seq == [200] * 5 and all(is_problem(x, 429, "rate_limited") for x in sixth), f"{seq} then {[x.status_code for x in sixth]}")
    a.req("POST", "/portfolio/buy", t, json={"symbol": "MSFT", "quantity": "4", "price": "400"})
    pos = {p["symbol"]: p for p in b.req("GET", "/portfolio", t).json()["positions"]}
    check("bought on A, valued on B at once", pos.get("MSFT", {}).get("quantity") == "4", str(pos.get("MSFT")))
    tf = a.register("tf@example.com")["access_token"]
    sec = a.req("POST", "/auth/2fa/enable", tf, json={"password": PASSWORD}).json()["secret"]
    codes = a.req("POST", "/auth/2fa/verify", tf, json={"code": pyotp.TOTP(sec).now()}).json()["backup_codes"]
    ch = a.login("tf@example.com").json()["challenge_token"]
    used = a.req("POST", "/auth/2fa/backup-code", json={"challenge_token": ch, "backup_code": codes[0]})
    ch = b.login("tf@example.com").json()["challenge_token"]
    again = b.req("POST", "/auth/2fa/backup-code", json={"challenge_token": ch, "backup_code": codes[0]})
    check("a backup code spent on A is refused on B", used.status_code == 200 and is_problem(again, 401, "invalid_backup_code"))

    seller = a.register("sell@example.com")["access_token"]
    a.req("POST", "/portfolio/buy", seller, json={"symbol": "NVDA", "quantity": "10", "price": "100"})
    with cf.ThreadPoolExecutor(40) as ex:
        res = list(ex.map(lambda i: (a if i % 2 else b).req("POST", "/portfolio/sell", seller, json={"symbol": "NVDA", "quantity": "1", "price": "120"}).status_code, range(40)))
    txs = a.req("GET", "/portfolio/transactions?limit=100", seller).json()["items"]
    nvda = next(p for p in b.req("GET", "/portfolio", seller).json()["positions"] if p["symbol"] == "NVDA")
    sold = sum(1 for x in txs if x["side"] == "sell")
    check("40 concurrent sells of 10 over A and B: exactly 10 succeed, none oversold, position = ledger",
          res.count(201) == 10 and res.count(422) == 30 and sold == 10 and nvda["quantity"] == "0",
          f"{res.count(201)} × 201, {res.count(422)} × 422, ledger sells {sold}, quantity {nvda['quantity']}")
    a.stop()
    b.stop()

    port = free_port()
    ctl, sink = smtp_sink(port)
    mail = {"FORTFOLIO_SMTP__HOST": "127.0.0.1", "FORTFOLIO_SMTP__PORT": str(port), "FORTFOLIO_SMTP__SECURITY": "none"}
    env2 = scaled_env(pg.new_database(), rd.url, **lifted(**mail))
    a, b = Server(env2), Server(env2)
    a.register("mail@example.com", ua="ua-one")
    b.login("mail@example.com", headers={"User-Agent": "ua-two"})
    wait_for(lambda: len(alerts_of(sink.msgs)) >= 1, 10)
    time.sleep(3)
    check("with A and B both delivering, a new-device login sends exactly one mail", len(alerts_of(sink.msgs)) == 1, f"{len(alerts_of(sink.msgs))} alert mails")
    ctl.stop()
    a.stop()
    b.stop()

    env3 = scaled_env(pg.new_database(), rd.url, **lifted())
    a, b = Server(env3), Server(env3)
    users = []
    for i in range(4):
        email = f"load{i}@example.com"
        users.append((a.register(email)["access_token"], email))
    victim = a.login("load0@example.com").json()["access_token"]
    csv = os.path.join(a.dir, "zzzq.csv")
    open(csv, "w").write("Date,Open,High,Low,Close,Volume\n2024-01-02,1,2,0.5,1.5,10\n2024-01-03,1,2,0.5,3.25,10\n")
    a.cli("prices", "import", csv)
    t0 = time.time()
    seen = wait_for(lambda: b.req("GET", "/prices/ZZZQ", users[0][0]).json().get("price") == "3.25", 1.0)
    check("prices imported on A are served by B within 1 s", seen, f"{time.time() - t0:.3f} s")
    out, stop_flag = [], threading.Event()
    th = threading.Thread(target=load, args=([a, b], users, 0, stop_flag, out))
    th.start()
    time.sleep(1)
    rd.stop()
    t0 = time.time()
    degraded = wait_for(lambda: all(s.req("GET", "/ready").json().get("status") == "degraded" for s in (a, b)), 5)
    took = time.time() - t0
    login = b.login("load1@example.com").status_code
    a.req("POST", "/auth/logout", victim)
    refused_during = wait_for(lambda: b.req("GET", "/me", victim).status_code == 401, 2)
    time.sleep(1)
    rd.start()
    back = wait_for(lambda: all(s.req("GET", "/ready").json().get("status") == "ready" for s in (a, b)), 10)
    time.sleep(1)
    stop_flag.set()
    th.join()
    bad = [o for o in out if o[1] == 0 or o[1] >= 500]
    check("Redis stopped under load: no request fails (no 5xx, no error)", not bad and len(out) > 50, f"{len(out)} requests, {len(bad)} failed {bad[:3]}")
    check("/ready says degraded on both within 5 s", degraded, f"{took:.1f} s")
    check("logins still work while Redis is down", login == 200, str(login))
    after = [s.req("GET", "/me", victim).status_code for s in (a, b)]
    check("Redis back: /ready ready again; a token revoked during the outage is refused on both",
          back and after == [401, 401], f"refused during outage on B: {refused_during}; after: {after}")
    ev = subprocess.run(["psql", "-At", env3["FORTFOLIO_STORAGE__POSTGRES_URL"], "-c",
                         "SELECT count(*) FROM events WHERE event = 'state_degraded'"], capture_output=True, text=True).stdout.strip()
    check("a state_degraded security event was written (one per instance)", ev == "2", ev)

    buyer = a.register("pgdown@example.com")["access_token"]
    out, stop_flag = [], threading.Event()
    orders = []

    def buy_loop():
        while not stop_flag.is_set():
            try:
                r = a.req("POST", "/portfolio/buy", buyer, json={"symbol": "AAPL", "quantity": "1", "price": "10"})
                orders.append((r.status_code, r.headers.get("content-type", ""), r.json().get("code") if r.status_code >= 400 else None))
            except requests.RequestException as e:
                orders.append((0, "", repr(e)[:60]))
            time.sleep(0.01)
    th = threading.Thread(target=load, args=([a, b], users[1:], 0, stop_flag, out))
    tb = threading.Thread(target=buy_loop)
    th.start()
    tb.start()
    time.sleep(1)
    pg.stop()
    time.sleep(3)
    ready = [s.req("GET", "/ready").status_code for s in (a, b)]
    pg.start()
    resumed = wait_for(lambda: all(s.req("GET", "/me", buyer).status_code == 200 for s in (a, b)), 20)
    time.sleep(1)
    stop_flag.set()
    th.join()
    tb.join()
    allr = out + [(0, o[0], o[1], o[2]) for o in orders]
    five = [o for o in allr if o[1] >= 500]
    wrong = [o for o in five if not (o[1] == 503 and o[3] == "storage_unavailable" and o[2] == "application/problem+json")]
    check("PostgreSQL stopped under load: /ready 503; failures are 503 storage_unavailable, none 500",
          ready == [503, 503] and five and not wrong and not [o for o in allr if o[1] == 0],
          f"ready {ready}; {len(allr)} requests, {len(five)} × 503, other failures {wrong[:3]}")
    txs = []
    cur = None
    while True:
        page = a.req("GET", "/portfolio/transactions?limit=100" + (f"&cursor={cur}" if cur else ""), buyer).json()
        txs += page["items"]
        cur = page.get("next_cursor")
        if not cur:
            break
    aapl = next(p for p in a.req("GET", "/portfolio", buyer).json()["positions"] if p["symbol"] == "AAPL")
    ok201 = sum(1 for o in orders if o[0] == 201)
    check("PostgreSQL back: served again without restarts; no order half-written (position = ledger ⊇ answered)",
          resumed and aapl["quantity"] == str(len(txs)) and len(txs) >= ok201, f"{ok201} answered 201, ledger {len(txs)}, quantity {aapl['quantity']}")
    a.stop()
    b.stop()

    e = Server(lifted())
    toks = []
    for i in range(3):
        toks.append(e.register(f"m{i}@example.com")["access_token"])
    sec = e.req("POST", "/auth/2fa/enable", toks[0], json={"password": PASSWORD}).json()["secret"]
    e.req("POST", "/auth/2fa/verify", toks[0], json={"code": pyotp.TOTP(sec).now()})
    for i in range(100):
        e.req("POST", "/portfolio/buy", toks[i % 3], json={"symbol": ["AAPL", "MSFT", "SPY"][i % 3], "quantity": "1.5", "price": str(100 + i)})
    csv = os.path.join(e.dir, "mgrt.csv")
    open(csv, "w").write("Date,Open,High,Low,Close,Volume\n2024-01-02,1,2,0.5,1.5,10\n2024-01-03,1,2,0.5,4.5,10\n")
    e.cli("prices", "import", csv)
    before = [e.req("GET", "/portfolio", t).json()["positions"] for t in toks[1:]]
    e.stop()
    target = pg.new_database()
    out = e.cli("admin", "migrate", "--to", "postgres", "--postgres-url", target)
    again = e.cli("admin", "migrate", "--to", "postgres", "--postgres-url", target)
    check("admin migrate copies 3 users, 100 orders and imported prices; counts checked; a second run is refused",
          out.returncode == 0 and "counts match" in out.stdout and "transactions           100" in out.stdout
          and again.returncode != 0 and "not empty" in again.stderr, out.stdout.replace("\n", " | ")[:300])
    e.env.update(scaled_env(target, rd.url, **lifted()))
    e.env.pop("FORTFOLIO_AUTH__TOTP_KEY")
    e.env.pop("FORTFOLIO_AUTH__JWT_SECRET")
    e.env["FORTFOLIO_AUTH__TOTP_KEY_FILE"] = os.path.join(e.dir, "data", "totp.key")
    e.env["FORTFOLIO_AUTH__JWT_SECRET_FILE"] = os.path.join(e.dir, "data", "jwt.key")
    e.start()
    kept = e.req("GET", "/me", toks[1]).status_code
    l0 = e.login("m0@example.com").json()
    time.sleep(30 - time.time() % 30 + 0.5)
    r0 = e.req("POST", "/auth/login/2fa", json={"challenge_token": l0.get("challenge_token"), "code": pyotp.TOTP(sec).now()})
    logins = [e.login(f"m{i}@example.com") for i in (1, 2)]
    after = [e.req("GET", "/portfolio", l.json()["access_token"]).json()["positions"] for l in logins]
    same = [[(p["symbol"], p["quantity"], p["cost_basis"]) for p in x] for x in before] == [[(p["symbol"], p["quantity"], p["cost_basis"]) for p in x] for x in after]
    price = e.req("GET", "/prices/MGRT", logins[0].json()["access_token"]).json().get("price")
    check("after switching the config, every user logs in (2FA included) and sees the same portfolio and prices",
          r0.status_code == 200 and all(l.status_code == 200 for l in logins) and same and price == "4.5" and kept == 200,
          f"2FA {r0.status_code}, logins {[l.status_code for l in logins]}, same portfolio {same}, MGRT {price}, token from before {kept}")
    e.stop()
    rd.stop()
    pg.stop()


# ---------------------------------------------------------------- openapi (issue 13)
def webdriver_docs(root, operations):
    """Opens /docs in headless Chromium (chromedriver over plain HTTP) with
    every host but loopback unresolvable; returns (blocks shown, console
    problems, foreign fetches)."""
    port = free_port()
    drv = subprocess.Popen(["chromedriver", f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wd = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                requests.get(wd + "/status", timeout=1)
                break
            except requests.RequestException:
                time.sleep(0.1)
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "acceptInsecureCerts": True,
                "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"]},
                "goog:loggingPrefs": {"browser": "ALL"}}}}
        sid = requests.post(wd + "/session", json=caps, timeout=300).json()["value"]["sessionId"]
        session = f"{wd}/session/{sid}"
        run = lambda js: requests.post(session + "/execute/sync", json={"script": js, "args": []}, timeout=300).json()["value"]
        requests.post(session + "/url", json={"url": root + "/docs"}, timeout=300)
        shown = 0
        for _ in range(300):
            shown = run("return document.querySelectorAll('.opblock').length;")
            if shown == operations:
                break
            time.sleep(0.2)
        run("document.querySelectorAll('.opblock-summary-control').forEach(b => b.click()); return 0;")
        opened = 0
        for _ in range(300):
            opened = run("return document.querySelectorAll('.opblock .responses-wrapper').length;")
            if opened == operations:
                break
            time.sleep(0.2)
        log = requests.post(session + "/se/log", json={"type": "browser"}, timeout=30).json()["value"]
        bad = [e["message"] for e in log if e.get("level") == "SEVERE" or "Content Security Policy" in e.get("message", "")]
        fetched = run("return performance.getEntriesByType('resource').map(e => e.name);")
        foreign = [u for u in fetched if not u.startswith(root)]
        requests.delete(session, timeout=30)
        return shown, opened, bad, foreign, len(fetched)
    finally:
        drv.kill()


def openapi():
    from openapi_spec_validator import validate
    s = Server(lifted())
    root = s.base[: -len("/api/v1")]
    raw = requests.get(s.base + "/openapi.json", verify=False).text
    doc = json.loads(raw)
    try:
        validate(doc)
        valid = True
    except Exception as e:  # noqa: BLE001 - the validator's own error types
        valid = repr(e)[:200]
    ops = [(p, m, o) for p, item in doc["paths"].items() for m, o in item.items() if m in ("get", "post", "put", "patch", "delete")]
    statuses = sum(len(o["responses"]) for _, _, o in ops)
    closed = [n for n, sch in doc["components"]["schemas"].items()
              if sch.get("type") == "object" and sch.get("additionalProperties") is False]
    check("openapi: the served document validates (openapi-spec-validator)", valid is True,
          f"{valid}; {len(ops)} operations, {statuses} documented answers, {len(doc['components']['schemas'])} schemas, {len(closed)} closed request schemas")
    checked_in = open(os.path.join(ROOT, "openapi.json")).read()
    printed = subprocess.run([BIN, "openapi"], capture_output=True, text=True).stdout
    check("openapi: the checked-in openapi.json and `fortfolio openapi` equal the served document",
          checked_in == raw and printed == raw, f"{len(raw)} bytes")
    tok = s.register("walker@example.com")["access_token"]
    unrouted, undocumented_methods, undocumented_answers = [], [], []
    for path, method, op in ops:
        url = root + path.replace("{id}", "0190a0a0-0000-7000-8000-000000000000").replace("{symbol}", "SPY").replace("{file}", "docs.js")
        for probe, kw in [("no token", {}), ("malformed", {"headers": {"Authorization": f"Bearer {tok}", "content-type": "application/json"}, "data": "{"}),
                          ("bad query", {"headers": {"Authorization": f"Bearer {tok}"}, "params": {"limit": "0"}})]:
            if "logout" in path and probe != "no token":
                continue
            r = requests.request(method.upper(), url, verify=False, timeout=30, **kw)
            if r.status_code == 405 or (r.status_code == 404 and r.json().get("detail") == "no such endpoint"):
                unrouted.append(f"{method} {path}")
            answer = op["responses"].get(str(r.status_code))
            codes = (answer or {}).get("content", {}).get("application/problem+json", {}).get("schema", {}).get("properties", {}).get("code", {}).get("enum", [])
            if answer is None or (r.headers.get("content-type", "").startswith("application/problem+json") and r.json().get("code") not in codes):
                undocumented_answers.append(f"{method} {path} {probe} -> {r.status_code} {r.text[:80]}")
    for path, item in doc["paths"].items():
        for method in ("get", "post", "put", "patch", "delete"):
            if method not in item:
                r = requests.request(method.upper(), root + path.replace("{id}", "x").replace("{symbol}", "SPY").replace("{file}", "docs.js"), verify=False, timeout=30)
                if r.status_code != 405:
                    undocumented_methods.append(f"{method} {path} -> {r.status_code}")
    check("openapi: every documented operation is routed, no other method is, every probe answer is documented",
          not unrouted and not undocumented_methods and not undocumented_answers,
          f"unrouted {unrouted}, extra methods {undocumented_methods[:3]}, undocumented {undocumented_answers[:3]}")
    d = requests.get(root + "/docs", verify=False)
    csp = d.headers.get("content-security-policy", "")
    assets = [requests.get(f"{root}/docs/{a}", verify=False).status_code for a in ("swagger-ui-bundle.js", "swagger-ui.css", "docs.js", "docs.css")]
    check("openapi: /docs is Swagger UI from the binary with a no-script table, under a strict CSP",
          d.status_code == 200 and "<noscript>" in d.text and "'unsafe" not in csp and "script-src 'self'" in csp and assets == [200] * 4,
          f"CSP `{csp}`, assets {assets}")
    if subprocess.run(["which", "chromedriver"], capture_output=True).returncode == 0:
        shown, opened, bad, foreign, fetched = webdriver_docs(root, len(ops))
        check("openapi: /docs in headless Chromium shows and opens every operation, offline, no console error or CSP violation",
              shown == len(ops) and opened == len(ops) and not bad and not foreign,
              f"{shown}/{len(ops)} shown, {opened} opened, {fetched} files fetched, foreign {foreign[:2]}, console {bad[:2]}")
    else:
        check("openapi: chromedriver installed for the browser check", False)
    s.stop()
    st = os.environ.get("SCHEMATHESIS", "st")
    t0 = time.time()
    fuzz = subprocess.run([os.path.join(ROOT, "scripts", "fuzz", "run.sh"), "500"], env=dict(os.environ, SCHEMATHESIS=st),
                          capture_output=True, text=True)
    took = time.time() - t0
    tail = fuzz.stdout[fuzz.stdout.rfind("Test cases:"):][:300] if "Test cases:" in fuzz.stdout else fuzz.stdout[-600:]
    try:
        seen = json.load(open(os.path.join(ROOT, "target", "schemathesis", "exercised.json")))
    except (OSError, ValueError):
        seen = {"query": {}, "headers": {}}
    q = seen["query"]
    paging = {k: v for k, v in q.items() if k.endswith("?limit") or k.endswith("?cursor")}
    filters = {k: v for k, v in q.items() if k.endswith(("?symbol", "?since", "?history"))}
    idem = seen["headers"].get("Idempotency-Key", 0)
    check("openapi: schemathesis, every check, 500 examples per operation, stateful phase on: 0 failures",
          fuzz.returncode == 0, f"{took:.0f} s; {' '.join(tail.split())}")
    check("openapi: the fuzzer exercised paging, filters and Idempotency-Key",
          len(paging) >= 12 and len(filters) >= 4 and idem > 100,
          f"paging {sum(paging.values())} requests over {len(paging)} params, filters {filters}, Idempotency-Key {idem}")

def packaging():
    """Issue 14: the release script, the .deb installed and removed on this
    machine, lintian, the archive, health, completions, man pages, progress."""
    t0 = time.time()
    rel = subprocess.run([os.path.join(ROOT, "scripts", "release.sh")], cwd=ROOT, capture_output=True, text=True)
    outputs = [l for l in rel.stdout.splitlines() if l.startswith("/")]
    deb = next((o for o in outputs if o.endswith(".deb")), "")
    tgz = next((o for o in outputs if o.endswith(".tar.gz")), "")
    sums = next((o for o in outputs if o.endswith("SHA256SUMS")), "")
    check("packaging: release.sh makes the .deb, the archive and SHA256SUMS",
          rel.returncode == 0 and all(os.path.isfile(x) for x in (deb, tgz, sums)),
          f"{time.time() - t0:.0f} s; " + ", ".join(f"{os.path.basename(x)} {os.path.getsize(x) // 1024} KiB" for x in (deb, tgz) if x) + (rel.stderr[-300:] if rel.returncode else ""))
    if rel.returncode:
        return
    verify = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=os.path.dirname(sums), capture_output=True, text=True)
    check("packaging: SHA256SUMS verifies", verify.returncode == 0, " ".join(verify.stdout.split()))
    listing = subprocess.run(["tar", "-tzf", tgz], capture_output=True, text=True).stdout.split()
    stem = os.path.basename(tgz)[:-len(".tar.gz")]
    want = ["fortfolio", "config.toml.example", "README.md", "systemd/fortfolio.service", "licenses/LICENSE-MIT",
            "licenses/LICENSE-APACHE", "licenses/VADER_LICENSE.txt", "licenses/copyright",
            "completions/fortfolio.bash", "completions/_fortfolio", "completions/fortfolio.fish", "man/fortfolio.1.gz"]
    missing = [w for w in want if f"{stem}/{w}" not in listing]
    pages = [l for l in listing if l.endswith(".1.gz")]
    check("packaging: the archive holds binary, config, unit, README, licences, completions, man pages",
          not missing and len(pages) >= 20, f"{len(listing)} entries, {len(pages)} man pages" + (f", missing {missing}" if missing else ""))
    with tempfile.TemporaryDirectory() as d:
        subprocess.run(["tar", "-xzf", tgz, "-C", d], check=True)
        version = subprocess.run([os.path.join(d, stem, "fortfolio"), "--version"], capture_output=True, text=True).stdout.strip()
    import re
    check("packaging: --version prints version, commit and build date",
          re.fullmatch(r"fortfolio \d+\.\d+\.\d+ \(commit [0-9a-f]{12}, built \d{4}-\d{2}-\d{2}\)", version) is not None, version)
    lint = subprocess.run(["lintian", "--no-tag-display-limit", deb], capture_output=True, text=True)
    tags = [l for l in lint.stdout.splitlines() if l[:2] in ("E:", "W:")]
    errors = [t for t in tags if t.startswith("E:")]
    warnings = sorted({t.split(": ", 2)[-1].split(" ")[0] for t in tags if t.startswith("W:")})
    check("packaging: lintian reports no errors", lint.returncode != 2 and not errors,
          f"{len(errors)} errors {errors[:5]}; warnings: {', '.join(warnings) or 'none'}")
    t0 = time.time()
    pkg = subprocess.run([os.path.join(ROOT, "scripts", "package-test.sh"), deb], cwd=ROOT, capture_output=True, text=True)
    score = next((l for l in pkg.stdout.splitlines() if "exposure level" in l), "")
    check("packaging: install, modes, serve as fortfolio, admin as root, remove keeps data, purge deletes (package-test.sh)",
          pkg.returncode == 0 and "all checks passed" in pkg.stdout,
          f"{time.time() - t0:.0f} s; " + (score.strip() if pkg.returncode == 0 else (pkg.stdout + pkg.stderr)[-600:]))

    # The container's config, as the container's non-root user would run it.
    with tempfile.TemporaryDirectory() as d:
        os.chmod(d, 0o777)
        data = os.path.join(d, "data")
        port = free_port()
        env = dict(os.environ, FORTFOLIO_STORAGE__DATA_DIR=data, FORTFOLIO_LOGGING__DIR=os.path.join(d, "logs"),
                   FORTFOLIO_SERVER__BIND=f"127.0.0.1:{port}")
        cfg = os.path.join(ROOT, "packaging", "container.toml")
        as_nobody = ["runuser", "-u", "nobody", "--"] if os.geteuid() == 0 else []
        proc = subprocess.Popen(as_nobody + [BIN, "serve", "--config", cfg], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            ok = wait_for(lambda: subprocess.run(as_nobody + [BIN, "health", "--config", cfg], env=env, capture_output=True).returncode == 0, 15)
            line = subprocess.run(as_nobody + [BIN, "health", "--config", cfg], env=env, capture_output=True, text=True).stdout.strip()
        finally:
            proc.terminate()
            proc.wait()
        down = subprocess.run([BIN, "health", "--config", cfg, "--timeout", "2"], env=env, capture_output=True, text=True)
        check("packaging: the container config serves plain HTTP as a non-root user; health exits 0, then 1 when stopped",
              ok and line.startswith("healthy:") and "http://127.0.0.1" in line and down.returncode == 1,
              f"{line} / stopped: exit {down.returncode}: {down.stdout.strip()}")

    # Progress: a bar on a terminal, nothing off one.
    import pty
    with tempfile.TemporaryDirectory() as d:
        csv = os.path.join(d, "ACME.csv")
        with open(csv, "w") as f:
            f.write("date,open,high,low,close,volume\n")
            for i in range(6000):
                day = time.strftime("%Y-%m-%d", time.gmtime(86400 * (4000 + i)))
                f.write(f"{day},10,11,9,10.5,1000\n")
        env = dict(os.environ, FORTFOLIO_STORAGE__DATA_DIR=os.path.join(d, "data"), FORTFOLIO_LOGGING__DIR=os.path.join(d, "logs"))
        pid, fd = pty.fork()
        if pid == 0:
            os.execve(BIN, [BIN, "prices", "import", csv], env)
        seen = b""
        while True:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        os.waitpid(pid, 0)
        piped = subprocess.run([BIN, "prices", "import", csv, "--symbol", "ACME2"], env=env, capture_output=True, text=True)
        tty_text = seen.decode(errors="replace")
        check("packaging: prices import draws an indicatif bar on a terminal and none off one",
              "6000/6000 rows" in tty_text and "imported 6000 rows" in tty_text and piped.returncode == 0
              and "\r" not in piped.stderr and "rows" not in piped.stderr and "imported 6000 rows for ACME2" in piped.stdout,
              f"terminal: {len(seen)} bytes with the bar; piped stderr {len(piped.stderr)} bytes")


# ---------------------------------------------------------------- lifecycle
def mail_token(sink, subject_has, route, to=None, since=0):
    """The token of the newest mail (after `since`) whose subject has `subject_has`."""
    import quopri
    def find():
        for m in reversed(sink.msgs[since:]):
            head = m.split("\n\n", 1)[0]
            if subject_has in head and (to is None or f"To: {to}" in head):
                return m
    m = wait_for(lambda: find() is not None, 10) and find()
    if not m:
        return None
    text = quopri.decodestring(m.encode()).decode("utf8", "replace")
    marker = f"#/{route}/"
    at = text.index(marker) + len(marker)
    tok = ""
    for c in text[at:]:
        if c.isalnum() or c in "-_":
            tok += c
        else:
            break
    return tok


def lifecycle():
    print("== account lifecycle and the tamper-evident log (issue 16)")
    port = free_port()
    ctl, sink = smtp_sink(port)
    mail = {"FORTFOLIO_SMTP__HOST": "127.0.0.1", "FORTFOLIO_SMTP__PORT": str(port), "FORTFOLIO_SMTP__SECURITY": "none"}
    s = Server(lifted(**mail))
    secrets = [PASSWORD]

    # 1. verification
    reg = s.register("life@example.com")
    tok = mail_token(sink, "Confirm your fortfolio email address", "verify-email", "life@example.com")
    secrets.append(tok or "")
    r1 = s.req("POST", "/auth/verify-email", json={"token": tok})
    r2 = s.req("POST", "/auth/verify-email", json={"token": tok})
    me = s.req("GET", "/me", reg["access_token"]).json()
    check("register mails a verification link; its token verifies once, then 400 invalid_token",
          tok is not None and len(tok) == 43 and r1.status_code == 200 and is_problem(r2, 400, "invalid_token") and me["email_verified"] is True,
          f"{r1.status_code} then {r2.status_code} {r2.json().get('code')}")
    strict = Server(lifted(FORTFOLIO_AUTH__REQUIRE_EMAIL_VERIFICATION="true", **mail))
    u = strict.register("strict@example.com")
    p = strict.req("GET", "/portfolio", u["access_token"])
    m = strict.req("GET", "/me", u["access_token"])
    check("require_email_verification = true: unverified account gets 403 email_not_verified on /portfolio, /me works",
          is_problem(p, 403, "email_not_verified") and m.status_code == 200, f"{p.status_code} {p.json().get('code')}, /me {m.status_code}")
    strict.stop()

    # 2. password reset: same answer and timing for known and unknown
    other = s.login("life@example.com").json()
    n0 = len(sink.msgs)
    def timed(email):
        t = time.perf_counter()
        r = s.req("POST", "/auth/password-reset/request", json={"email": email})
        return time.perf_counter() - t, r
    known, unknown = [], []
    for i in range(20):
        for email, out in (("life@example.com", known), (f"ghost{i}@example.com", unknown)):
            out.append(timed(email))
    mk, mu = statistics.median(t for t, _ in known), statistics.median(t for t, _ in unknown)
    same = all(r.status_code == 202 and r.json() == known[0][1].json() for _, r in known + unknown)
    check("reset request: known and unknown emails get the same status and body, median latency within 15 %",
          same and abs(mk - mu) / max(mk, mu) <= 0.15, f"202 x40, known {mk*1000:.2f} ms, unknown {mu*1000:.2f} ms")
    wait_for(lambda: len([m for m in sink.msgs[n0:] if "Reset your fortfolio password" in m]) >= 20, 20)
    resets = [m for m in sink.msgs[n0:] if "Reset your fortfolio password" in m]
    check("only the known address receives reset mails", len(resets) == 20 and all("To: life@example.com" in m for m in resets)
          and not any("ghost" in m for m in sink.msgs), f"{len(resets)} reset mails")
    tok = mail_token(sink, "Reset your fortfolio password", "reset-password", "life@example.com")
    secrets.append(tok or "")
    weak = s.req("POST", "/auth/password-reset/confirm", json={"token": tok, "new_password": "password1234"})
    new_pw = "quartz-meadow-lantern-77"
    secrets.append(new_pw)
    ok = s.req("POST", "/auth/password-reset/confirm", json={"token": tok, "new_password": new_pw})
    again = s.req("POST", "/auth/password-reset/confirm", json={"token": tok, "new_password": "another-fine-phrase-93"})
    old_access = s.req("GET", "/me", other["access_token"])
    old_refresh = s.req("POST", "/auth/refresh", json={"refresh_token": other["refresh_token"]})
    check("confirm: weak password 422 weak_password; a good one 200; the token works once",
          is_problem(weak, 422, "weak_password") and ok.status_code == 200 and is_problem(again, 400, "invalid_token"),
          f"{weak.status_code}, {ok.status_code}, {again.status_code}")
    check("after the reset every old session and refresh token is dead, the new password works, the old one does not",
          old_access.status_code == 401 and old_refresh.status_code == 401 and s.login("life@example.com", new_pw).status_code == 200
          and s.login("life@example.com").status_code == 401, f"old access {old_access.status_code}, old refresh {old_refresh.status_code}")
    # 2FA
    t2 = s.register("twofa@example.com")["access_token"]
    sec = s.req("POST", "/auth/2fa/enable", t2, json={"password": PASSWORD}).json()["secret"]
    totp = pyotp.TOTP(sec)
    s.req("POST", "/auth/2fa/verify", t2, json={"code": totp.at(time.time() - 30)})
    s.req("POST", "/auth/password-reset/request", json={"email": "twofa@example.com"})
    tok2 = mail_token(sink, "Reset your fortfolio password", "reset-password", "twofa@example.com")
    secrets.append(tok2 or "")
    none = s.req("POST", "/auth/password-reset/confirm", json={"token": tok2, "new_password": new_pw})
    wrong = s.req("POST", "/auth/password-reset/confirm", json={"token": tok2, "new_password": new_pw,
                                                                  "code": "000000" if totp.now() != "000000" else "111111"})
    good = s.req("POST", "/auth/password-reset/confirm", json={"token": tok2, "new_password": new_pw, "code": totp.now()})
    check("a user with 2FA cannot reset without a valid code (401 invalid_2fa_code), can with one",
          is_problem(none, 401, "invalid_2fa_code") and is_problem(wrong, 401, "invalid_2fa_code") and good.status_code == 200,
          f"{none.status_code}, {wrong.status_code}, {good.status_code}")

    # 3. email change
    acc = s.login("life@example.com", new_pw).json()["access_token"]
    n1 = len(sink.msgs)
    ch = s.req("POST", "/me/email", acc, json={"new_email": "life-new@example.com", "password": new_pw})
    ctok = mail_token(sink, "Confirm your new fortfolio email address", "confirm-email", "life-new@example.com", n1)
    alert = mail_token(sink, "about to change", "cancel-email-change", "life@example.com", n1)
    secrets += [ctok or "", alert or ""]
    before = s.login("life@example.com", new_pw).status_code
    conf = s.req("POST", "/auth/confirm-email", json={"token": ctok})
    after_new, after_old = s.login("life-new@example.com", new_pw).status_code, s.login("life@example.com", new_pw).status_code
    told = wait_for(lambda: any("address was changed" in m and "To: life@example.com" in m for m in sink.msgs[n1:]), 10)
    check("email change: the new address confirms it, the old address gets an alert (and one after), the old email signs in until then",
          ch.status_code == 202 and ctok and alert and before == 200 and conf.status_code == 200 and after_new == 200 and after_old == 401 and told,
          f"202, old before {before}, confirm {conf.status_code}, new {after_new}, old after {after_old}")

    # 5. secrets never in logs or events
    s.stop()
    logs = os.path.join(s.dir, "logs")
    blobs = [open(os.path.join(logs, f)).read() for f in os.listdir(logs)] + [open(os.path.join(s.dir, "server.log")).read()]
    blobs.append(s.cli("admin", "events", "--json", "--limit", "100000").stdout)
    leaked = [x[:6] for x in secrets if x and any(x in b for b in blobs)]
    check("no token, code or password appears in any log line or stored event", not leaked, f"{len(secrets)} secrets checked; leaked: {leaked}")
    doc = json.loads(subprocess.run([BIN, "openapi"], capture_output=True, text=True).stdout)
    new_ops = ["/auth/verify-email", "/auth/verify-email/resend", "/auth/password-reset/request", "/auth/password-reset/confirm",
               "/me/email", "/auth/confirm-email", "/auth/cancel-email-change"]
    groups = {p: doc["paths"].get("/api/v1" + p, {}).get("post", {}).get("x-rate-limit-group") for p in new_ops}
    check("every new endpoint has a rate-limit group (recovery)", all(g == "recovery" for g in groups.values()), str(groups))

    # 4. the chain: rotation over two days and retention, then edits
    for name in ("security.log", "security.json"):
        path = os.path.join(logs, name)
        old = time.time() - 3 * 86400
        os.utime(path, (old, old))
    s.start()
    s.login("life-new@example.com", new_pw)
    s.stop()
    rotated = sorted(f for f in os.listdir(logs) if f.startswith("security.json."))
    s.env["FORTFOLIO_LOGGING__RETENTION_DAYS"] = "1"
    s.start()
    for _ in range(4):
        s.login("life-new@example.com", new_pw)
    s.stop()
    left = sorted(f for f in os.listdir(logs) if f.startswith("security.json"))
    v = s.cli("admin", "events", "verify", "--files")
    check("a log rotated across two days and purged by retention still verifies (exit 0)",
          rotated and not any(f in left for f in rotated) and v.returncode == 0, f"rotated {rotated}, left {left}, exit {v.returncode}: {v.stdout.strip()[-200:]}")
    path = os.path.join(logs, "security.json")
    saved = open(path).read()
    lines = saved.splitlines()

    def tampered(new_lines, label):
        open(path, "w").write("\n".join(new_lines) + "\n")
        r = s.cli("admin", "events", "verify", "--files")
        open(path, "w").write(saved)
        return r, f"{label}: exit {r.returncode}, {r.stderr.strip().splitlines()[-1] if r.stderr.strip() else ''}"
    d, dmsg = tampered(lines[:3] + lines[4:], "deleted line 4")
    w, wmsg = tampered(lines[:2] + [lines[3], lines[2]] + lines[4:], "swapped lines 3 and 4")
    edited = lines[:]
    edited[5] = edited[5].replace('"outcome":"success"', '"outcome":"failure"', 1) if '"outcome":"success"' in edited[5] else edited[5].replace('"outcome":"failure"', '"outcome":"success"', 1)
    e, emsg = tampered(edited, "edited line 6")
    check("security.json: a deleted line, two swapped lines and an edited line are each reported with their position (exit 1)",
          d.returncode == 1 and "line 4" in d.stderr and "deleted" in d.stderr and w.returncode == 1 and "line 3" in w.stderr
          and "reordered" in w.stderr and e.returncode == 1 and "line 6" in e.stderr and "edited" in e.stderr, f"{dmsg} | {wmsg} | {emsg}")
    ok = s.cli("admin", "events", "verify", "--files")
    check("an untouched log exits 0", ok.returncode == 0, ok.stdout.strip().splitlines()[-1] if ok.stdout.strip() else ok.stderr)
    ctl.stop()

    # A stored event edited in the database (PostgreSQL, as someone with DB access would).
    pg = PrivatePostgres()
    url = pg.new_database()
    env = lifted(FORTFOLIO_STORAGE__BACKEND="postgres", FORTFOLIO_STORAGE__POSTGRES_URL=url, **SHARED_KEYS)
    ps = Server(env)
    ps.register("pg@example.com")
    ps.login("pg@example.com", "wrong-password-99")
    before = ps.cli("admin", "events", "verify")
    row = subprocess.run(["psql", "-tA", url, "-c", "SELECT seq FROM events WHERE event = 'login_failure'"], capture_output=True, text=True).stdout.strip()
    subprocess.run(["psql", "-q", url, "-c", "UPDATE events SET details = jsonb_set(details, '{reason}', '\"invalid_credentialz\"') WHERE event = 'login_failure'"],
                   check=True, capture_output=True)
    after = ps.cli("admin", "events", "verify")
    check("one byte of a stored event's details edited in the database: verify names it and exits 1",
          before.returncode == 0 and after.returncode == 1 and f"seq {row}" in after.stderr and "edited" in after.stderr,
          f"before: exit {before.returncode}; after: exit {after.returncode}: {after.stderr.strip()[-160:]}")
    ps.stop()
    pg.stop()


# ---------------------------------------------------------------- backups
def items_of(v):
    """A page's items, or the list itself."""
    return v["items"] if isinstance(v, dict) and "items" in v else v


def backups():
    print("== backups: checked format, encryption, restore that validates first, schedule (issue 18)")
    s = Server(lifted())
    data = os.path.join(s.dir, "data")
    # Everything a round trip must keep: a 2FA user, sessions, events, orders, imported prices.
    plain_tok = s.register("plain@example.com")["access_token"]
    s.req("POST", "/portfolio/buy", plain_tok, json={"symbol": "SPY", "quantity": "3", "price": "400"})
    s.req("POST", "/portfolio/sell", plain_tok, json={"symbol": "SPY", "quantity": "1", "price": "410"})
    tf_tok = s.register("twofa@example.com")["access_token"]
    sec = s.req("POST", "/auth/2fa/enable", tf_tok, json={"password": PASSWORD}).json()["secret"]
    totp = pyotp.TOTP(sec)
    s.req("POST", "/auth/2fa/verify", tf_tok, json={"code": totp.at(time.time() - 30)})
    s.req("POST", "/portfolio/buy", tf_tok, json={"symbol": "AAPL", "quantity": "5", "price": "150"})
    csv = os.path.join(s.dir, "acme.csv")
    open(csv, "w").write("Date,Open,High,Low,Close,Volume\n2024-01-02,1,2,0.5,1.5,10\n2024-01-03,1,2,0.5,2,10\n")
    s.cli("prices", "import", csv)
    s.login("plain@example.com", "wrong-password-1")
    before = {
        "plain": s.req("GET", "/portfolio", plain_tok).json(),
        "twofa": s.req("GET", "/portfolio", tf_tok).json(),
        "plain_tx": s.req("GET", "/portfolio/transactions", plain_tok).json()["items"],
        "sessions": sorted(x["id"] for x in items_of(s.req("GET", "/me/sessions", plain_tok).json())),
        "events": items_of(json.loads(s.cli("admin", "events", "--json").stdout)),
        "acme": s.req("GET", "/prices/ACME", plain_tok).json(),
    }
    plain = os.path.join(s.dir, "plain.backup")
    out = s.cli("admin", "backup", plain)
    ver = s.cli("admin", "backup", "verify", plain, "--json")
    manifest = json.loads(ver.stdout) if ver.returncode == 0 else {}
    check("backup then verify: exit 0, the manifest lists the tables, counts and key files",
          out.returncode == 0 and ver.returncode == 0 and manifest.get("tables", {}).get("users") == 2
          and manifest.get("files") == ["jwt.key", "totp.key"] and len(manifest.get("payload_sha256", "")) == 64,
          out.stdout.strip() + " | " + (ver.stderr.strip() or f"{manifest.get('records')} records"))
    passphrase = "tidal-copper-orchard-58"
    sealed = os.path.join(s.dir, "sealed.backup")
    out = s.cli("admin", "backup", sealed, "--passphrase-stdin", stdin=passphrase + "\n")
    s.stop()

    # 1. the round trip, from the encrypted file into a fresh data dir
    fresh = tempfile.mkdtemp(prefix="ff-acc-restore-")
    r = subprocess.run([BIN, "admin", "restore", sealed, "--passphrase-stdin", "--data-dir", os.path.join(fresh, "data")],
                       env=s.env, capture_output=True, text=True, input=passphrase + "\n", cwd=fresh)
    t = Server(lifted(), data=fresh)
    l1 = t.login("plain@example.com").json()
    ch = t.login("twofa@example.com").json()
    l2 = t.req("POST", "/auth/login/2fa", json={"challenge_token": ch.get("challenge_token"), "code": totp.now()}).json()
    after = {
        "plain": t.req("GET", "/portfolio", l1.get("access_token")).json(),
        "twofa": t.req("GET", "/portfolio", l2.get("access_token")).json(),
        "plain_tx": t.req("GET", "/portfolio/transactions", plain_tok).json()["items"],
        "sessions": sorted(x["id"] for x in items_of(t.req("GET", "/me/sessions", plain_tok).json())),
        "events": items_of(json.loads(t.cli("admin", "events", "--json").stdout)),
        "acme": t.req("GET", "/prices/ACME", plain_tok).json(),
    }
    # The restored server's own logins since are events and sessions of their own.
    after["events"] = [e for e in after["events"] if e["id"] in {x["id"] for x in before["events"]}]
    after["sessions"] = [x for x in after["sessions"] if x in before["sessions"]]
    for k in ("plain", "twofa"):
        for side in (before, after):
            side[k].pop("as_of", None)
    same = {k: before[k] == after[k] for k in before}
    chain = t.cli("admin", "events", "verify")
    check("encrypted backup → restore → a fresh server: logins (2FA too), portfolios, ledger, sessions, events, imported prices identical; the chain verifies",
          r.returncode == 0 and all(same.values()) and "access_token" in l1 and "access_token" in l2 and chain.returncode == 0
          and len(before["events"]) > 0, f"{r.stdout.strip()} | {same} | {len(before['events'])} events")
    t.stop()

    # 2. bad files: exit 1, one line, no panic, the data dir byte for byte as it was
    good = open(plain, "rb").read()
    bad = {
        "truncated": good[: len(good) // 2],
        "flipped": good[: len(good) // 2] + bytes([good[len(good) // 2] ^ 0x10]) + good[len(good) // 2 + 1:],
        "empty": b"",
        "random": os.urandom(len(good)),
        "newer": good[:16] + (2).to_bytes(4, "little") + good[20:],
    }
    def digest(root):
        out = {}
        for d, _, fs in os.walk(root):
            for f in fs:
                out[os.path.relpath(os.path.join(d, f), root)] = hashlib.sha256(open(os.path.join(d, f), "rb").read()).hexdigest()
        return out
    snapshot = digest(data)
    results = []
    for name, content in bad.items():
        path = os.path.join(s.dir, name)
        open(path, "wb").write(content)
        r = s.cli("admin", "restore", path)
        lines = r.stderr.strip().splitlines()
        results.append((name, r.returncode, len(lines), "panicked" in r.stderr, digest(data) == snapshot, lines[-1] if lines else ""))
    check("truncated, flipped byte, empty, random, newer format: each exit 1 with one line, no panic, data dir unchanged, nothing left behind",
          all(code == 1 and n == 1 and not p and unchanged for _, code, n, p, unchanged, _ in results),
          " | ".join(f"{name}: exit {code}, {line}" for name, code, _, _, _, line in results))

    # 3. encryption hides keys and emails; a wrong passphrase is a clear error
    blob = open(sealed, "rb").read()
    keys = [open(os.path.join(data, k), "rb").read() for k in ("jwt.key", "totp.key")]
    visible = [x for x in keys + [b"plain@example.com", b"twofa@example.com", b"FORTFOLIO-BACKUP"] if x in blob]
    wrong = s.cli("admin", "backup", "verify", sealed, "--passphrase-stdin", stdin="not-the-passphrase\n")
    check("an encrypted backup holds neither key nor email in plain text; a wrong passphrase is a clear error",
          out.returncode == 0 and not visible and wrong.returncode == 1 and "passphrase is wrong" in wrong.stderr,
          f"{len(blob)} bytes, visible {visible}; wrong: {wrong.stderr.strip()}")

    # 4. the schedule: interval 2s, keep 3
    ident = os.path.join(s.dir, "backup.id")
    kg = s.cli("admin", "backup", "keygen", ident)
    bdir = os.path.join(s.dir, "scheduled")
    s.env.update({"FORTFOLIO_BACKUP__DIR": bdir, "FORTFOLIO_BACKUP__INTERVAL": "2s", "FORTFOLIO_BACKUP__KEEP": "3",
                  "FORTFOLIO_BACKUP__RECIPIENT": kg.stdout.strip()})
    s.start()
    time.sleep(10)
    files = sorted(f for f in os.listdir(bdir))
    verified = [s.cli("admin", "backup", "verify", os.path.join(bdir, f), "--identity", ident).returncode for f in files]
    metrics = requests.get(s.base.replace("/api/v1", "/metrics"), verify=False).text
    stamp = next((int(l.split()[1]) for l in metrics.splitlines() if l.startswith("fortfolio_last_backup_timestamp_seconds ")), 0)
    written = items_of(json.loads(s.cli("admin", "events", "--event", "backup_written", "--json").stdout))
    check("[backup] interval 2s, keep 3: after 10 s exactly 3 verified snapshots; /metrics shows the last backup time; backup_written events",
          len(files) == 3 and verified == [0, 0, 0] and 0 < time.time() - stamp < 5 and len(written) >= 4,
          f"{files}; verify {verified}; last backup {time.time() - stamp:.1f} s ago; {len(written)} backup_written events")
    s.stop()


SECTIONS = {"hardening": hardening, "foundation": foundation, "defenses": defenses, "twofactor": twofactor, "events": events, "portfolio": portfolio, "predictions": predictions, "scaled": scaled, "openapi": openapi, "packaging": packaging, "admin": admin, "lifecycle": lifecycle, "backups": backups}

if __name__ == "__main__":
    for name in sys.argv[1:] or list(SECTIONS):
        try:
            SECTIONS[name]()
        except Exception as e:  # a crash in a section is a failure, not a stop
            check(f"{name}: section ran to the end", False, repr(e))
    print(f"\n{len(FAILURES)} failed" + (": " + "; ".join(FAILURES) if FAILURES else ""))
    sys.exit(len(FAILURES))
