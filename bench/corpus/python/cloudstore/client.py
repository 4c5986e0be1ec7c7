import re
import urllib.error
import urllib.request

from cloudstore.exceptions import ClientError


class Bucket:
    def __init__(self, endpoint, name):
        self.endpoint, self.name = endpoint, name

    def _call(self, operation, method, key, body):
        url = f"{self.endpoint}/{self.name}/{key}"
        req = urllib.request.Request(url, data=body, method=method)
        try:
            with urllib.request.urlopen(req, timeout=2) as resp:
                return resp.read()
        except urllib.error.HTTPError as e:
            text = e.read().decode()
            code = re.search(r"<Code>(\w+)</Code>", text).group(1)
            message = re.search(r"<Message>(.*)</Message>", text).group(1)
            raise ClientError(code, operation, message) from None

    def put_object(self, key, body):
        return self._call("PutObject", "PUT", key, body)
