import json


def parse_body(raw):
    return json.loads(raw)


def create_order(raw):
    body = parse_body(raw)
    return body["items"]
