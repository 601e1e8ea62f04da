/* The optional compiled masking accelerator of trio_ws (RFC 6455 section 5.3).

   Masking XORs the payload with the 4-byte key repeated. The pure-Python version in
   _frames.py stays the reference: this module must give the same bytes for every input,
   and the tests compare both on every size, alignment and key offset.

   The loop takes 16 bytes at a time with SSE2 where the compiler targets it (every x86-64),
   then 8 bytes as one 64-bit word, then single bytes. Unaligned loads and stores go through
   memcpy / _mm_loadu_si128, which compile to plain moves: a memoryview slice may start at
   any address. Large payloads are masked with the GIL released; the input buffer is held
   (a bytearray cannot be resized while it is exported) and the output is a new bytes
   object nobody else sees yet. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#if defined(__SSE2__) || defined(_M_X64) || (defined(_M_IX86_FP) && _M_IX86_FP >= 2)
#include <emmintrin.h>
#define TRIO_WS_SSE2 1
#endif

/* Below this size, releasing and taking back the GIL costs more than it lets others do. */
#define RELEASE_GIL_FROM 65536

static void
xor_mask(const unsigned char *src, unsigned char *dst, Py_ssize_t size, const unsigned char key[4])
{
    Py_ssize_t i = 0;
    uint64_t key64;
    unsigned char key8[8];

    /* Every block below starts at an offset that is a multiple of 4 (16 and 8 are), so
       each block uses the key from its first byte. */
    memcpy(key8, key, 4);
    memcpy(key8 + 4, key, 4);
    memcpy(&key64, key8, 8);

#ifdef TRIO_WS_SSE2
    if (size >= 16) {
        __m128i key128 = _mm_set1_epi64x((long long)key64);
        for (; i + 16 <= size; i += 16) {
            __m128i block = _mm_loadu_si128((const __m128i *)(src + i));
            _mm_storeu_si128((__m128i *)(dst + i), _mm_xor_si128(block, key128));
        }
    }
#endif
    for (; i + 8 <= size; i += 8) {
        uint64_t word;
        memcpy(&word, src + i, 8);
        word ^= key64;
        memcpy(dst + i, &word, 8);
    }
    for (; i < size; i++) {
        dst[i] = src[i] ^ key[i & 3];
    }
}

/* The masked copy of `data` as a new bytes object, or NULL with an exception set. */
static PyObject *
masked_bytes(PyObject *data, PyObject *mask_key)
{
    Py_buffer data_view, key_view;
    PyObject *result = NULL, *contiguous = NULL;

    if (PyObject_GetBuffer(mask_key, &key_view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    if (key_view.len != 4) {
        PyErr_SetString(PyExc_ValueError, "a masking key is exactly 4 bytes");
        goto release_key;
    }
    if (PyObject_GetBuffer(data, &data_view, PyBUF_SIMPLE) < 0) {
        /* A strided memoryview has no simple buffer: mask a contiguous copy of it, as the
           pure-Python version (int.from_bytes) does. */
        if (!PyMemoryView_Check(data) || !PyErr_ExceptionMatches(PyExc_BufferError)) {
            goto release_key;
        }
        PyErr_Clear();
        contiguous = PyBytes_FromObject(data);
        if (contiguous == NULL) {
            goto release_key;
        }
        if (PyObject_GetBuffer(contiguous, &data_view, PyBUF_SIMPLE) < 0) {
            goto release_key;
        }
    }
    result = PyBytes_FromStringAndSize(NULL, data_view.len);
    if (result != NULL) {
        unsigned char key[4];
        const unsigned char *src = (const unsigned char *)data_view.buf;
        unsigned char *dst = (unsigned char *)PyBytes_AS_STRING(result);
        Py_ssize_t size = data_view.len;

        memcpy(key, key_view.buf, 4);
        if (size >= RELEASE_GIL_FROM) {
            Py_BEGIN_ALLOW_THREADS
            xor_mask(src, dst, size, key);
            Py_END_ALLOW_THREADS
        }
        else {
            xor_mask(src, dst, size, key);
        }
    }
    PyBuffer_Release(&data_view);
release_key:
    PyBuffer_Release(&key_view);
    Py_XDECREF(contiguous);
    return result;
}

static PyObject *
speedups_apply_mask(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "apply_mask() takes 2 arguments (%zd given)", nargs);
        return NULL;
    }
    return masked_bytes(args[0], args[1]);
}

static PyObject *
speedups_mask_parts(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *masked, *parts;

    (void)module;
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "mask_parts() takes 2 arguments (%zd given)", nargs);
        return NULL;
    }
    /* The pure-Python version cuts large payloads into cache-sized pieces; here one piece
       is as fast and makes the final join cheaper. */
    masked = masked_bytes(args[0], args[1]);
    if (masked == NULL) {
        return NULL;
    }
    parts = PyList_New(1);
    if (parts == NULL) {
        Py_DECREF(masked);
        return NULL;
    }
    PyList_SET_ITEM(parts, 0, masked); /* steals the reference */
    return parts;
}

PyDoc_STRVAR(apply_mask_doc,
"apply_mask($module, data, mask_key, /)\n--\n\n"
"``data`` (any contiguous bytes-like object) XORed with the 4-byte ``mask_key``, as bytes.");

PyDoc_STRVAR(mask_parts_doc,
"mask_parts($module, data, mask_key, /)\n--\n\n"
"``apply_mask(data, mask_key)`` as a one-item list, as the pure-Python mask_parts returns.");

static PyMethodDef speedups_methods[] = {
    {"apply_mask", (PyCFunction)(void (*)(void))speedups_apply_mask, METH_FASTCALL,
     apply_mask_doc},
    {"mask_parts", (PyCFunction)(void (*)(void))speedups_mask_parts, METH_FASTCALL,
     mask_parts_doc},
    {NULL, NULL, 0, NULL},
};

static PyModuleDef_Slot speedups_slots[] = {
#if PY_VERSION_HEX >= 0x030C0000
    /* No module state, no globals: safe in every subinterpreter. */
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
#if PY_VERSION_HEX >= 0x030D0000
    /* Nothing here depends on the GIL for its own safety (free-threaded builds). */
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    "trio_ws.sansio._speedups",
    "The optional compiled masking accelerator of trio_ws (see docs/performance.md).",
    0,
    speedups_methods,
    speedups_slots,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModuleDef_Init(&speedups_module);
}
