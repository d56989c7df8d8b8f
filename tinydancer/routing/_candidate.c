/* A routing Candidate's six fields, stored and read in C (module tinydancer.routing._candidate).
 *
 * `Candidate` (tinydancer/routing/requests.py) is a frozen dataclass whose base is `CandidateFields`. A request
 * built the guide's way makes one Candidate per candidate, and a Python __init__ costs more than everything the
 * request does with the candidate afterwards; here construction is one C call: the arguments are read straight
 * from the call's argument vector (no tuple, no keyword dict) into six object slots.
 *
 * - `CandidateFields(id, embedding, metadata=None, created_at=None, access_count=0, success_rate=0.0)`:
 *   positional or keyword, the dataclass's own signature and defaults; fields are read-only attributes.
 * - `install_vectorcall(cls)`: calls of `cls` itself (not of its subclasses) take the fast path. Subclasses, and
 *   any call through type.__call__, construct through tp_new + tp_init, which parse the same way. (An __init__
 *   assigned to `cls` after this is not called by the fast path: Candidate is not meant to be patched.)
 * - `candidate_columns(candidates, cls, columns_cls)`: a request's Candidate objects read into one `columns_cls`
 *   (CandidateColumns) in one pass: the columns object is built here too, with no Python __init__ call.
 * - `copy_float32_rows(rows, out)`: their float32 [D] embeddings copied into one [N, D] matrix (numpy's own
 *   stacking spends more per row on inspecting each array than on copying it).
 *
 * tinydancer/routing/_candidate_fallback.py is the pure-Python twin used where no C compiler built this file;
 * the tests run the same contract against both.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#define N_FIELDS 6

typedef struct {
    PyObject_HEAD
    PyObject *fields[N_FIELDS]; /* id, embedding, metadata, created_at, access_count, success_rate */
} CandidateFields;

static const char *FIELD_NAMES[N_FIELDS] = {"id", "embedding", "metadata", "created_at", "access_count",
                                            "success_rate"};

typedef struct {
    PyObject *names[N_FIELDS];    /* interned: keyword names compiled into a call are the same objects */
    PyObject *defaults[N_FIELDS]; /* NULL for the required fields */
    PyTypeObject *columns_type;   /* the last columns class candidate_columns built (a strong reference) */
    Py_ssize_t column_offsets[N_FIELDS]; /* where its instances keep each column */
} ModuleState;

static ModuleState STATE; /* names and defaults filled once at import; the columns layout on first use */

static int fields_traverse(CandidateFields *self, visitproc visit, void *arg) {
    for (int i = 0; i < N_FIELDS; i++) Py_VISIT(self->fields[i]);
    return 0; /* a heap subclass's own traverse visits the type */
}

static int fields_clear(CandidateFields *self) {
    for (int i = 0; i < N_FIELDS; i++) Py_CLEAR(self->fields[i]);
    return 0;
}

static void fields_dealloc(CandidateFields *self) { /* a heap subclass's dealloc releases the type after this */
    PyObject_GC_UnTrack(self);
    fields_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Which field a keyword names, or -1 (with TypeError set). */
static int field_index(PyObject *key) {
    for (int i = 0; i < N_FIELDS; i++)
        if (STATE.names[i] == key) return i;
    if (PyUnicode_Check(key))
        for (int i = 0; i < N_FIELDS; i++)
            if (PyUnicode_Compare(STATE.names[i], key) == 0) return i;
    PyErr_Format(PyExc_TypeError, "Candidate() got an unexpected keyword argument %R", key);
    return -1;
}

static int place_keyword(PyObject **values, Py_ssize_t n_positional, PyObject *key, PyObject *value) {
    int i = field_index(key);
    if (i < 0) return -1;
    if (i < n_positional || values[i] != NULL) {
        PyErr_Format(PyExc_TypeError, "Candidate() got multiple values for argument %R", key);
        return -1;
    }
    values[i] = value;
    return 0;
}

/* Stores the arguments (borrowed references in `values`, NULL = not given) into self, defaults filled in. */
static int store_fields(CandidateFields *self, PyObject **values) {
    for (int i = 0; i < N_FIELDS; i++) {
        if (values[i] == NULL) values[i] = STATE.defaults[i];
        if (values[i] == NULL) {
            PyErr_Format(PyExc_TypeError, "Candidate() missing required argument %R (pos %d)", STATE.names[i],
                         i + 1);
            return -1;
        }
    }
    for (int i = 0; i < N_FIELDS; i++) Py_XSETREF(self->fields[i], Py_NewRef(values[i]));
    return 0;
}

static int too_many(Py_ssize_t n_positional) {
    PyErr_Format(PyExc_TypeError, "Candidate() takes at most %d arguments (%zd given)", N_FIELDS, n_positional);
    return -1;
}

static int fields_init(CandidateFields *self, PyObject *args, PyObject *kwargs) {
    PyObject *values[N_FIELDS] = {NULL};
    Py_ssize_t n_positional = PyTuple_GET_SIZE(args);
    if (n_positional > N_FIELDS) return too_many(n_positional);
    for (Py_ssize_t i = 0; i < n_positional; i++) values[i] = PyTuple_GET_ITEM(args, i);
    if (kwargs != NULL) {
        Py_ssize_t pos = 0;
        PyObject *key, *value;
        while (PyDict_Next(kwargs, &pos, &key, &value))
            if (place_keyword(values, n_positional, key, value) < 0) return -1;
    }
    return store_fields(self, values);
}

static PyObject *fields_vectorcall(PyObject *type, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
    PyObject *values[N_FIELDS] = {NULL};
    Py_ssize_t n_positional = PyVectorcall_NARGS(nargsf);
    if (n_positional > N_FIELDS) {
        too_many(n_positional);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n_positional; i++) values[i] = args[i];
    Py_ssize_t n_keywords = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    for (Py_ssize_t j = 0; j < n_keywords; j++)
        if (place_keyword(values, n_positional, PyTuple_GET_ITEM(kwnames, j), args[n_positional + j]) < 0)
            return NULL;
    PyTypeObject *tp = (PyTypeObject *)type;
    PyObject *self = tp->tp_alloc(tp, 0);
    if (self == NULL) return NULL;
    if (store_fields((CandidateFields *)self, values) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    return self;
}

static PyMemberDef fields_members[] = {
    {"id", T_OBJECT_EX, offsetof(CandidateFields, fields) + 0 * sizeof(PyObject *), READONLY, NULL},
    {"embedding", T_OBJECT_EX, offsetof(CandidateFields, fields) + 1 * sizeof(PyObject *), READONLY, NULL},
    {"metadata", T_OBJECT_EX, offsetof(CandidateFields, fields) + 2 * sizeof(PyObject *), READONLY, NULL},
    {"created_at", T_OBJECT_EX, offsetof(CandidateFields, fields) + 3 * sizeof(PyObject *), READONLY, NULL},
    {"access_count", T_OBJECT_EX, offsetof(CandidateFields, fields) + 4 * sizeof(PyObject *), READONLY, NULL},
    {"success_rate", T_OBJECT_EX, offsetof(CandidateFields, fields) + 5 * sizeof(PyObject *), READONLY, NULL},
    {NULL},
};

static PyTypeObject CandidateFieldsType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "tinydancer.routing._candidate.CandidateFields",
    .tp_doc = PyDoc_STR("CandidateFields(id, embedding, metadata=None, created_at=None, access_count=0, "
                        "success_rate=0.0)\n--\n\nThe six fields of a Candidate, stored in C."),
    .tp_basicsize = sizeof(CandidateFields),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)fields_init,
    .tp_dealloc = (destructor)fields_dealloc,
    .tp_traverse = (traverseproc)fields_traverse,
    .tp_clear = (inquiry)fields_clear,
    .tp_members = fields_members,
};

static PyObject *install_vectorcall(PyObject *Py_UNUSED(module), PyObject *cls) {
    if (!PyType_Check(cls) || !PyType_IsSubtype((PyTypeObject *)cls, &CandidateFieldsType)) {
        PyErr_Format(PyExc_TypeError, "install_vectorcall: expected a subclass of CandidateFields, got %R", cls);
        return NULL;
    }
    PyTypeObject *tp = (PyTypeObject *)cls;
    if (tp->tp_init != CandidateFieldsType.tp_init || tp->tp_new != CandidateFieldsType.tp_new) {
        PyErr_Format(PyExc_TypeError, "install_vectorcall: %R defines its own __init__ or __new__", cls);
        return NULL;
    }
    tp->tp_vectorcall = fields_vectorcall;
    Py_RETURN_NONE;
}

/* CandidateColumns' slots, in its field order. */
static const char *COLUMN_NAMES[N_FIELDS] = {"ids", "embeddings", "created_at", "access_count", "success_rate",
                                             "metadata"};

/* Learns where instances of `type` keep the six columns: `type` must be a class with a writable slot (a
 * __slots__ member) for each name in COLUMN_NAMES, created by object.__new__. Its __init__ is not called, so it
 * must only store its arguments (a slots dataclass's does). 0, or -1 with TypeError set. */
static int learn_columns_layout(PyTypeObject *type) {
    Py_ssize_t offsets[N_FIELDS];
    if (type->tp_new != PyBaseObject_Type.tp_new || type->tp_itemsize != 0) goto refuse;
    for (int c = 0; c < N_FIELDS; c++) {
        PyObject *descr = PyDict_GetItemString(type->tp_dict, COLUMN_NAMES[c]); /* borrowed */
        if (descr == NULL || !Py_IS_TYPE(descr, &PyMemberDescr_Type)) goto refuse;
        PyMemberDef *member = ((PyMemberDescrObject *)descr)->d_member;
        if (member->type != T_OBJECT_EX || (member->flags & READONLY)) goto refuse;
        offsets[c] = member->offset;
    }
    PyTypeObject *previous = STATE.columns_type;
    memcpy(STATE.column_offsets, offsets, sizeof(offsets));
    STATE.columns_type = (PyTypeObject *)Py_NewRef(type);
    Py_XDECREF(previous); /* last: releasing it may run code that calls back in */
    return 0;
refuse:
    PyErr_Format(PyExc_TypeError, "candidate_columns: columns_cls must be a class with a __slots__ member for each "
                 "of ids, embeddings, created_at, access_count, success_rate, metadata; got %R", (PyObject *)type);
    return -1;
}

/* The columns candidate_columns gives, in CandidateColumns' order, as indices into a Candidate's fields. */
static const int COLUMN_FIELDS[N_FIELDS] = {0, 1, 3, 4, 5, 2}; /* ids, embeddings, created_at, access, success, meta */
#define METADATA_COLUMN 5

static PyObject **column_slot(PyObject *columns, const Py_ssize_t *offsets, int c) {
    return (PyObject **)((char *)columns + offsets[c]);
}

/* candidate_columns(candidates, cls, columns_cls): the fields of a list or tuple of `cls` instances as one
 * `columns_cls` instance, read in one pass: (ids, embeddings) tuples, (created_at, access_count, success_rate)
 * lists and the metadata tuple, or None when every candidate's metadata is None. None when `candidates` is another
 * container or holds anything else (the caller then names the offending item). */
static PyObject *candidate_columns(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3 || !PyType_Check(args[1]) || !PyType_IsSubtype((PyTypeObject *)args[1], &CandidateFieldsType) ||
        !PyType_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "candidate_columns(candidates, cls, columns_cls): cls must subclass "
                                         "CandidateFields and columns_cls must be a class");
        return NULL;
    }
    PyObject *candidates = args[0];
    PyTypeObject *cls = (PyTypeObject *)args[1], *columns_type = (PyTypeObject *)args[2];
    if (columns_type != STATE.columns_type && learn_columns_layout(columns_type) < 0) return NULL;
    /* A copy: an allocation below may run a finaliser that calls this with another class (a new layout). */
    Py_ssize_t offsets[N_FIELDS];
    memcpy(offsets, STATE.column_offsets, sizeof(offsets));
    if (!PyList_CheckExact(candidates) && !PyTuple_CheckExact(candidates)) Py_RETURN_NONE;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(candidates);
    /* Every object first: an allocation may run the garbage collector, and with it any finaliser, which could
     * change the list. Nothing below allocates, so the items read after this stay the list's items. */
    PyObject *result = columns_type->tp_alloc(columns_type, 0);
    if (result == NULL) return NULL;
    for (int c = 0; c < N_FIELDS; c++) {
        int is_list = c >= 2 && c < METADATA_COLUMN;
        PyObject *column = is_list ? PyList_New(n) : PyTuple_New(n);
        if (column == NULL) {
            Py_DECREF(result);
            return NULL;
        }
        *column_slot(result, offsets, c) = column;
    }
    PyObject **items = PySequence_Fast_ITEMS(candidates);
    int usable = PySequence_Fast_GET_SIZE(candidates) == n;
    for (Py_ssize_t i = 0; i < n && usable; i++) {
        usable = PyObject_TypeCheck(items[i], cls);
        for (int f = 0; f < N_FIELDS && usable; f++)
            usable = ((CandidateFields *)items[i])->fields[f] != NULL; /* NULL: made by __new__ alone */
    }
    if (!usable) {
        Py_DECREF(result); /* the columns hold no items yet */
        Py_RETURN_NONE;
    }
    int any_metadata = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject **fields = ((CandidateFields *)items[i])->fields;
        for (int c = 0; c < N_FIELDS; c++) {
            PyObject *column = *column_slot(result, offsets, c), *value = Py_NewRef(fields[COLUMN_FIELDS[c]]);
            if (PyList_CheckExact(column))
                PyList_SET_ITEM(column, i, value);
            else
                PyTuple_SET_ITEM(column, i, value);
        }
        any_metadata |= fields[2] != Py_None;
    }
    if (!any_metadata) /* nothing to validate or match: the packer skips the column */
        Py_SETREF(*column_slot(result, offsets, METADATA_COLUMN), Py_NewRef(Py_None));
    return result;
}

static int is_native_float32(const Py_buffer *view) {
    const char *format = view->format == NULL ? "B" : view->format;
    if (format[0] == '@' || format[0] == '=') format++;
    return view->itemsize == 4 && format[0] == 'f' && format[1] == '\0';
}

/* copy_float32_rows(rows, out): copies a list or tuple of N rows into `out`, a writable C-contiguous [N, D]
 * float32 array, when every row is a C-contiguous 1-D buffer of D native float32 values (numpy float32 rows);
 * True if it did, False as soon as a row is anything else (the caller then converts the rows itself). */
static PyObject *copy_float32_rows(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "copy_float32_rows(rows, out) takes 2 arguments");
        return NULL;
    }
    PyObject *rows = args[0];
    if (!PyList_CheckExact(rows) && !PyTuple_CheckExact(rows)) Py_RETURN_FALSE;
    Py_buffer out;
    if (PyObject_GetBuffer(args[1], &out, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(rows);
    if (out.ndim != 2 || out.shape[0] != n || !is_native_float32(&out)) {
        PyBuffer_Release(&out);
        PyErr_SetString(PyExc_ValueError, "copy_float32_rows: out must be a C-contiguous [N, D] float32 array");
        return NULL;
    }
    Py_ssize_t row_bytes = out.shape[1] * 4;
    int copied = 1;
    for (Py_ssize_t i = 0; i < n && copied; i++) {
        /* A row's buffer export may run Python code (a class's __buffer__, Python 3.12+): hold the row. */
        PyObject *row = Py_NewRef(PySequence_Fast_GET_ITEM(rows, i));
        Py_buffer view;
        if (!PyObject_CheckBuffer(row) || PyObject_GetBuffer(row, &view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
            PyErr_Clear();
            copied = 0;
        } else {
            copied = view.ndim == 1 && view.shape[0] == out.shape[1] && is_native_float32(&view);
            if (copied) memcpy((char *)out.buf + i * row_bytes, view.buf, (size_t)row_bytes);
            PyBuffer_Release(&view);
        }
        Py_DECREF(row);
        if (PySequence_Fast_GET_SIZE(rows) != n) copied = 0; /* the list changed under a buffer export */
    }
    PyBuffer_Release(&out);
    return PyBool_FromLong(copied);
}

static PyMethodDef module_methods[] = {
    {"candidate_columns", (PyCFunction)(void (*)(void))candidate_columns, METH_FASTCALL,
     PyDoc_STR("candidate_columns(candidates, cls, columns_cls)\n--\n\nThe fields of a list or tuple of cls "
               "instances as one columns_cls(ids, embeddings, created_at, access_count, success_rate, metadata), "
               "built without calling its __init__; metadata None when every one is None; None if any item is not "
               "a cls instance.")},
    {"copy_float32_rows", (PyCFunction)(void (*)(void))copy_float32_rows, METH_FASTCALL,
     PyDoc_STR("copy_float32_rows(rows, out)\n--\n\nCopy N float32 [D] rows into out ([N, D] float32); False "
               "(out partly written) as soon as a row is not a contiguous float32 [D] buffer.")},
    {"install_vectorcall", install_vectorcall, METH_O,
     PyDoc_STR("install_vectorcall(cls)\n--\n\nCalls of cls build its instances in one C call (cls: a subclass "
               "of CandidateFields with no __init__ or __new__ of its own; its subclasses are not affected).")},
    {NULL},
};

static struct PyModuleDef candidate_module = {
    PyModuleDef_HEAD_INIT, "tinydancer.routing._candidate", PyDoc_STR("Candidate fields in C."), -1,
    module_methods,
};

PyMODINIT_FUNC PyInit__candidate(void) {
    for (int i = 0; i < N_FIELDS; i++) {
        STATE.names[i] = PyUnicode_InternFromString(FIELD_NAMES[i]);
        if (STATE.names[i] == NULL) return NULL;
    }
    STATE.defaults[2] = Py_NewRef(Py_None);
    STATE.defaults[3] = Py_NewRef(Py_None);
    STATE.defaults[4] = PyLong_FromLong(0);
    STATE.defaults[5] = PyFloat_FromDouble(0.0);
    if (STATE.defaults[4] == NULL || STATE.defaults[5] == NULL) return NULL;
    if (PyType_Ready(&CandidateFieldsType) < 0) return NULL;
    PyObject *module = PyModule_Create(&candidate_module);
    if (module == NULL) return NULL;
    if (PyModule_AddObjectRef(module, "CandidateFields", (PyObject *)&CandidateFieldsType) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
