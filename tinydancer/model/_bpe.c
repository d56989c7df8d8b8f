/* WordLlama's tokenizer (Llama 2's SentencePiece BPE as a Hugging Face `tokenizers` file) in C, for the prompt
 * router's batch path (module tinydancer.model._bpe; Python side: tinydancer/model/fast_tokenizer.py).
 *
 * The Rust tokenizer reads each prompt as one BPE "word" (the file has no pre-tokenizer), so it merges over the
 * whole prompt and tokenises all of it. This file gives the same ids, faster, from three facts about the file:
 *
 * - Normalisation is "prepend U+2581, then every space becomes U+2581", per piece of text between special tokens
 *   (`<unk>`, `<s>`, `</s>` in the raw text are their ids, and each piece between them is normalised alone).
 * - No vocabulary token holds U+2581 after a character other than U+2581, so no merge joins a U+2581 to the
 *   character before it: the normalised text splits into words, each a run of U+2581 and the run of other
 *   characters after it, and BPE over each word alone gives the ids BPE over the whole text gives. Words repeat,
 *   so each word's ids are cached.
 * - A word's ids do not depend on the words after it, so tokenising stops once `max_tokens` ids are out.
 *
 * BPE itself is the file's: every character its vocabulary id, or its UTF-8 bytes' `<0xNN>` ids where it has
 * none (byte fallback); then, while any adjacent pair of symbols has a merge, the pair with the lowest merge rank
 * merges, the leftmost of equal ranks first (the order of the Rust implementation's priority queue).
 *
 * `BPE(chars, merges, byte_ids, specials)`: `chars` int32 pairs (codepoint, id) of the one-character tokens;
 * `merges` int32 triples (left id, right id, merged id) in rank order; `byte_ids` 256 int32; `specials` a list of
 * (str, id). `encode_into(texts, max_tokens, ids, counts)` writes the first `max_tokens` ids of text i to
 * `ids[i * max_tokens ...]` (int32, zeroed by the caller) and their number to `counts[i]`, or -1 where this file
 * does not tokenise the text (a word longer than LONG_WORD characters, or a str that is not valid UTF-8): the
 * caller tokenises those with the Rust tokenizer. tests/model/test_fast_tokenizer.py holds it to the Rust
 * tokenizer on every bundled MMLU prompt and on generated text.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define SPACE_MARK 0x2581u  /* U+2581, SentencePiece's space */
#define LONG_WORD 1024      /* longer words (no space for 1,024 characters) go to the Rust tokenizer */
#define CACHE_WORD_BYTES 96 /* longer words are tokenised each time, not cached */
#define CACHE_SLOTS (1u << 16)
#define CACHE_KEY_BYTES (1u << 21)
#define CACHE_IDS (1u << 19)
#define MAX_SPECIALS 8

typedef struct {
    uint64_t key; /* (left + 1) << 32 | (right + 1); 0: empty */
    int32_t rank;
    int32_t merged;
} MergeSlot;

typedef struct {
    uint32_t key; /* codepoint + 1; 0: empty */
    int32_t id;
} CharSlot;

typedef struct {
    uint64_t hash; /* 0: empty */
    uint32_t key_at, key_len, ids_at, ids_len;
} CacheSlot;

typedef struct {
    PyObject_HEAD
    MergeSlot *merges;
    uint64_t merge_mask;
    CharSlot *chars;
    uint32_t char_mask;
    int32_t byte_ids[256];
    int n_specials;
    char *special_text[MAX_SPECIALS];
    Py_ssize_t special_len[MAX_SPECIALS];
    int32_t special_id[MAX_SPECIALS];
    CacheSlot *cache;
    uint32_t cache_used;
    char *cache_keys;
    uint32_t keys_used;
    int32_t *cache_ids;
    uint32_t ids_used;
    int32_t *symbols; /* scratch for one word: its symbols, and each adjacent pair's rank and merged id */
    int32_t *pair_rank;
    int32_t *pair_merged;
    uint32_t *word_cps;
    char *word_bytes;
} BPE;

static uint64_t mix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static uint64_t hash_bytes(const char *s, uint32_t n) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (uint32_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
    h = mix64(h);
    return h ? h : 1;
}

static uint64_t table_size(Py_ssize_t n) { /* a power of two at least 4n (load <= 1/4) */
    uint64_t size = 16;
    while (size < (uint64_t)n * 4) size <<= 1;
    return size;
}

static int32_t char_id(const BPE *self, uint32_t cp) {
    uint32_t at = (uint32_t)mix64(cp) & self->char_mask;
    while (self->chars[at].key) {
        if (self->chars[at].key == cp + 1) return self->chars[at].id;
        at = (at + 1) & self->char_mask;
    }
    return -1;
}

static const MergeSlot *find_merge(const BPE *self, int32_t left, int32_t right) {
    uint64_t key = ((uint64_t)(uint32_t)(left + 1) << 32) | (uint32_t)(right + 1);
    uint64_t at = mix64(key) & self->merge_mask;
    while (self->merges[at].key) {
        if (self->merges[at].key == key) return &self->merges[at];
        at = (at + 1) & self->merge_mask;
    }
    return NULL;
}

static void set_pair(BPE *self, Py_ssize_t i) {
    const MergeSlot *m = find_merge(self, self->symbols[i], self->symbols[i + 1]);
    self->pair_rank[i] = m ? m->rank : INT32_MAX;
    self->pair_merged[i] = m ? m->merged : -1;
}

/* BPE over one word's codepoints; the symbols are left in self->symbols, their number returned. */
static Py_ssize_t merge_word(BPE *self, const uint32_t *cps, Py_ssize_t n_cps) {
    Py_ssize_t n = 0;
    for (Py_ssize_t c = 0; c < n_cps; c++) {
        int32_t id = char_id(self, cps[c]);
        if (id >= 0) {
            self->symbols[n++] = id;
            continue;
        }
        unsigned char buf[4];
        uint32_t cp = cps[c];
        int len;
        if (cp < 0x80) {
            buf[0] = (unsigned char)cp;
            len = 1;
        } else if (cp < 0x800) {
            buf[0] = (unsigned char)(0xC0 | (cp >> 6));
            buf[1] = (unsigned char)(0x80 | (cp & 0x3F));
            len = 2;
        } else if (cp < 0x10000) {
            buf[0] = (unsigned char)(0xE0 | (cp >> 12));
            buf[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
            buf[2] = (unsigned char)(0x80 | (cp & 0x3F));
            len = 3;
        } else {
            buf[0] = (unsigned char)(0xF0 | (cp >> 18));
            buf[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
            buf[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
            buf[3] = (unsigned char)(0x80 | (cp & 0x3F));
            len = 4;
        }
        for (int b = 0; b < len; b++) self->symbols[n++] = self->byte_ids[buf[b]];
    }
    for (Py_ssize_t i = 0; i + 1 < n; i++) set_pair(self, i);
    while (n > 1) {
        Py_ssize_t best = -1;
        int32_t best_rank = INT32_MAX;
        for (Py_ssize_t i = 0; i + 1 < n; i++)
            if (self->pair_rank[i] < best_rank) best_rank = self->pair_rank[best = i];
        if (best < 0) break;
        self->symbols[best] = self->pair_merged[best];
        Py_ssize_t tail = n - best - 2; /* symbols after the merged pair's right one */
        memmove(self->symbols + best + 1, self->symbols + best + 2, (size_t)tail * sizeof(int32_t));
        if (tail > 0) {
            memmove(self->pair_rank + best + 1, self->pair_rank + best + 2, (size_t)(tail - 1) * sizeof(int32_t));
            memmove(self->pair_merged + best + 1, self->pair_merged + best + 2, (size_t)(tail - 1) * sizeof(int32_t));
        }
        n--;
        if (best > 0) set_pair(self, best - 1);
        if (best + 1 < n) set_pair(self, best);
    }
    return n;
}

static void cache_clear(BPE *self) {
    memset(self->cache, 0, CACHE_SLOTS * sizeof(CacheSlot));
    self->cache_used = self->keys_used = self->ids_used = 0;
}

/* One word's ids: from the cache, or merged (and cached when it is short); *ids points at them. */
static Py_ssize_t word_ids(BPE *self, const uint32_t *cps, Py_ssize_t n_cps, const char *bytes, uint32_t n_bytes,
                           const int32_t **ids) {
    uint64_t h = hash_bytes(bytes, n_bytes);
    uint32_t at = (uint32_t)h & (CACHE_SLOTS - 1);
    if (n_bytes <= CACHE_WORD_BYTES) {
        while (self->cache[at].hash) {
            CacheSlot *slot = &self->cache[at];
            if (slot->hash == h && slot->key_len == n_bytes && !memcmp(self->cache_keys + slot->key_at, bytes, n_bytes)) {
                *ids = self->cache_ids + slot->ids_at;
                return slot->ids_len;
            }
            at = (at + 1) & (CACHE_SLOTS - 1);
        }
    }
    Py_ssize_t n = merge_word(self, cps, n_cps);
    *ids = self->symbols;
    if (n_bytes > CACHE_WORD_BYTES) return n;
    if (self->cache_used >= CACHE_SLOTS / 2 || self->keys_used + n_bytes > CACHE_KEY_BYTES ||
        self->ids_used + n > CACHE_IDS) {
        cache_clear(self);
        at = (uint32_t)h & (CACHE_SLOTS - 1);
    }
    CacheSlot *slot = &self->cache[at];
    slot->hash = h;
    slot->key_at = self->keys_used;
    slot->key_len = n_bytes;
    slot->ids_at = self->ids_used;
    slot->ids_len = (uint32_t)n;
    memcpy(self->cache_keys + self->keys_used, bytes, n_bytes);
    memcpy(self->cache_ids + self->ids_used, self->symbols, (size_t)n * sizeof(int32_t));
    self->keys_used += n_bytes;
    self->ids_used += (uint32_t)n;
    self->cache_used++;
    return n;
}

/* Decode one UTF-8 codepoint of valid UTF-8 (Python's own encoding of a str) at s[*i]. */
static uint32_t next_cp(const unsigned char *s, Py_ssize_t *i) {
    uint32_t c = s[*i];
    if (c < 0x80) {
        *i += 1;
        return c;
    }
    if (c < 0xE0) {
        c = ((c & 0x1F) << 6) | (s[*i + 1] & 0x3F);
        *i += 2;
        return c;
    }
    if (c < 0xF0) {
        c = ((c & 0x0F) << 12) | ((s[*i + 1] & 0x3F) << 6) | (s[*i + 2] & 0x3F);
        *i += 3;
        return c;
    }
    c = ((c & 0x07) << 18) | ((s[*i + 1] & 0x3F) << 12) | ((s[*i + 2] & 0x3F) << 6) | (s[*i + 3] & 0x3F);
    *i += 4;
    return c;
}

static void put_cp(char *out, uint32_t *n, uint32_t cp) { /* append cp's UTF-8 (cp is a normalised codepoint) */
    unsigned char *o = (unsigned char *)out + *n;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        *n += 1;
    } else if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        *n += 2;
    } else if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        *n += 3;
    } else {
        o[0] = (unsigned char)(0xF0 | (cp >> 18));
        o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
        o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[3] = (unsigned char)(0x80 | (cp & 0x3F));
        *n += 4;
    }
}

typedef struct {
    int32_t *out;
    Py_ssize_t n_out, max_out;
} Output;

/* Emit one word; returns 1 when the output is full, -1 when the word is too long. */
static int flush_word(BPE *self, Py_ssize_t n_cps, uint32_t n_bytes, Output *o) {
    const int32_t *ids;
    Py_ssize_t n = word_ids(self, self->word_cps, n_cps, self->word_bytes, n_bytes, &ids);
    Py_ssize_t take = n < o->max_out - o->n_out ? n : o->max_out - o->n_out;
    memcpy(o->out + o->n_out, ids, (size_t)take * sizeof(int32_t));
    o->n_out += take;
    return o->n_out >= o->max_out;
}

/* The normalised words of s[start:end], one piece between special tokens. 1: output full; -1: too long. */
static int encode_piece(BPE *self, const unsigned char *s, Py_ssize_t start, Py_ssize_t end, Output *o) {
    if (start >= end) return 0;
    Py_ssize_t n_cps = 1;
    uint32_t n_bytes = 0;
    self->word_cps[0] = SPACE_MARK; /* the prepended space */
    put_cp(self->word_bytes, &n_bytes, SPACE_MARK);
    int after_other = 0; /* the word holds a character other than U+2581 */
    for (Py_ssize_t i = start; i < end;) {
        uint32_t cp = next_cp(s, &i);
        if (cp == ' ') cp = SPACE_MARK;
        if (cp == SPACE_MARK && after_other) {
            int full = flush_word(self, n_cps, n_bytes, o);
            if (full) return full;
            n_cps = 0;
            n_bytes = 0;
            after_other = 0;
        }
        if (n_cps == LONG_WORD) return -1;
        self->word_cps[n_cps++] = cp;
        put_cp(self->word_bytes, &n_bytes, cp);
        if (cp != SPACE_MARK) after_other = 1;
    }
    return flush_word(self, n_cps, n_bytes, o);
}

/* The first o->max_out ids of one text: 0 done, -1 not tokenised here. */
static int encode_text(BPE *self, const unsigned char *s, Py_ssize_t len, Output *o) {
    Py_ssize_t piece = 0;
    for (Py_ssize_t i = 0; i < len; i++) {
        if (s[i] != '<') continue;
        for (int k = 0; k < self->n_specials; k++) {
            Py_ssize_t n = self->special_len[k];
            if (i + n > len || memcmp(s + i, self->special_text[k], (size_t)n)) continue;
            int r = encode_piece(self, s, piece, i, o);
            if (r) return r < 0 ? -1 : 0;
            o->out[o->n_out++] = self->special_id[k];
            if (o->n_out >= o->max_out) return 0;
            piece = i + n;
            i = piece - 1;
            break;
        }
    }
    int r = encode_piece(self, s, piece, len, o);
    return r < 0 ? -1 : 0;
}

static PyObject *bpe_encode_into(BPE *self, PyObject *args) {
    PyObject *texts;
    Py_ssize_t max_tokens;
    Py_buffer ids, counts;
    if (!PyArg_ParseTuple(args, "O!nw*w*", &PyList_Type, &texts, &max_tokens, &ids, &counts)) return NULL;
    Py_ssize_t n = PyList_GET_SIZE(texts);
    PyObject *result = NULL;
    if (max_tokens < 1) {
        PyErr_Format(PyExc_ValueError, "max_tokens: expected >= 1, got %zd", max_tokens);
    } else if (ids.len < n * max_tokens * (Py_ssize_t)sizeof(int32_t) || counts.len < n * (Py_ssize_t)sizeof(int32_t)) {
        PyErr_SetString(PyExc_ValueError, "ids, counts: expected int32 buffers of len(texts) * max_tokens, len(texts)");
    } else {
        int32_t *out = (int32_t *)ids.buf, *count = (int32_t *)counts.buf;
        for (Py_ssize_t t = 0; t < n; t++) {
            PyObject *text = PyList_GET_ITEM(texts, t);
            Py_ssize_t len;
            const char *s = PyUnicode_Check(text) ? PyUnicode_AsUTF8AndSize(text, &len) : NULL;
            if (!s) { /* not a str, or not encodable (lone surrogates): the caller's tokenizer decides */
                PyErr_Clear();
                count[t] = -1;
                continue;
            }
            Output o = {out + t * max_tokens, 0, max_tokens};
            count[t] = encode_text(self, (const unsigned char *)s, len, &o) < 0 ? -1 : (int32_t)o.n_out;
        }
        result = Py_NewRef(Py_None);
    }
    PyBuffer_Release(&ids);
    PyBuffer_Release(&counts);
    return result;
}

static void bpe_dealloc(BPE *self) {
    PyMem_Free(self->merges);
    PyMem_Free(self->chars);
    for (int k = 0; k < self->n_specials; k++) PyMem_Free(self->special_text[k]);
    PyMem_Free(self->cache);
    PyMem_Free(self->cache_keys);
    PyMem_Free(self->cache_ids);
    PyMem_Free(self->symbols);
    PyMem_Free(self->pair_rank);
    PyMem_Free(self->pair_merged);
    PyMem_Free(self->word_cps);
    PyMem_Free(self->word_bytes);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int bpe_init(BPE *self, PyObject *args, PyObject *kwargs) {
    static char *names[] = {"chars", "merges", "byte_ids", "specials", NULL};
    Py_buffer chars, merges, byte_ids;
    PyObject *specials;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "y*y*y*O!", names, &chars, &merges, &byte_ids, &PyList_Type,
                                     &specials))
        return -1;
    int ok = -1;
    Py_ssize_t n_chars = chars.len / 8, n_merges = merges.len / 12;
    if (self->merges) {
        PyErr_SetString(PyExc_TypeError, "BPE: already initialised");
    } else if (chars.len % 8 || merges.len % 12 || byte_ids.len != 256 * 4) {
        PyErr_SetString(PyExc_ValueError, "chars, merges, byte_ids: expected int32 [n, 2], [m, 3] and [256]");
    } else if (PyList_GET_SIZE(specials) > MAX_SPECIALS) {
        PyErr_Format(PyExc_ValueError, "specials: expected at most %d", MAX_SPECIALS);
    } else {
        uint64_t merge_slots = table_size(n_merges), char_slots = table_size(n_chars);
        size_t scratch = 4 * LONG_WORD + 4;
        self->merges = PyMem_Calloc(merge_slots, sizeof(MergeSlot));
        self->chars = PyMem_Calloc(char_slots, sizeof(CharSlot));
        self->cache = PyMem_Calloc(CACHE_SLOTS, sizeof(CacheSlot));
        self->cache_keys = PyMem_Malloc(CACHE_KEY_BYTES);
        self->cache_ids = PyMem_Malloc(CACHE_IDS * sizeof(int32_t));
        self->symbols = PyMem_Malloc(scratch * sizeof(int32_t));
        self->pair_rank = PyMem_Malloc(scratch * sizeof(int32_t));
        self->pair_merged = PyMem_Malloc(scratch * sizeof(int32_t));
        self->word_cps = PyMem_Malloc((LONG_WORD + 1) * sizeof(uint32_t));
        self->word_bytes = PyMem_Malloc(4 * (LONG_WORD + 1));
        if (!self->merges || !self->chars || !self->cache || !self->cache_keys || !self->cache_ids ||
            !self->symbols || !self->pair_rank || !self->pair_merged || !self->word_cps || !self->word_bytes) {
            PyErr_NoMemory();
        } else {
            self->merge_mask = merge_slots - 1;
            self->char_mask = (uint32_t)char_slots - 1;
            const int32_t *c = chars.buf, *m = merges.buf;
            for (Py_ssize_t k = 0; k < n_chars; k++) {
                uint32_t at = (uint32_t)mix64((uint32_t)c[2 * k]) & self->char_mask;
                while (self->chars[at].key) at = (at + 1) & self->char_mask;
                self->chars[at].key = (uint32_t)c[2 * k] + 1;
                self->chars[at].id = c[2 * k + 1];
            }
            for (Py_ssize_t k = 0; k < n_merges; k++) {
                uint64_t key = ((uint64_t)(uint32_t)(m[3 * k] + 1) << 32) | (uint32_t)(m[3 * k + 1] + 1);
                uint64_t at = mix64(key) & self->merge_mask;
                while (self->merges[at].key && self->merges[at].key != key) at = (at + 1) & self->merge_mask;
                if (self->merges[at].key) continue; /* a repeated pair keeps its first (lowest) rank */
                self->merges[at].key = key;
                self->merges[at].rank = (int32_t)k;
                self->merges[at].merged = m[3 * k + 2];
            }
            memcpy(self->byte_ids, byte_ids.buf, sizeof(self->byte_ids));
            ok = 0;
            for (Py_ssize_t k = 0; k < PyList_GET_SIZE(specials) && ok == 0; k++) {
                const char *text;
                Py_ssize_t len;
                int id;
                if (!PyArg_ParseTuple(PyList_GET_ITEM(specials, k), "s#i", &text, &len, &id) || len < 1 ||
                    text[0] != '<') {
                    if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "specials: expected (str starting '<', id)");
                    ok = -1;
                    break;
                }
                self->special_text[k] = PyMem_Malloc((size_t)len);
                if (!self->special_text[k]) {
                    PyErr_NoMemory();
                    ok = -1;
                    break;
                }
                memcpy(self->special_text[k], text, (size_t)len);
                self->special_len[k] = len;
                self->special_id[k] = id;
                self->n_specials = (int)k + 1;
            }
        }
    }
    PyBuffer_Release(&chars);
    PyBuffer_Release(&merges);
    PyBuffer_Release(&byte_ids);
    return ok;
}

static PyMethodDef bpe_methods[] = {
    {"encode_into", (PyCFunction)bpe_encode_into, METH_VARARGS,
     "encode_into(texts, max_tokens, ids, counts): the first max_tokens ids of every text into int32 buffers "
     "(counts[i] = -1: not tokenised here)."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject BPEType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "tinydancer.model._bpe.BPE",
    .tp_basicsize = sizeof(BPE),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "WordLlama's BPE tokenizer in C (module docstring).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)bpe_init,
    .tp_dealloc = (destructor)bpe_dealloc,
    .tp_methods = bpe_methods,
};

static struct PyModuleDef bpe_module = {
    PyModuleDef_HEAD_INIT, .m_name = "tinydancer.model._bpe", .m_doc = "WordLlama's BPE tokenizer in C.",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__bpe(void) {
    if (PyType_Ready(&BPEType) < 0) return NULL;
    PyObject *module = PyModule_Create(&bpe_module);
    if (!module) return NULL;
    if (PyModule_AddObjectRef(module, "BPE", (PyObject *)&BPEType) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
