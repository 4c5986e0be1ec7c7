"""Which environment variable names hold secrets: one rule for every child process watcher
starts (git, the verify sandbox) and for the config that names variables to pass on."""

from __future__ import annotations

import re

# The watcher's own variables and any cloud or CI credential. Matched case-insensitively
# anywhere in the name, so FOO_API_KEY goes too.
SECRET_ENV = re.compile(
    r"^(?:ANTHROPIC|OPENAI|AWS|WATCHER|GITHUB|GH|GITLAB|SLACK|STRIPE|AZURE|GOOGLE|GCP|GCLOUD|"
    r"CLOUDSDK|DOCKER|NPM|PYPI|TWINE|SENTRY|DATADOG|DD|HEROKU|VAULT|KUBE|GIT)_"
    r"|TOKEN|SECRET|PASSW|PASSPHRASE|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIAL|AUTH|COOKIE"
    r"|SESSION|DSN|DATABASE_URL|KUBECONFIG",
    re.IGNORECASE,
)


def secret_name(name: str) -> bool:
    """Whether an environment variable's name says it holds a secret (or a credential)."""
    return SECRET_ENV.search(name) is not None
