"""The keyword prefilter of redaction (issue 15): one RE2 pass over the text answers "no keyword
anywhere" before the words are cut. It may only skip work: the candidates and the redacted text
are the same as without it, on every text."""

from __future__ import annotations

import copy
import pickle
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from watcher.fix.redact import Redactor, _any_of, _KeywordIndex

DATA = Path(__file__).parent / "data"
KEY = b"test-key"


# a user's pattern: a rule without keywords, run on every text (_KeywordIndex._always)
USER_PATTERNS = (r"\bcust-[0-9]{6}\b",)


@pytest.fixture(scope="module", params=[(), USER_PATTERNS], ids=["default", "user-pattern"])
def redactor(request: pytest.FixtureRequest) -> Redactor:
    return Redactor(key=KEY, extra_patterns=request.param)


@pytest.fixture(scope="module")
def plain(redactor: Redactor) -> Redactor:
    """The same rules and key, the words cut for every text (the reference)."""
    reference = Redactor(key=KEY, extra_patterns=USER_PATTERNS if redactor._index._always else ())
    reference._index._anywhere = None
    return reference


def _keywords(redactor: Redactor) -> list[str]:
    return sorted({k for rule in redactor.rules for k in rule.keywords})


def _corpus() -> list[str]:
    lines = []
    for name in ("secrets_corpus.txt", "ordinary_lines.txt", "mixed.log", "clean.log"):
        lines += (DATA / name).read_text("utf-8").splitlines()
    return lines


def test_the_prefilter_is_built_for_the_default_rules(redactor: Redactor) -> None:
    assert redactor._index._anywhere is not None


def test_same_candidates_and_text_on_the_corpora(redactor: Redactor, plain: Redactor) -> None:
    lines = [*_corpus(), "order cust-123456 refused", "ERROR cust-654321 at /api"]
    assert len(lines) > 300
    skipped = 0
    for text in lines:
        lower = text.lower()
        want = plain._index.candidates(text, lower)
        assert redactor._index.candidates(text, lower) == want, text
        assert redactor.redact(text) == plain.redact(text), text
        skipped += redactor._index._anywhere.Match(lower.encode("utf-8", "surrogatepass")) is None
    assert skipped > 0  # the corpora hold lines the prefilter answers alone


def _texts(keywords: list[str]) -> st.SearchStrategy[str]:
    """Texts of keywords (alone, as words, glued to letters, in upper case), log-ish words,
    punctuation, non-ASCII and lone surrogates."""
    keyword = st.sampled_from(keywords)
    piece = st.one_of(
        keyword,
        keyword.map(lambda k: f" {k}"),
        keyword.map(lambda k: f"x{k}"),
        keyword.map(str.upper),
        keyword.map(lambda k: f"{k}=AbC123dEf456GhI789jKl0"),
        st.sampled_from(["ERROR ", " key=", "@", ":", "-", "é", "\u0130", "\ud800", "\n"]),
        st.sampled_from([" cust-123456 ", "cust-1234567"]),
        st.text(max_size=12),
    )
    return st.lists(piece, max_size=10).map("".join)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_same_candidates_and_text_on_any_text(
    redactor: Redactor, plain: Redactor, data: st.DataObject
) -> None:
    text = data.draw(_texts(_keywords(redactor)))
    lower = text.lower()
    assert redactor._index.candidates(text, lower) == plain._index.candidates(text, lower)
    assert redactor.redact(text) == plain.redact(text)


def test_every_keyword_is_found_wherever_it_is(redactor: Redactor) -> None:
    """Each keyword alone, and inside other text, passes the prefilter."""
    anywhere = redactor._index._anywhere
    for keyword in _keywords(redactor):
        for text in (keyword, f"a{keyword}b", f"é\ud800{keyword}\n"):
            assert anywhere.Match(text.lower().encode("utf-8", "surrogatepass")), keyword


def test_a_redactor_still_pickles_and_copies(redactor: Redactor) -> None:
    """As before the prefilter (an RE2 set does not pickle): the copy has its own prefilter."""
    text = "login failed password=Tr0ub4dor&3xyz for bob@example.com"
    for copied in (pickle.loads(pickle.dumps(redactor)), copy.deepcopy(redactor)):
        assert copied._index._anywhere is not None
        assert copied.redact(text) == redactor.redact(text) != text


def test_no_keywords_no_prefilter() -> None:
    assert _any_of([]) is None
    index = _KeywordIndex([])
    assert index.candidates("anything at all", "anything at all") == []
