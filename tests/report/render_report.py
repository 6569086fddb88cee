#!/usr/bin/python3
"""The report rendered by headless Chromium: `headroom report` on the test fixtures (a real
calibration, a plan, a validation), then Chromium takes a screenshot with every connection it
could make sent to a local socket that this test holds and watches. Passes when the page names
nothing to fetch, has its four charts, Chromium asked for nothing over the network, and the PNG
is not blank. Exit 77 (CTest: skipped) when chromium is not installed."""
import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading


def fail(message):
    print("FAIL: " + message)
    sys.exit(1)


def request_host(first_bytes):
    """The host a proxy request names: "CONNECT host:443" or "GET http://host/...", else ''."""
    m = re.match(rb"(?:CONNECT ([^: ]+)|[A-Z]+ https?://([^/: ]+))", first_bytes)
    return (m.group(1) or m.group(2)).decode() if m else ""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--headroom", required=True)
    ap.add_argument("--fixtures", help="make the page from these fixtures (calibration, plan, validation)")
    ap.add_argument("--html", help="render this page instead (e.g. the demo's report)")
    ap.add_argument("--out-dir", required=True)
    a = ap.parse_args()
    os.makedirs(a.out_dir, exist_ok=True)
    html_path = a.html or os.path.join(a.out_dir, "report.html")
    png_path = os.path.join(a.out_dir, "report.png")

    if not a.html:
        subprocess.run([a.headroom, "report",
                        "--calibration", os.path.join(a.fixtures, "calibration.json"),
                        "--plan", os.path.join(a.fixtures, "plan.json"),
                        "--validation", os.path.join(a.fixtures, "validation.json"),
                        "--points", "6", "--precision", "0.1", "--out", html_path], check=True)
    html = open(html_path, encoding="utf-8").read()
    charts = html.count("<svg")
    if charts != 4:
        fail(f"{charts} charts in the page, expected 4 (latency, phases, pool, validation)")
    # Anything a browser would load: a src or href attribute, a CSS url() or @import.
    loads = re.findall(r"(?:src|href)\s*=|url\s*\(|@import", html, re.IGNORECASE)
    if loads:
        fail(f"the page names something to load: {loads[:3]}")

    chromium = shutil.which("chromium")
    if chromium is None:
        print("SKIP: chromium is not installed (scripts/setup installs Debian's chromium)")
        sys.exit(77)

    # Every request Chromium makes goes to this proxy, which this test holds: it records what
    # arrives and hangs up (so Chromium gives up at once instead of waiting). Names resolve to
    # nothing except the proxy's own address, so a request cannot leave by another way.
    proxy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    proxy.bind(("127.0.0.1", 0))
    proxy.listen(16)
    port = proxy.getsockname()[1]
    requests = []

    def watch():
        while True:
            try:
                conn, _ = proxy.accept()
            except OSError:
                return  # closed: rendering is over
            conn.settimeout(2)
            try:
                requests.append(conn.recv(200))
            except OSError:
                requests.append(b"(connected, sent nothing)")
            conn.close()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    with tempfile.TemporaryDirectory() as profile:
        cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               f"--user-data-dir={profile}",
               f"--proxy-server=127.0.0.1:{port}", "--proxy-bypass-list=<-loopback>",
               "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
               # Chromium's own traffic (updates, safe browsing) is not the page's: switched off
               # so that anything reaching the proxy came from the page.
               "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run", "--disable-default-apps", "--no-pings",
               "--disable-domain-reliability", "--disable-client-side-phishing-detection",
               "--disable-features=NetworkTimeServiceQuerying,OptimizationHints,MediaRouter",
               "--window-size=1100,3600", f"--screenshot={png_path}",
               "file://" + os.path.abspath(html_path)]
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=240)
        if r.returncode != 0 or not os.path.exists(png_path):
            fail("chromium did not write the screenshot:\n" + r.stdout.decode(errors="replace"))
    proxy.close()
    watcher.join(timeout=5)
    # Chromium itself still calls its updater and account service whatever the flags (seen with
    # Chromium 156): those two hosts exactly are the browser's, reported but not the page's.
    # Anything else (a font, a script, an image from anywhere) came from the page and fails.
    browser_own = {"update.googleapis.com", "accounts.google.com"}
    page = [q for q in requests if request_host(q) not in browser_own]
    if len(requests) > len(page):
        print(f"chromium's own requests (caught here, never left the machine): "
              f"{sorted({request_host(q) for q in requests} & browser_own)}")
    if page:
        fail(f"the page made {len(page)} request(s) while rendering: {page[0][:120]!r}")

    from PIL import Image  # Debian's python3-pil, which python3-matplotlib brings
    img = Image.open(png_path).convert("L")
    width, height = img.size
    pixels = list(img.getdata())
    n = len(pixels)
    mean = sum(pixels) / n
    variance = sum((p - mean) ** 2 for p in pixels) / n
    # A blank (white) page has variance 0 and no dark pixel; text, axes and lines in a page
    # this size give variance in the hundreds and several per cent of non-white pixels.
    inked = sum(1 for p in pixels if p < 200) / n
    print(f"{png_path}: {width}x{height}, pixel variance {variance:.0f}, non-white {inked:.1%}")
    if variance < 100:
        fail(f"the screenshot is nearly blank (pixel variance {variance:.0f} < 100)")
    if inked < 0.01:
        fail(f"the screenshot is nearly blank ({inked:.2%} of pixels are not white, < 1 %)")
    print("PASS: 4 charts, nothing fetched, the screenshot shows the page")


if __name__ == "__main__":
    main()
