"""The C tokenizer gives the Rust tokenizer's ids: on every MMLU prompt, on generated text, after its cache is full."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from tests._prompt_routers import mmlu
from tests._requires import missing
from tinydancer.errors import InvalidInputError
from tinydancer.model.fast_tokenizer import COMPILED, PrefixTokenizer, bpe_tables
from tinydancer.model.text_features import first_token_ids, load_wordllama, plain_tokenizer


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    return plain_tokenizer(load_wordllama(64))


@pytest.fixture(scope="module")
def prefix(tokenizer: Any) -> PrefixTokenizer:
    if not COMPILED:
        missing("the C tokenizer (tinydancer.model._bpe)", "make c-extension")
    tokenize = PrefixTokenizer(tokenizer)
    assert tokenize.compiled
    return tokenize


def full_ids(tokenizer: Any, texts: list[str]) -> list[list[int]]:
    return [enc.ids for enc in tokenizer.encode_batch(texts, add_special_tokens=False)]


def assert_prefixes(prefix: PrefixTokenizer, texts: list[str], full: list[list[int]], max_tokens: int) -> None:
    ids, counts = prefix(texts, max_tokens)
    assert ids.shape == (len(texts), max_tokens) and ids.dtype == counts.dtype == np.int32
    bad = [
        i
        for i, row in enumerate(full)
        if counts[i] != min(len(row), max_tokens)
        or ids[i, : counts[i]].tolist() != row[:max_tokens]
        or ids[i, counts[i] :].any()
    ]
    assert bad == [], f"{len(bad)} texts differ at max_tokens={max_tokens}, first {[texts[i][:40] for i in bad[:3]]}"


def generated_texts(n: int, seed: int = 0) -> list[str]:
    """Short random texts over pieces the tokenizer treats specially: runs of spaces and of U+2581, the special
    tokens in raw text, newlines and tabs, combining marks, characters outside the vocabulary (byte fallback)."""
    rng = np.random.default_rng(seed)
    pieces = [*"abcdefghij XYZ .,;!?'\"<>/s0123\n\t", "  ", "\u2581", "\u2581\u2581", "<s>", "</s>", "<unk>", "<s"]
    pieces += ["é", "ß", "中文", "😀", "\u0301", "\x00", "\r\n", "ing", "tion", " the", "Ω", "\U0001f9ea"]
    return ["".join(rng.choice(pieces, int(rng.integers(0, 40)))) for _ in range(n)]


def test_every_mmlu_prompt_whole_and_in_prefixes(tokenizer: Any, prefix: PrefixTokenizer) -> None:
    texts = mmlu()["prompt"].astype(str).tolist()
    full = full_ids(tokenizer, texts)
    longest = max(map(len, full))
    assert longest > 1000  # the whole prompts are read, past every prefix below
    for max_tokens in (longest + 3, 256, 64, 8, 1):
        assert_prefixes(prefix, texts, full, max_tokens)


def test_generated_text_and_words_too_long_for_it(tokenizer: Any, prefix: PrefixTokenizer) -> None:
    long_words = ["a" * 1500, "x " + "b" * 1023, "b" * 1024 + " c", "\u2581" * 3000, " " * 2000 + "z", "😀" * 600]
    texts = generated_texts(5000) + long_words + ["", " ", "<s>", "<s><s>", "a<s>b", "\u2581a", "a  b"]
    full = full_ids(tokenizer, texts)
    for max_tokens in (max(map(len, full)), 17, 3, 1):
        assert_prefixes(prefix, texts, full, max_tokens)


def test_a_full_word_cache_is_emptied_and_gives_the_same_ids(tokenizer: Any, prefix: PrefixTokenizer) -> None:
    rng = np.random.default_rng(1)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    words = ["".join(rng.choice(letters, int(rng.integers(3, 12)))) for _ in range(80_000)]  # > 32,768 cached
    texts = [" ".join(words[i : i + 40]) for i in range(0, len(words), 40)]
    full = full_ids(tokenizer, texts)
    assert_prefixes(prefix, texts, full, 64)
    assert_prefixes(prefix, texts, full, 64)  # again, from the refilled cache


def test_tokenizer_files_it_cannot_reproduce_go_to_rust(tokenizer: Any) -> None:
    spec = json.loads(tokenizer.to_str())
    assert bpe_tables(json.dumps(spec)) is not None
    crossing = json.loads(json.dumps(spec))
    crossing["model"]["vocab"]["a\u2581b"] = len(crossing["model"]["vocab"])  # a merge could cross a word start
    assert bpe_tables(json.dumps(crossing)) is None
    for key, value in (("pre_tokenizer", {"type": "Whitespace"}), ("normalizer", None)):
        changed = dict(spec, **{key: value})
        assert bpe_tables(json.dumps(changed)) is None
    from tokenizers import Tokenizer

    other = Tokenizer.from_str(json.dumps(dict(spec, pre_tokenizer={"type": "Whitespace"})))
    rust_only = PrefixTokenizer(other)
    assert not rust_only.compiled
    texts = generated_texts(200, seed=2)
    ids, counts = rust_only(texts, 16)
    assert [ids[i, : counts[i]].tolist() for i in range(len(texts))] == first_token_ids(other, texts, 16)


def test_bad_input_is_a_typed_error(tokenizer: Any) -> None:
    tokenize = PrefixTokenizer(tokenizer)
    with pytest.raises(InvalidInputError, match="list of str"):
        tokenize("one prompt", 8)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="list of str"):
        tokenize(["a", 3], 8)  # type: ignore[list-item]
    with pytest.raises(InvalidInputError, match="max_tokens"):
        tokenize(["a"], 0)
    ids, counts = tokenize([], 8)
    assert ids.shape == (0, 8) and counts.shape == (0,)
    ids, counts = tokenize(("hello world",), 8)  # any sequence of str
    assert ids[0, : counts[0]].tolist() == [22172, 3186]
