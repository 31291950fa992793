#!/usr/bin/env python3
"""Screenshots of the web console for the README, at 1280 and 375 px.

Starts the given server binary on a fresh data dir (TLS self-signed), makes
an admin with 2FA off, buys three symbols, and photographs each page with
headless Chromium over WebDriver. Needs chromium, chromium-driver and the
Python package requests.

    scripts/console-screenshots.py target/release/fortfolio docs/console
"""
import base64, json, os, socket, subprocess, sys, tempfile, time
import requests, urllib3

urllib3.disable_warnings()
PASSWORD = "violet-anchor-tundra-41"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(binary, out):
    tmp = tempfile.mkdtemp()
    port = free_port()
    data = os.path.join(tmp, "data")
    cfg = os.path.join(tmp, "config.toml")
    open(cfg, "w").write(
        f'[server]\nbind = "127.0.0.1:{port}"\ntls = "self-signed"\n[storage]\ndata_dir = "{data}"\n'
        f'[logging]\ndir = "{tmp}/logs"\n')
    server = subprocess.Popen([binary, "serve", "--config", cfg], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    root = f"https://127.0.0.1:{port}"
    for _ in range(100):
        try:
            requests.get(root + "/api/v1/ready", verify=False, timeout=1)
            break
        except requests.RequestException:
            time.sleep(0.2)
    subprocess.run([binary, "admin", "user", "create", "--email", "ann@example.com", "--role", "admin",
                    "--password-stdin", "--data-dir", data], input=PASSWORD + "\n", text=True, check=True,
                   stdout=subprocess.DEVNULL)
    api = requests.Session()
    api.trust_env = False  # a CA bundle from the environment would override verify=False
    api.verify = False
    tok = api.post(root + "/api/v1/auth/login", json={"email": "ann@example.com", "password": PASSWORD}).json()["access_token"]
    for sym, qty in [("SPY", "12"), ("AAPL", "20"), ("MSFT", "8"), ("GLD", "15")]:
        api.post(root + "/api/v1/portfolio/buy", json={"symbol": sym, "quantity": qty}, headers={"Authorization": "Bearer " + tok})
    api.post(root + "/api/v1/portfolio/sell", json={"symbol": "SPY", "quantity": "2", "price": "270"}, headers={"Authorization": "Bearer " + tok})

    dport = free_port()
    driver = subprocess.Popen(["/usr/bin/chromedriver", f"--port={dport}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{dport}"
    for _ in range(100):
        try:
            requests.get(base + "/status", timeout=1)
            break
        except requests.RequestException:
            time.sleep(0.1)
    caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "acceptInsecureCerts": True,
            "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,1000"]}}}}
    sid = requests.post(base + "/session", json=caps).json()["value"]["sessionId"]
    s = f"{base}/session/{sid}"
    js = lambda script: requests.post(s + "/execute/sync", json={"script": script, "args": []}).json()["value"]
    cdp = lambda cmd, params: requests.post(s + "/goog/cdp/execute", json={"cmd": cmd, "params": params})
    def wait(script):
        for _ in range(300):
            if js(script) is True:
                return
            time.sleep(0.1)
        raise SystemExit(f"timed out: {script}")
    requests.post(s + "/url", json={"url": root + "/"})
    wait("return !!document.querySelector('input[name=email]')")
    js(f"""document.querySelector('input[name=email]').value = 'ann@example.com';
           document.querySelector('input[name=password]').value = '{PASSWORD}';
           document.querySelector('form button[type=submit]').click();""")
    wait("return document.getElementById('page-title')?.textContent === 'Portfolio'")
    pages = [("signin", None), ("portfolio", "#/portfolio"), ("asset", "#/asset/SPY"), ("news", "#/news"),
             ("security", "#/security"), ("admin", "#/admin")]
    for width, height in [(1280, 1000), (375, 812)]:
        cdp("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 500})
        for name, hash_ in pages:
            if name == "signin":
                continue
            js(f"location.hash = '{hash_}'")
            wait("return !!document.getElementById('page-title') && !document.querySelector('main[aria-busy]')")
            time.sleep(0.6)
            js("window.scrollTo(0, 0); document.activeElement.blur();")
            png = requests.get(s + "/screenshot").json()["value"]
            path = os.path.join(out, f"{name}-{width}.png")
            open(path, "wb").write(base64.b64decode(png))
            print(path)
    requests.delete(s)
    driver.kill()
    server.kill()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
