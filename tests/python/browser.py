"""Drives the local stack's web page in headless Chromium, as a planner would: waits for the
forecast table and the chart, types a value and a note into a day's cell and presses Enter,
checks the table and the history show it, saves a screenshot, then switches "Show manual
edits" off and on. Talks to Debian's chromedriver
over the WebDriver protocol (the standard library only).

    browser.py PAGE_URL SCREENSHOT DATE VALUE NOTE

Prints a JSON summary; exits non-zero naming the step that failed.
"""

import base64
import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

W3C_ELEMENT = "element-6066-11e4-a52e-4f735466cecf"


class Driver:
    def __init__(self):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        binary = shutil.which("chromedriver") or "/usr/bin/chromedriver"
        self.process = subprocess.Popen([binary, f"--port={port}"], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        self.base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                self.call("GET", "/status")
                break
            except OSError:
                time.sleep(0.1)
        options = {"args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                            "--disable-gpu", "--window-size=1280,1000"]}
        chromium = shutil.which("chromium")
        if chromium:
            options["binary"] = chromium
        session = self.call("POST", "/session", {"capabilities": {"alwaysMatch": {
            "browserName": "chrome", "goog:chromeOptions": options}}})
        self.session = f"/session/{session['sessionId']}"

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers={"content-type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.load(response)["value"]
        except urllib.error.HTTPError as error:
            raise RuntimeError(f"{method} {path}: {error.read().decode()[:500]}") from None

    def do(self, method, path, body=None):
        return self.call(method, self.session + path, body)

    def find(self, css):
        found = self.do("POST", "/elements", {"using": "css selector", "value": css})
        return [element[W3C_ELEMENT] for element in found]

    def text(self, css):
        return "\n".join(self.do("GET", f"/element/{e}/text") for e in self.find(css))

    def html(self, css):
        return self.do("POST", "/execute/sync", {
            "script": "const e = document.querySelector(arguments[0]); return e ? e.outerHTML : null;",
            "args": [css]})

    def wait(self, what, check, seconds=30):
        deadline = time.time() + seconds
        while time.time() < deadline:
            value = check()
            if value:
                return value
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}; status: {self.text('#status')!r}")

    def type(self, element, text):
        self.do("POST", f"/element/{element}/clear", {})
        self.do("POST", f"/element/{element}/value", {"text": text})

    def quit(self):
        try:
            self.do("DELETE", "")
        finally:
            self.process.kill()


def main() -> None:
    url, screenshot, date, value, note = sys.argv[1:]
    driver = Driver()
    try:
        driver.do("POST", "/url", {"url": url})
        day = f'input[data-date="{date}"]'
        cell = f"#cells {day}"
        driver.wait("the forecast table", lambda: driver.find(cell))
        driver.wait("the chart", lambda: driver.find("#chart canvas"))
        row = f"#cells tr:has({day})"
        draft = driver.text(f"{row} td:nth-child(2)")

        quantity = driver.find(cell)[0]
        found = driver.find(f'{row} input[type="text"]')
        assert found, f"no note input in the row: {driver.html(row)}"
        note_input = found[0]
        driver.type(note_input, note)
        driver.type(quantity, value + "\ue007")  # Enter saves
        driver.wait("the save", lambda: "Saved" in driver.text("#status"))
        driver.wait("the edited row", lambda: driver.find(f"{row}.edited"))
        shown = driver.text(f"{row} td:nth-child(3)")
        assert shown == value, f"the forecast column shows {shown!r}, not {value!r}"
        history = driver.wait("the history entry", lambda: note in driver.text("#history") and driver.text("#history"))
        png = base64.b64decode(driver.do("GET", "/screenshot"))
        with open(screenshot, "wb") as out:
            out.write(png)

        toggle = driver.find("#show-manual")[0]
        driver.do("POST", f"/element/{toggle}/click", {})
        driver.wait("the draft view", lambda: driver.text(f"{row} td:nth-child(3)") == draft)
        driver.do("POST", f"/element/{toggle}/click", {})
        driver.wait("the manual view", lambda: driver.text(f"{row} td:nth-child(3)") == value)

        print(json.dumps({"draft": draft, "shown": shown, "history": history.splitlines()[0],
                          "screenshot_bytes": len(png)}))
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
