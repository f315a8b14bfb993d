/* The guided walk of a foreign graph, compiled (foreignguide.py says what it is and why it is exact).

    walk(root, plan, param_index, deep) -> (nodes, data, grad) | None

numbers a micrograd-style graph by the last step's plan: ``nodes`` in canonical order
(a list), every node's value and gradient as float64 (two bytearrays), or None when
the graph is not the plan's. ``plan`` is ``Guide.compiled``:

    (a, b, params, lens, tupleish, ops)

``a``/``b`` node i's operand positions (int32, -1 none), ``params`` which watched
parameter a leaf is (int32, -1 none), ``lens`` the size of its ``_prev`` (uint8),
``tupleish`` whether that is a tuple or list (kept in order) or a set, ``ops`` its op
string.
``param_index``: id -> index of the watched parameters. ``deep(i, x, y)``: for a set
whose two parents neither an op string nor a parameter tells apart, True if ``x`` is
node i's first operand, False if ``y`` is, None if neither.

Why C: the same walk in Python loops a generation at a time, over nodes that lie all
over memory; here every node is read once, root down in reverse canonical order
(positions n-1 .. 0), which is about the reverse of the order they were made in, so
about the order they lie in memory. A node's operands always have lower positions
(post-order), so by the time the walk reaches position i some node above has placed
node i there; every other edge to it is checked to land on the same object.

Built by ``pip install`` (pyproject.toml, ext-modules); an editable install does not
rebuild it when this file changes: ``pip install -e .`` again.
*/
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

static PyObject *s_prev, *s_op, *s_data, *s_grad;

/* The first two parents of a set in its iteration order, as new references;
   1 if it has fewer, -1 on an error. */
static int set_pair(PyObject *set, PyObject **x, PyObject **y) {
#if PY_VERSION_HEX < 0x030D0000
    /* A set itself, read without an iterator object (a set subclass iterates as it says). */
    if (PySet_CheckExact(set) || PyFrozenSet_CheckExact(set)) {
        Py_ssize_t pos = 0;
        Py_hash_t hash;
        if (!_PySet_NextEntry(set, &pos, x, &hash) || !_PySet_NextEntry(set, &pos, y, &hash))
            return 1;
        Py_INCREF(*x);
        Py_INCREF(*y);
        return 0;
    }
#endif
    PyObject *it = PyObject_GetIter(set);
    if (!it) return -1;
    *x = PyIter_Next(it);
    *y = *x ? PyIter_Next(it) : NULL;
    Py_DECREF(it);
    if (*y) return 0;
    Py_CLEAR(*x);
    return PyErr_Occurred() ? -1 : 1;
}

/* The first parent of a non-empty container, as a new reference. */
static int first_of(PyObject *prev, PyObject **x) {
    PyObject *it = PyObject_GetIter(prev);
    if (!it) return -1;
    *x = PyIter_Next(it);
    Py_DECREF(it);
    if (*x) return 0;
    return PyErr_Occurred() ? -1 : 1;
}

/* Which watched parameter ``v`` is (its index in param_index), -1 if none; -2 on an error. */
static long param_of(PyObject *param_index, PyObject *v) {
    PyObject *key = PyLong_FromVoidPtr(v);
    if (!key) return -2;
    PyObject *hit = PyDict_GetItemWithError(param_index, key);
    Py_DECREF(key);
    if (!hit) return PyErr_Occurred() ? -2 : -1;
    long index = PyLong_AsLong(hit);
    return index == -1 && PyErr_Occurred() ? -2 : index;
}

/* A number as float64, as array('d') takes it (an int becomes the exact float). */
static int read_float(PyObject *v, PyObject *name, double *out) {
    PyObject *x = PyObject_GetAttr(v, name);
    if (!x) return -1;
    double d = PyFloat_AsDouble(x);
    Py_DECREF(x);
    if (d == -1.0 && PyErr_Occurred()) return -1;
    *out = d;
    return 0;
}

static int same_op(PyObject *v, PyObject *want) {
    PyObject *op = PyObject_GetAttr(v, s_op);
    if (!op) return -1;
    int same = op == want ? 1 : PyObject_RichCompareBool(op, want, Py_EQ);
    Py_DECREF(op);
    return same;
}

/* Which of a set's two parents is node i's first operand: 1 if y (swap), 0 if x,
   2 if neither (not the plan's graph), -1 on an error. */
static int order_pair(Py_ssize_t i, PyObject *x, PyObject *y, int32_t pa, int32_t pb,
                      PyObject **slot, PyObject *ops, const int32_t *params,
                      const uint8_t *lens, PyObject *param_index, PyObject *deep) {
    if (pa < 0 || pb < 0) return 2; /* a set of two is two operands */
    if (slot[pa]) return slot[pa] == x ? 0 : slot[pa] == y ? 1 : 2; /* placed: by identity */
    if (slot[pb]) return slot[pb] == y ? 0 : slot[pb] == x ? 1 : 2;
    PyObject *want = PyList_GET_ITEM(ops, pa);
    int xa = same_op(x, want), ya = same_op(y, want);
    if (xa < 0 || ya < 0) return -1;
    if (xa != ya) return ya; /* their op strings differ: the one the plan has first */
    if (!xa) return 2;
    if (lens[pa] == 0 && lens[pb] == 0) { /* two leaves: by which parameter each is */
        long px = param_of(param_index, x), py = param_of(param_index, y);
        if (px == -2 || py == -2) return -1;
        return px == params[pa] ? 0 : py == params[pa] ? 1 : 2;
    }
    PyObject *r = PyObject_CallFunction(deep, "nOO", i, x, y); /* a few levels up (rare) */
    if (!r) return -1;
    int answer = r == Py_True ? 0 : r == Py_False ? 1 : 2;
    Py_DECREF(r);
    return answer;
}

/* Place ``x`` at position p, or check the node already there is ``x``. */
static inline int place(PyObject **slot, int32_t p, PyObject *x) {
    if (!slot[p]) {
        Py_INCREF(x);
        slot[p] = x;
        return 1;
    }
    return slot[p] == x;
}

/* Node i (its op string, value, gradient, parents); 1 if it is the plan's, 0 if not. */
static int visit(Py_ssize_t i, PyObject **slot, const int32_t *A, const int32_t *B,
                 const int32_t *params, const uint8_t *lens, const uint8_t *tupleish,
                 PyObject *ops, PyObject *param_index, PyObject *deep, double *data,
                 double *grad) {
    PyObject *v = slot[i], *prev = NULL, *x = NULL, *y = NULL;
    if (!v) return 0; /* nothing above reached position i */
    int ok = same_op(v, PyList_GET_ITEM(ops, i));
    if (ok <= 0) return ok;
    if (read_float(v, s_data, data + i) < 0 || read_float(v, s_grad, grad + i) < 0) return -1;
    prev = PyObject_GetAttr(v, s_prev);
    if (!prev) return -1;
    int tup = PyTuple_Check(prev) || PyList_Check(prev);
    Py_ssize_t len = PyObject_Size(prev);
    if (len < 0) goto error;
    if (tup != tupleish[i] || len != lens[i]) goto mismatch;
    int32_t pa = A[i], pb = B[i];
    if (pa >= i || pb >= i) {
        PyErr_SetString(PyExc_ValueError, "a plan's operand comes after its node");
        goto error;
    }
    if (len == 0) { /* a leaf: the same watched parameter, or none */
        Py_DECREF(prev);
        long p = param_of(param_index, v);
        return p == -2 ? -1 : p == params[i];
    }
    int r = 0;
    if (tup) { /* in order: the first two edges are the recorded ones */
        x = Py_NewRef(PySequence_Fast_GET_ITEM(prev, 0));
        y = Py_NewRef(len > 1 ? PySequence_Fast_GET_ITEM(prev, 1) : x);
    } else if (len == 2) {
        r = set_pair(prev, &x, &y);
        if (!r) {
            r = order_pair(i, x, y, pa, pb, slot, ops, params, lens, param_index, deep);
            if (r == 1) { PyObject *t = x; x = y; y = t; }
            r = r == 1 ? 0 : r;
        }
    } else { /* one parent: set((a, a)) of a + a holds it once, for both operands */
        r = first_of(prev, &x);
        if (!r) y = Py_NewRef(x);
    }
    /* r: 0 read, 1 or 2 not the plan's graph, -1 an error */
    if (!r && ((pa >= 0 && !place(slot, pa, x)) || (pb >= 0 && !place(slot, pb, y)))) r = 2;
    Py_XDECREF(x);
    Py_XDECREF(y);
    Py_DECREF(prev);
    return r < 0 ? -1 : !r;
mismatch:
    Py_DECREF(prev);
    return 0;
error:
    Py_DECREF(prev);
    return -1;
}

static PyObject *walk(PyObject *module, PyObject *args) {
    PyObject *root, *ops, *param_index, *deep;
    Py_buffer a = {0}, b = {0}, params = {0}, lens = {0}, tupleish = {0};
    if (!PyArg_ParseTuple(args, "O(y*y*y*y*y*O!)O!O:walk", &root, &a, &b, &params, &lens,
                          &tupleish, &PyList_Type, &ops, &PyDict_Type, &param_index, &deep))
        return NULL;
    PyObject *result = NULL, *data = NULL, *grad = NULL, **slot = NULL;
    Py_ssize_t n = lens.len;
    if (n < 1 || a.len != 4 * n || b.len != 4 * n || params.len != 4 * n || tupleish.len != n ||
        PyList_GET_SIZE(ops) != n) {
        PyErr_SetString(PyExc_ValueError, "a plan's parts differ in length");
        goto done;
    }
    slot = PyMem_Calloc(n, sizeof(PyObject *));
    data = PyByteArray_FromStringAndSize(NULL, n * 8);
    grad = PyByteArray_FromStringAndSize(NULL, n * 8);
    if (!slot || !data || !grad) {
        if (!slot) PyErr_NoMemory();
        goto done;
    }
    double *D = (double *)PyByteArray_AS_STRING(data), *G = (double *)PyByteArray_AS_STRING(grad);
    Py_INCREF(root);
    slot[n - 1] = root;
    for (Py_ssize_t i = n - 1; i >= 0; i--) {
        int r = visit(i, slot, a.buf, b.buf, params.buf, lens.buf, tupleish.buf, ops,
                      param_index, deep, D, G);
        if (r < 0) goto done;
        if (r == 0) {
            result = Py_NewRef(Py_None);
            goto done;
        }
    }
    PyObject *nodes = PyList_New(n);
    if (!nodes) goto done;
    for (Py_ssize_t i = 0; i < n; i++) { /* the list takes the walk's references */
        PyList_SET_ITEM(nodes, i, slot[i]);
        slot[i] = NULL;
    }
    result = PyTuple_Pack(3, nodes, data, grad);
    Py_DECREF(nodes);
done:
    if (slot) {
        for (Py_ssize_t i = 0; i < n; i++) Py_XDECREF(slot[i]);
        PyMem_Free(slot);
    }
    Py_XDECREF(data);
    Py_XDECREF(grad);
    PyBuffer_Release(&a);
    PyBuffer_Release(&b);
    PyBuffer_Release(&params);
    PyBuffer_Release(&lens);
    PyBuffer_Release(&tupleish);
    return result;
}

static PyMethodDef methods[] = {
    {"walk", walk, METH_VARARGS,
     "walk(root, plan, param_index, deep) -> (nodes, data, grad) | None: the guided walk."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_guidedwalk", "The guided walk of a foreign graph, compiled.", -1,
    methods,
};

PyMODINIT_FUNC PyInit__guidedwalk(void) {
    s_prev = PyUnicode_InternFromString("_prev");
    s_op = PyUnicode_InternFromString("_op");
    s_data = PyUnicode_InternFromString("data");
    s_grad = PyUnicode_InternFromString("grad");
    if (!s_prev || !s_op || !s_data || !s_grad) return NULL;
    return PyModule_Create(&module);
}
