"""The first ``max_tokens`` WordLlama token ids of many prompts as one padded array, for the prompt router.

:class:`PrefixTokenizer` tokenises with the C tokenizer (``tinydancer/model/_bpe.c``) where the package was built
with it and the tokenizer file is one it reproduces (:func:`bpe_tables`), and with the Rust tokenizer
(:func:`~tinydancer.model.text_features.first_token_ids`) otherwise, and for the texts the C one leaves to it (a
word of over 1,024 characters, a ``str`` that is not valid UTF-8). Both give the same ids;
``tests/model/test_fast_tokenizer.py`` checks it on every bundled MMLU prompt. The C one is faster because it
tokenises word by word with a cache of the words it has seen, and stops once ``max_tokens`` ids are out, where the
Rust one merges over each whole prompt (WordLlama's file has no pre-tokenizer). ``COMPILED`` says whether the C
tokenizer was built.

Examples:
    >>> from tinydancer.model.text_features import load_wordllama, plain_tokenizer
    >>> tokenize = PrefixTokenizer(plain_tokenizer(load_wordllama(64)))
    >>> ids, counts = tokenize(["What is 2+2?", "hello world"], max_tokens=4)
    >>> ids.shape, counts.tolist()
    ((2, 4), [4, 2])
    >>> ids[1].tolist()
    [22172, 3186, 0, 0]
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from tinydancer.errors import InvalidInputError
from tinydancer.model.text_features import first_token_ids

if TYPE_CHECKING:
    COMPILED: bool
    BPE: Any
else:
    try:
        from tinydancer.model._bpe import BPE

        COMPILED = True
    except ImportError:  # installed without a C compiler
        BPE = None
        COMPILED = False

#: SentencePiece's space mark, U+2581.
SPACE_MARK = "\u2581"
#: The normaliser the C tokenizer implements: prepend the space mark, then every space becomes one.
_NORMALIZER = {
    "type": "Sequence",
    "normalizers": [
        {"type": "Prepend", "prepend": SPACE_MARK},
        {"type": "Replace", "pattern": {"String": " "}, "content": SPACE_MARK},
    ],
}


def bpe_tables(tokenizer_json: str) -> tuple[bytes, bytes, bytes, list[tuple[str, int]]] | None:
    """The C tokenizer's tables for a ``tokenizers`` JSON file, or None where it would not give the file's ids.

    It reproduces a byte-fallback BPE without pre-tokenizer, dropout or word affixes, behind WordLlama's
    normaliser, whose vocabulary holds the space mark only at a token's start or in runs of it (so that no merge
    crosses a word start), and whose added tokens all start with ``<`` and are matched in the raw text.

    Args:
        tokenizer_json: ``tokenizers.Tokenizer.to_str()``.

    Returns:
        ``chars`` (int32 [n, 2]: codepoint, id of every one-character token), ``merges`` (int32 [m, 3]: left, right
        and merged id, in rank order), ``byte_ids`` (int32 [256]: the ``<0xNN>`` tokens) as bytes, and the added
        tokens as (text, id), longest first; or None.
    """
    spec = json.loads(tokenizer_json)
    model = spec.get("model", {})
    plain = not any(model.get(k) for k in ("dropout", "continuing_subword_prefix", "end_of_word_suffix"))
    if (
        model.get("type") != "BPE"
        or not model.get("byte_fallback")
        or model.get("ignore_merges")
        or not plain
        or spec.get("pre_tokenizer") is not None
        or spec.get("normalizer") != _NORMALIZER
    ):
        return None
    vocab: dict[str, int] = model["vocab"]
    if any(SPACE_MARK in token[1:] and token.strip(SPACE_MARK) for token in vocab):
        return None
    byte_names = [f"<0x{b:02X}>" for b in range(256)]
    if not all(name in vocab for name in byte_names):
        return None
    added = spec.get("added_tokens", [])
    matched_raw = not any(t.get(k) for t in added for k in ("normalized", "lstrip", "rstrip", "single_word"))
    if not matched_raw or not all(t["content"].startswith("<") for t in added):
        return None
    merges = []
    for merge in model["merges"]:
        left, right = merge.split(" ") if isinstance(merge, str) else merge
        if left not in vocab or right not in vocab or left + right not in vocab:
            return None
        merges.append((vocab[left], vocab[right], vocab[left + right]))
    chars = [(ord(token), i) for token, i in vocab.items() if len(token) == 1]
    specials = sorted(((t["content"], t["id"]) for t in added), key=lambda s: -len(s[0]))
    return (
        np.asarray(chars, np.int32).reshape(-1, 2).tobytes(),
        np.asarray(merges, np.int32).reshape(-1, 3).tobytes(),
        np.asarray([vocab[name] for name in byte_names], np.int32).tobytes(),
        specials,
    )


class PrefixTokenizer:
    """Texts -> their first ``max_tokens`` token ids, zero-padded (module docstring).

    Args:
        tokenizer: A ``tokenizers.Tokenizer`` without padding or truncation
            (:func:`~tinydancer.model.text_features.plain_tokenizer`).

    Attributes:
        compiled: The C tokenizer is in use (else every text goes to ``tokenizer``).
    """

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        tables = bpe_tables(tokenizer.to_str()) if COMPILED else None
        self._bpe = BPE(*tables) if tables is not None else None
        self.compiled = self._bpe is not None

    def __call__(self, texts: Sequence[str], max_tokens: int) -> tuple[np.ndarray, np.ndarray]:
        """Token ids [N, max_tokens] int32 (0 after each text's ids) and counts [N] int32.

        Raises:
            InvalidInputError: ``texts`` is not a list of str, or ``max_tokens`` < 1.
        """
        if isinstance(texts, str):
            raise InvalidInputError("texts: expected a list of str, got one str")
        texts = list(texts)
        if not all(isinstance(t, str) for t in texts):
            raise InvalidInputError("texts: expected a list of str")
        if max_tokens < 1:
            raise InvalidInputError(f"max_tokens: expected >= 1, got {max_tokens}")
        ids = np.zeros((len(texts), max_tokens), np.int32)
        counts = np.full(len(texts), -1, np.int32)
        if self._bpe is not None:
            self._bpe.encode_into(texts, max_tokens, ids, counts)
        redo = np.flatnonzero(counts < 0).tolist()
        if redo:
            rows = first_token_ids(self.tokenizer, [texts[i] for i in redo], max_tokens)
            for i, row in zip(redo, rows, strict=True):
                ids[i, : len(row)] = row
                counts[i] = len(row)
        return ids, counts
