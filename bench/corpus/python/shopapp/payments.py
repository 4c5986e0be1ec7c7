import json
import urllib.request


def charge(port, amount):
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/charges",
        data=json.dumps({"amount": amount}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=2) as resp:
        return json.load(resp)
