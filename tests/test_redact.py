"""Redaction: every corpus secret goes, ordinary lines stay, placeholders are stable."""

from __future__ import annotations

import random
import re
import string
import tomllib
import uuid
import warnings
from collections import defaultdict
from importlib import resources
from pathlib import Path

import pytest
import structlog
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from watcher.fix import secret_rules
from watcher.fix.redact import (
    PLACEHOLDER,
    Finding,
    Redactor,
    default_redactor,
    structlog_processor,
)

DATA = Path(__file__).parent / "data"
KEY = b"test-key"


def _secrets() -> list[tuple[str, str, str]]:
    rows = []
    for line in (DATA / "secrets_corpus.txt").read_text("utf-8").splitlines():
        if line and not line.startswith("#"):
            kind, value, text = line.split("\t")
            rows.append((kind, value, text))
    return rows


def _ordinary() -> list[str]:
    text = (DATA / "ordinary_lines.txt").read_text("utf-8")
    return [line for line in text.splitlines() if line and not line.startswith("#")]


SECRETS = _secrets()
ORDINARY = _ordinary()


@pytest.fixture(scope="module")
def redactor() -> Redactor:
    """One redactor with a fixed key, so placeholders are reproducible."""
    return Redactor(key=KEY)


def test_corpora_are_big_enough() -> None:
    """The measurement rests on ≥ 80 secrets of ≥ 40 kinds and ≥ 200 ordinary lines."""
    assert len(SECRETS) >= 80
    assert len({kind for kind, _, _ in SECRETS}) >= 40
    assert len(ORDINARY) >= 200
    assert all(value in text for _, value, text in SECRETS)


@pytest.mark.parametrize(("kind", "value", "text"), SECRETS, ids=[r[0] for r in SECRETS])
def test_every_corpus_secret_is_redacted(
    redactor: Redactor, kind: str, value: str, text: str
) -> None:
    """The raw secret is gone from the output and a placeholder of the expected kind is there."""
    out = redactor.redact(text)
    assert value not in out
    assert f"<secret:{kind}:" in out


def test_ordinary_lines_false_positives_are_rare(redactor: Redactor) -> None:
    """At most 1 % of ordinary production lines lose anything to redaction."""
    flagged = [line for line in ORDINARY if redactor.findings(line)]
    rate = len(flagged) / len(ORDINARY)
    assert rate <= 0.01, f"{len(flagged)}/{len(ORDINARY)} flagged: {flagged[:5]}"
    assert all(redactor.redact(line) == line for line in ORDINARY if line not in flagged)


def test_same_value_gets_same_placeholder(redactor: Redactor) -> None:
    """A secret maps to one placeholder within a text, across calls and across redactors."""
    token = "ghp_" + "a1B2c3D4e5" * 3 + "f6G7h8"
    out = redactor.redact(f"first {token} then {token}")
    first, second = PLACEHOLDER.findall(out)
    assert first == second
    assert redactor.redact(token) == first
    assert Redactor(key=KEY).redact(token) == first


def test_distinct_values_get_distinct_placeholders(redactor: Redactor) -> None:
    """Different secrets of the corpus never share a placeholder (fixed key)."""
    by_placeholder: dict[str, set[str]] = defaultdict(set)
    for kind, value, _ in SECRETS:
        by_placeholder[redactor.placeholder(kind, value)].add(value)
    assert all(len(values) == 1 for values in by_placeholder.values())


def test_key_decides_placeholders() -> None:
    """A configured key makes placeholders reproducible; the default key is per instance."""
    values = [f"password=Secret{i:04d}x" for i in range(8)]
    assert [Redactor(key=b"k").redact(v) for v in values] == [
        Redactor(key=b"k").redact(v) for v in values
    ]
    first, second = Redactor(), Redactor()
    assert [first.redact(v) for v in values] != [second.redact(v) for v in values]


def test_placeholder_shape(redactor: Redactor) -> None:
    """Placeholders read <secret:KIND:xxxx> with 4 hex digits of the keyed hash."""
    out = redactor.redact("aws_access_key_id=AKIAZ7QPL4VX2MNB6HRT")
    assert re.fullmatch(r"aws_access_key_id=<secret:aws-access-token:[0-9a-f]{4}>", out)


@pytest.mark.parametrize("text", [row[2] for row in SECRETS] + ORDINARY[:60])
def test_redaction_is_idempotent(redactor: Redactor, text: str) -> None:
    """Redacting twice gives the text of redacting once."""
    once = redactor.redact(text)
    assert redactor.redact(once) == once


@pytest.mark.parametrize(
    "text",
    [
        'password="<secret:password:1a2b>"',
        "token=<secret:jwt:0f0f> user=bob",
        "Authorization: Bearer <secret:jwt:abcd>",
        "redis://app:<secret:url-password:9e9e>@cache:6379",
        "{'api_key': '<secret:secret-value:ffff>'}",
    ],
)
def test_placeholders_are_not_redacted_again(redactor: Redactor, text: str) -> None:
    """A placeholder in a secret's position stays as it is."""
    assert redactor.redact(text) == text


@pytest.mark.parametrize(
    "text",
    [
        "usage token_count=5 max_tokens=100 tokens_total=123456 input_tokens=42",
        "token_type=bearer expires_in=3600 session_count=3 auth_method=oauth2",
        "password=true password=null api_key=${API_KEY} secret=<hidden> password=********",
        "login failed: password: incorrect",
        "PASS: test_checkout_flow_with_discount (3.2s)",
        "Basic authentication failed for user 42",
        "missing Bearer token in request",
        "commit 9fceb02d0ae598e95dc970b74767f19372d61af8 sha256:" + "ab" * 32,
        "Started getty@tty1.service; remote git@github.com:acme/api.git",
    ],
)
def test_non_secrets_in_secret_words_stay(redactor: Redactor, text: str) -> None:
    """Counters, types, templates, masks and prose around key words are not secrets."""
    assert redactor.redact(text) == text


@pytest.mark.parametrize(
    "code",
    [
        'password = os.environ["DB_PASSWORD"]',
        "token = os.getenv('GITHUB_TOKEN', '')",
        "api_key: SecretStr = Field(default=None)",
        "password: Optional[str] = None",
        "self.secret_key = settings.SECRET_KEY",
        'headers = {"Authorization": f"Bearer {self.token}"}',
        "client = Client(api_key=api_key, session=session)",
        "url = f'postgres://{user}:{password}@{host}/db'",
    ],
)
def test_source_code_is_not_a_secret(redactor: Redactor, code: str) -> None:
    """Names, calls, annotations and templates in a patch are not secrets (patch guard)."""
    assert redactor.findings(code) == []


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ('DB_PASSWORD = "Tr0ub4dor-and-3"', "password"),
        ("api_key = 'a8f5f167f44f4964e6c998dee827110c'", "secret-value"),
        ('GITHUB_TOKEN = "ghp_' + "a1B2c3D4e5" * 3 + 'f6G7h8"', "github-pat"),
    ],
)
def test_secrets_in_source_code_are_found(redactor: Redactor, code: str, kind: str) -> None:
    """A literal secret added by a patch is found, so the guard can refuse it."""
    assert [f.kind for f in redactor.findings(code)] == [kind]


def test_findings_give_kind_and_span(redactor: Redactor) -> None:
    """findings() names each secret's kind and exact span, and finds nothing in prose."""
    token = "glpat-" + "Ab3dE6gH9jK2mN5pQ8sT"
    text = f"clone with {token} then password=hunter2024"
    found = redactor.findings(text)
    assert [f.kind for f in found] == ["gitlab-pat", "password"]
    assert text[slice(*found[0].span)] == token
    assert text[slice(*found[1].span)] == "hunter2024"
    assert redactor.findings("GET /health 200 2ms") == []
    assert isinstance(found[0], Finding)


def test_multiline_private_key_block(redactor: Redactor) -> None:
    """A PEM private key spanning lines is replaced whole, BEGIN to END."""
    body = "\n".join(["MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7" + "x" * 12] * 4)
    pem = f"-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----"
    out = redactor.redact(f"key loaded:\n{pem}\nnext line")
    assert out.startswith("key loaded:\n<secret:private-key:")
    assert out.endswith(">\nnext line")
    assert "MIIEvQ" not in out


def test_long_text_is_redacted_like_its_lines(redactor: Redactor) -> None:
    """A long text (scanned line by line) comes out as its lines redacted one by one."""
    lines = [text for _, _, text in SECRETS] + ORDINARY
    text = "\n".join(lines)
    assert len(text) > 10_000
    assert redactor.redact(text) == "\n".join(redactor.redact(line) for line in lines)


def test_private_key_spanning_lines_of_a_long_text(redactor: Redactor) -> None:
    """Rules that span lines still see the whole of a long text."""
    body = "\n".join(["MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7" + "y" * 12] * 4)
    pem = f"-----BEGIN EC PRIVATE KEY-----\n{body}\n-----END EC PRIVATE KEY-----"
    text = "\n".join([*ORDINARY[:40], pem, *ORDINARY[40:80]])
    out = redactor.redact(text)
    assert "MIIEvQ" not in out and "<secret:private-key:" in out
    assert out.startswith(ORDINARY[0]) and out.endswith(ORDINARY[79])


def test_user_patterns_are_redacted() -> None:
    """Config regexes redact their first group, or the whole match without one."""
    redactor = Redactor(key=KEY, extra_patterns=[r"ACME-\d{6}", r"customer=(\w+)"])
    out = redactor.redact("order ACME-123456 for customer=globex ok")
    assert "ACME-123456" not in out and "globex" not in out
    assert out.startswith("order <secret:custom:") and "customer=<secret:custom:" in out


def test_emails_can_be_kept() -> None:
    """redact_emails=False leaves addresses and still redacts secrets."""
    redactor = Redactor(key=KEY, redact_emails=False)
    out = redactor.redact("mail alice@example.org password=hunter2024")
    assert "alice@example.org" in out and "hunter2024" not in out
    assert "alice@example.org" not in Redactor(key=KEY).redact("mail alice@example.org")


def test_redact_obj_walks_json(redactor: Redactor) -> None:
    """Nested dicts, lists and tuples are redacted; other values and the input are untouched."""
    token = "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"
    payload = {
        "event": f"posting with {token}",
        "password": "hunter2024",
        "db": {"dbPassword": "S3cr3t!pw", "host": "db-1", "port": 5432},
        "headers": [{"Authorization": "Bearer abcdef0123456789abcdef"}, ("X-Api-Key", "k")],
        "max_tokens": 100,
        "token_type": "bearer",
        "session": "anonymous",
        "ok": True,
        "none": None,
    }
    out = redactor.redact_obj(payload)
    assert token not in str(out) and "hunter2024" not in str(out) and "S3cr3t!pw" not in str(out)
    assert "abcdef0123456789abcdef" not in str(out)
    assert out["password"].startswith("<secret:password:")
    assert out["db"]["host"] == "db-1" and out["db"]["port"] == 5432
    assert out["headers"][1] == ("X-Api-Key", "k")
    assert (out["max_tokens"], out["token_type"], out["session"]) == (100, "bearer", "anonymous")
    assert out["ok"] is True and out["none"] is None
    assert payload["password"] == "hunter2024"


def test_structlog_processor_redacts_every_string() -> None:
    """The processor redacts the event, keyword values and nested values of a log record."""
    capture = structlog.testing.LogCapture()
    log = structlog.wrap_logger(None, processors=[structlog_processor(Redactor(key=KEY)), capture])
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dBjftJeZ4CVPmB92K27uhbUJU1p1r"
    log.info(f"auth with {jwt}", password="hunter2024", request={"headers": {"Cookie": "sid=a"}})
    (entry,) = capture.entries
    assert jwt not in entry["event"] and entry["event"].startswith("auth with <secret:jwt:")
    assert entry["password"].startswith("<secret:password:")
    assert entry["request"] == {"headers": {"Cookie": "sid=a"}}  # too short to be a secret


def test_default_redactor_is_shared() -> None:
    """default_redactor() builds the rules once per process."""
    assert default_redactor() is default_redactor()


def test_unicode_and_surrogates(redactor: Redactor) -> None:
    """Non-ASCII text keeps its characters; lone surrogates do not break redaction."""
    out = redactor.redact("contraseña ✓ password=Hünter2024 ünd café")
    assert out.startswith("contraseña ✓ password=<secret:password:") and out.endswith(" ünd café")
    assert redactor.redact("bad \ud800 text") == "bad \ud800 text"


# ---- rules as data ------------------------------------------------------------------------

_RNG = random.Random(4)


def _r(n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(_RNG.choice(alphabet) for _ in range(n))


_HEX, _UP = "0123456789abcdef", string.ascii_uppercase + string.digits
# One sample per gitleaks format the corpus does not show, built from the format's description,
# to catch a rule transcribed wrong.
_FORMATS = [
    (
        "1password-secret-key",
        f"A3-{_r(6, _UP)}-{_r(11, _UP)}-{_r(5, _UP)}-{_r(5, _UP)}-{_r(5, _UP)}",
    ),
    ("age-secret-key", "AGE-SECRET-KEY-1" + _r(58, "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L")),
    ("alibaba-access-key-id", "LTAI" + _r(20)),
    ("artifactory-api-key", "AKCp" + _r(69)),
    ("azure-ad-client-secret", f"{_r(3)}8Q~{_r(34)}"),
    ("clojars-api-token", "CLOJARS_" + _r(60, string.ascii_lowercase + string.digits)),
    ("databricks-api-token", "dapi" + _r(32, _HEX)),
    ("doppler-api-token", "dp.pt." + _r(43)),
    ("duffel-api-token", "duffel_live_" + _r(43)),
    ("dynatrace-api-token", f"dt0c01.{_r(24, _UP)}.{_r(64, _UP)}"),
    ("easypost-api-token", "EZAK" + _r(54)),
    ("flyio-access-token", "fo1_" + _r(43)),
    ("frameio-api-token", "fio-u-" + _r(64)),
    ("gitlab-deploy-token", "gldt-" + _r(20)),
    ("gitlab-runner-authentication-token", "glrt-" + _r(20)),
    ("gitlab-ptt", "glptt-" + _r(40, _HEX)),
    ("grafana-cloud-api-token", "glc_" + _r(40)),
    ("harness-api-key", f"pat.{_r(22)}.{_r(24)}.{_r(20)}"),
    ("hashicorp-tf-api-token", f"{_r(14, 'abcdefghijklmnop0123456789')}.atlasv1.{_r(64)}"),
    ("infracost-api-token", "ico-" + _r(32)),
    ("linear-api-key", "lin_api_" + _r(40)),
    ("maxmind-license-key", f"{_r(6)}_{_r(29)}_mmk"),
    ("notion-api-token", "ntn_" + _r(11, string.digits) + _r(35)),
    ("octopus-deploy-api-key", "API-" + _r(26, _UP)),
    ("openshift-user-token", "sha256~" + _r(43)),
    ("perplexity-api-key", "pplx-" + _r(48)),
    ("planetscale-api-token", "pscale_tkn_" + _r(43)),
    ("postman-api-token", f"PMAK-{_r(24, _HEX)}-{_r(34, _HEX)}"),
    ("prefect-api-token", "pnu_" + _r(36)),
    ("pulumi-api-token", "pul-" + _r(40, _HEX)),
    ("readme-api-token", "rdme_" + _r(70, string.ascii_lowercase + string.digits)),
    ("rubygems-api-token", "rubygems_" + _r(48, _HEX)),
    ("scalingo-api-token", "tk-us-" + _r(48)),
    ("sendinblue-api-token", f"xkeysib-{_r(64, _HEX)}-{_r(16)}"),
    ("sentry-user-token", "sntryu_" + _r(64, _HEX)),
    ("settlemint-personal-access-token", "sm_pat_" + _r(16)),
    ("shippo-api-token", "shippo_live_" + _r(40, _HEX)),
    ("shopify-shared-secret", "shpss_" + _r(32, _HEX)),
    ("slack-legacy-workspace-token", "xoxa-2-" + _r(30)),
    ("square-access-token", "sq0atp-" + _r(22)),
    ("vault-batch-token", "hvb." + _r(150)),
    ("github-refresh-token", "ghr_" + _r(36)),
    (
        "microsoft-teams-webhook",
        f"https://acme.webhook.office.com/webhookb2/{uuid.UUID(int=1)}@{uuid.UUID(int=2)}"
        f"/IncomingWebhook/{_r(32, _HEX)}/{uuid.UUID(int=3)}",
    ),
]


@pytest.mark.parametrize(("kind", "token"), _FORMATS, ids=[k for k, _ in _FORMATS])
def test_gitleaks_formats_are_found(redactor: Redactor, kind: str, token: str) -> None:
    """A token of each imported format, quoted in a log line, is found as its kind."""
    text = f'level=error msg="upstream rejected credential" value="{token}" attempt=2'
    found = redactor.findings(text)
    assert [(f.kind, text[slice(*f.span)]) for f in found] == [(kind, token)]


def _rule_tables() -> dict[str, list[dict[str, object]]]:
    text = resources.files("watcher.fix").joinpath("secret_rules.toml").read_text("utf-8")
    return tomllib.loads(text)


def test_every_rule_compiles_without_warnings() -> None:
    """Each gitleaks and watcher rule compiles in Python's re, with keywords, no warnings."""
    tables = _rule_tables()
    re.purge()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rules, allow = secret_rules.load(tables)
    assert len(rules) == len(tables["gitleaks"]) + len(tables["watcher"])
    assert sum(rule.source == "gitleaks" for rule in rules) >= 90
    assert all(rule.keywords == tuple(k.lower() for k in rule.keywords) for rule in rules)
    assert all(rule.keywords for rule in rules) and allow
    assert all(re.fullmatch(r"[a-z0-9-]+", rule.id) for rule in rules)  # placeholder-safe


def test_required_kinds_have_rules() -> None:
    """The issue's list is covered: AWS, GitHub, Anthropic, OpenAI, Stripe, Slack, Google…"""
    ids = {rule.id for rule in Redactor(key=KEY).rules}
    required = {
        "aws-access-token", "aws-secret-key", "github-pat", "github-oauth", "github-app-token",
        "github-refresh-token", "github-fine-grained-pat", "anthropic-api-key", "openai-api-key",
        "stripe-access-token", "stripe-webhook-secret", "slack-bot-token", "slack-user-token",
        "slack-app-token", "slack-webhook-url", "gcp-api-key", "jwt", "auth-header", "basic-auth",
        "bearer-token", "url-password", "password", "secret-value", "private-key", "email",
    }  # fmt: skip
    assert required <= ids


@pytest.mark.parametrize(
    ("go", "python"),
    [
        (r"\b(p8e-(?i)[a-z0-9]{32})\b", r"\b(p8e-(?i:[a-z0-9]{32}))\b"),
        (r"dp\.pt\.(?i)[a-z0-9]{43}", r"dp\.pt\.(?i:[a-z0-9]{43})"),
        (r"(?i)^true|false$", r"(?i)^true|false$"),
        (r"(?:[^\w-]|\z)", r"(?:[^\w-]|\Z)"),
        (r"[\z(](?i)x", r"[\z(](?i:x)"),
    ],
)
def test_go_regex_conversion(go: str, python: str) -> None:
    """Mid-pattern flags become scoped groups and \\z becomes \\Z, classes left alone."""
    assert secret_rules.go_to_python(go) == python


def test_go_flag_across_alternation_is_refused() -> None:
    """A mid-pattern flag followed by | at its level cannot be scoped and is an error."""
    with pytest.raises(ValueError, match="across"):
        secret_rules.go_to_python(r"a(?i)b|c")


# ---- properties ---------------------------------------------------------------------------

_FRAGMENTS = st.sampled_from(
    [value for _, value, _ in SECRETS[::3]]
    + [" ", "=", ":", '"', "'", "\\n", "@", "://", "password", "token", "Bearer ", "eyJ", "_"]
    + ["<secret:jwt:abcd>", "ghp_", "AKIA", "sk-", "-----BEGIN RSA PRIVATE KEY-----", "é", "\x00"]
)
_TEXTS = st.one_of(st.text(max_size=300), st.lists(_FRAGMENTS | st.text(max_size=8)).map("".join))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_TEXTS)
def test_redact_never_raises_and_leaves_nothing(text: str) -> None:
    """On any text redaction succeeds, is idempotent and leaves nothing a rule would find."""
    redactor = Redactor(key=KEY)
    out = redactor.redact(text)
    assert redactor.redact(out) == out
    assert redactor.findings(out) == []


@settings(max_examples=300, deadline=None)
@given(_TEXTS)
def test_redaction_never_adds_a_secret(text: str) -> None:
    """Redaction only cuts: between placeholders the output is pieces of the input."""
    out = Redactor(key=KEY).redact(text)
    assert all(value in text for _, value, _ in SECRETS if value in out)
    assert all(piece in text for piece in PLACEHOLDER.split(out))
