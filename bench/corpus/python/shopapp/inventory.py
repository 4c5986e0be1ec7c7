import urllib.request


def fetch_stock(port, sku):
    url = f"http://127.0.0.1:{port}/stock/{sku}"
    with urllib.request.urlopen(url, timeout=0.3) as resp:
        return resp.read()
