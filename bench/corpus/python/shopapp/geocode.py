import json
import urllib.request


def locate(port, address):
    url = f"http://127.0.0.1:{port}/v1/geocode?q={address}"
    with urllib.request.urlopen(url, timeout=2) as resp:
        return json.load(resp)["results"][0]
