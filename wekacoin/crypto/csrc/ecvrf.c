/* wekacoin.crypto._ecvrf: ECVRF-EDWARDS25519-SHA512-TAI verification (RFC 9381, suite 0x03).
 *
 * verify(pk, pi, alpha) -> beta or None, proof_to_hash(pi) -> beta or None. They give exactly
 * what wekacoin.crypto.vrf.verify_reference / proof_to_hash_reference give, including the
 * rules stricter than the RFC that the reference documents: Y and Gamma in the prime-order
 * subgroup and not the identity, and no proof when hash-to-curve fails. Arguments are any
 * C-contiguous buffers; the math runs without the GIL. Variable-time: public data only. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "ed25519.h"
#include "sha512.h"

#define SUITE 0x03
#define PK_BYTES 32
#define PROOF_BYTES 80
#define C_BYTES 16
#define BETA_BYTES 64

/* ECVRF_encode_to_curve_try_and_increment (section 5.4.1.1) with Y's encoding as the salt:
 * H = 8 * decode(SHA-512(suite || 0x01 || pk || alpha || ctr || 0x00)[0:32]) for the first
 * ctr that decodes. -1 if none of the 256 does, or if H is the identity. */
static int hash_to_curve(ge_p3 *h, const uint8_t pk[PK_BYTES], const uint8_t *alpha,
                         size_t alpha_len) {
    static const uint8_t prefix[2] = {SUITE, 0x01};
    sha512_ctx base, ctx;
    uint8_t digest[64], tail[2] = {0, 0x00};
    ge_p3 p;
    sha512_init(&base);
    sha512_update(&base, prefix, 2);
    sha512_update(&base, pk, PK_BYTES);
    sha512_update(&base, alpha, alpha_len);
    for (int ctr = 0; ctr < 256; ctr++) {
        ctx = base;
        tail[0] = (uint8_t)ctr;
        sha512_update(&ctx, tail, 2);
        sha512_final(&ctx, digest);
        if (ge_frombytes(&p, digest) == 0) {
            ge_mul8(h, &p);
            return ge_is_identity(h) ? -1 : 0;
        }
    }
    return -1;
}

/* ECVRF_proof_to_hash (section 5.2) from the encoding of cofactor * Gamma. */
static void beta_of(uint8_t beta[BETA_BYTES], const uint8_t gamma_8[32]) {
    static const uint8_t prefix[2] = {SUITE, 0x03}, suffix[1] = {0x00};
    sha512_ctx ctx;
    sha512_init(&ctx);
    sha512_update(&ctx, prefix, 2);
    sha512_update(&ctx, gamma_8, 32);
    sha512_update(&ctx, suffix, 1);
    sha512_final(&ctx, beta);
}

/* A point that must be valid in a proof or key: decodes, lies in the prime-order subgroup,
 * and is not the identity. Fills the table of -P for the multiplications. */
static int decode_prime_order(ge_p3 *p, ge_table *neg, const uint8_t s[32]) {
    if (ge_frombytes(p, s) != 0 || ge_is_identity(p) || !ge_is_torsion_free(p)) return -1;
    ge_table_neg(neg, p);
    return 0;
}

/* ECVRF_verify (section 5.3); 0 and beta, or -1. */
static int ecvrf_verify(uint8_t beta[BETA_BYTES], const uint8_t pk[PK_BYTES],
                        const uint8_t pi[PROOF_BYTES], const uint8_t *alpha, size_t alpha_len) {
    static const uint8_t prefix[2] = {SUITE, 0x02}, suffix[1] = {0x00};
    const uint8_t *gamma = pi, *c = pi + 32, *s = pi + 32 + C_BYTES;
    ge_p3 y, g, h, points[4]; /* H, U, V, 8 Gamma */
    ge_table neg_y, neg_g;
    uint8_t enc[4][32], digest[64];
    sha512_ctx ctx;

    if (!sc_is_canonical(s)) return -1;
    if (decode_prime_order(&y, &neg_y, pk) != 0) return -1;   /* also ECVRF_validate_key */
    if (decode_prime_order(&g, &neg_g, gamma) != 0) return -1;
    if (hash_to_curve(&h, pk, alpha, alpha_len) != 0) return -1;
    points[0] = h;
    ge_mul_base_minus(&points[1], s, c, &neg_y); /* U = s*B - c*Y */
    ge_mul_minus(&points[2], s, &h, c, &neg_g);  /* V = s*H - c*Gamma */
    ge_mul8(&points[3], &g);
    ge_tobytes_batch(enc, points, 4);
    /* ECVRF_challenge_generation (section 5.4.3): the public key comes first. */
    sha512_init(&ctx);
    sha512_update(&ctx, prefix, 2);
    sha512_update(&ctx, pk, PK_BYTES);
    sha512_update(&ctx, enc[0], 32);
    sha512_update(&ctx, gamma, 32);
    sha512_update(&ctx, enc[1], 32);
    sha512_update(&ctx, enc[2], 32);
    sha512_update(&ctx, suffix, 1);
    sha512_final(&ctx, digest);
    if (memcmp(digest, c, C_BYTES) != 0) return -1;
    beta_of(beta, enc[3]);
    return 0;
}

/* ECVRF_proof_to_hash on an unverified proof: Gamma must decode (any curve point) and s < L. */
static int ecvrf_proof_to_hash(uint8_t beta[BETA_BYTES], const uint8_t pi[PROOF_BYTES]) {
    ge_p3 g, g8;
    uint8_t enc[1][32];
    if (!sc_is_canonical(pi + 32 + C_BYTES) || ge_frombytes(&g, pi) != 0) return -1;
    ge_mul8(&g8, &g);
    ge_tobytes_batch(enc, &g8, 1);
    beta_of(beta, enc[0]);
    return 0;
}

/* --- Python bindings ------------------------------------------------------------------------ */

static PyObject *py_verify(PyObject *module, PyObject *args) {
    Py_buffer pk, pi, alpha;
    uint8_t pk_copy[PK_BYTES], pi_copy[PROOF_BYTES], beta[BETA_BYTES];
    int result = -1;
    (void)module;
    if (!PyArg_ParseTuple(args, "y*y*y*:verify", &pk, &pi, &alpha)) return NULL;
    if (pk.len == PK_BYTES && pi.len == PROOF_BYTES) {
        /* Copies, so that a bytearray changed by another thread meanwhile cannot make the
         * points checked differ from the points hashed. */
        memcpy(pk_copy, pk.buf, PK_BYTES);
        memcpy(pi_copy, pi.buf, PROOF_BYTES);
        Py_BEGIN_ALLOW_THREADS
        result = ecvrf_verify(beta, pk_copy, pi_copy, alpha.buf, (size_t)alpha.len);
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&pk);
    PyBuffer_Release(&pi);
    PyBuffer_Release(&alpha);
    if (result != 0) Py_RETURN_NONE;
    return PyBytes_FromStringAndSize((const char *)beta, BETA_BYTES);
}

static PyObject *py_proof_to_hash(PyObject *module, PyObject *args) {
    Py_buffer pi;
    uint8_t pi_copy[PROOF_BYTES], beta[BETA_BYTES];
    int result = -1;
    (void)module;
    if (!PyArg_ParseTuple(args, "y*:proof_to_hash", &pi)) return NULL;
    if (pi.len == PROOF_BYTES) {
        memcpy(pi_copy, pi.buf, PROOF_BYTES);
        Py_BEGIN_ALLOW_THREADS
        result = ecvrf_proof_to_hash(beta, pi_copy);
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&pi);
    if (result != 0) Py_RETURN_NONE;
    return PyBytes_FromStringAndSize((const char *)beta, BETA_BYTES);
}


/* --- Ed25519 signatures in batches, through libsodium ------------------------------------- */

/* libsodium's crypto_sign_open, the very function PyNaCl calls for one signature (its address
 * comes from PyNaCl's compiled module): a batch accepts exactly what one call accepts. */
typedef int (*sign_open_fn)(unsigned char *m, unsigned long long *mlen_p,
                            const unsigned char *sm, unsigned long long smlen,
                            const unsigned char *pk);

#define SIG_BYTES 64

/* SignatureBatch: the items, a shared cursor and one flag per item. Any number of threads may
 * call run() at once: each takes the next unchecked item until none is left, without the GIL,
 * so one call per thread does all its share and never waits for the interpreter. */
typedef struct {
    PyObject_HEAD
    PyObject *items;           /* the tuple of (pk, message, signature), keeps the bytes alive */
    sign_open_fn open_fn;
    Py_ssize_t n, longest;
    const unsigned char **pks, **msgs, **sigs;
    Py_ssize_t *lens;
    unsigned char *ok;
    atomic_size_t next;
    atomic_size_t done;
} SignatureBatch;

static void batch_dealloc(SignatureBatch *self) {
    PyMem_Free(self->pks);
    PyMem_Free(self->msgs);
    PyMem_Free(self->sigs);
    PyMem_Free(self->lens);
    PyMem_Free(self->ok);
    Py_XDECREF(self->items);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *batch_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    unsigned long long address;
    PyObject *items;
    SignatureBatch *self;
    Py_ssize_t i, n;
    static char *kwlist[] = {"crypto_sign_open", "items", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "KO:SignatureBatch", kwlist, &address, &items))
        return NULL;
    if (address == 0) {
        PyErr_SetString(PyExc_ValueError, "SignatureBatch: no crypto_sign_open address");
        return NULL;
    }
    self = (SignatureBatch *)type->tp_alloc(type, 0);
    if (self == NULL) return NULL;
    self->open_fn = (sign_open_fn)(uintptr_t)address;
    self->items = PySequence_Tuple(items);
    if (self->items == NULL) goto fail;
    n = self->n = PyTuple_GET_SIZE(self->items);
    self->pks = PyMem_Calloc((size_t)n + 1, sizeof *self->pks);
    self->msgs = PyMem_Calloc((size_t)n + 1, sizeof *self->msgs);
    self->sigs = PyMem_Calloc((size_t)n + 1, sizeof *self->sigs);
    self->lens = PyMem_Calloc((size_t)n + 1, sizeof *self->lens);
    self->ok = PyMem_Calloc((size_t)n + 1, 1);
    if (!self->pks || !self->msgs || !self->sigs || !self->lens || !self->ok) {
        PyErr_NoMemory();
        goto fail;
    }
    atomic_init(&self->next, 0);
    atomic_init(&self->done, 0);
    /* Only bytes (immutable, kept alive by self->items), so nothing changes meanwhile. */
    for (i = 0; i < n; i++) {
        PyObject *item = PyTuple_GET_ITEM(self->items, i), *pk, *msg, *sig;
        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 3) {
            PyErr_SetString(PyExc_TypeError,
                            "SignatureBatch: each item is (public_key, message, signature)");
            goto fail;
        }
        pk = PyTuple_GET_ITEM(item, 0);
        msg = PyTuple_GET_ITEM(item, 1);
        sig = PyTuple_GET_ITEM(item, 2);
        if (!PyBytes_Check(pk) || !PyBytes_Check(msg) || !PyBytes_Check(sig)) {
            PyErr_SetString(PyExc_TypeError,
                            "SignatureBatch: keys, messages and signatures are bytes");
            goto fail;
        }
        if (PyBytes_GET_SIZE(pk) != PK_BYTES || PyBytes_GET_SIZE(sig) != SIG_BYTES) continue;
        self->pks[i] = (const unsigned char *)PyBytes_AS_STRING(pk);
        self->msgs[i] = (const unsigned char *)PyBytes_AS_STRING(msg);
        self->sigs[i] = (const unsigned char *)PyBytes_AS_STRING(sig);
        self->lens[i] = PyBytes_GET_SIZE(msg);
        if (self->lens[i] > self->longest) self->longest = self->lens[i];
    }
    return (PyObject *)self;
fail:
    Py_DECREF(self);
    return NULL;
}

static PyObject *batch_run(SignatureBatch *self, PyObject *unused) {
    unsigned char *sm, *m;
    size_t checked = 0, n = (size_t)self->n;
    (void)unused;
    sm = PyMem_RawMalloc((size_t)self->longest + SIG_BYTES);
    m = PyMem_RawMalloc((size_t)self->longest + SIG_BYTES);
    if (!sm || !m) {
        PyMem_RawFree(sm);
        PyMem_RawFree(m);
        return PyErr_NoMemory();
    }
    Py_BEGIN_ALLOW_THREADS
    for (;;) {
        size_t i = atomic_fetch_add(&self->next, 1);
        unsigned long long mlen;
        if (i >= n) break;
        if (self->pks[i] != NULL) {  /* wrong lengths stay refused, as verify_signature does */
            memcpy(sm, self->sigs[i], SIG_BYTES);
            memcpy(sm + SIG_BYTES, self->msgs[i], (size_t)self->lens[i]);
            self->ok[i] = self->open_fn(m, &mlen, sm,
                                        (unsigned long long)self->lens[i] + SIG_BYTES,
                                        self->pks[i]) == 0;
        }
        checked++;
    }
    atomic_fetch_add(&self->done, checked);
    Py_END_ALLOW_THREADS
    PyMem_RawFree(sm);
    PyMem_RawFree(m);
    return PyLong_FromSize_t(checked);
}

static PyObject *batch_flags(SignatureBatch *self, PyObject *unused) {
    (void)unused;
    if (atomic_load(&self->done) != (size_t)self->n) {
        PyErr_SetString(PyExc_RuntimeError,
                        "SignatureBatch.flags: some items are unchecked or still being checked");
        return NULL;
    }
    return PyBytes_FromStringAndSize((const char *)self->ok, self->n);
}

static PyMethodDef batch_methods[] = {
    {"run", (PyCFunction)batch_run, METH_NOARGS,
     "run() -> int: check items no thread has taken yet, until none is left, without the GIL; "
     "the number this call checked. Any number of threads may run at once."},
    {"flags", (PyCFunction)batch_flags, METH_NOARGS,
     "flags() -> bytes: one byte per item, 1 if libsodium's crypto_sign_open accepts "
     "signature || message under the key, 0 if not (wrong lengths included). RuntimeError "
     "until every item has been checked."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject SignatureBatchType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "wekacoin.crypto._ecvrf.SignatureBatch",
    .tp_basicsize = sizeof(SignatureBatch),
    .tp_dealloc = (destructor)batch_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "SignatureBatch(crypto_sign_open_address, [(pk, message, signature), ...])",
    .tp_methods = batch_methods,
    .tp_new = batch_new,
};

static PyMethodDef methods[] = {
    {"verify", py_verify, METH_VARARGS,
     "verify(pk, pi, alpha) -> beta (64 bytes), or None if pi is not a valid proof for alpha under "
     "pk (including wrong lengths)."},
    {"proof_to_hash", py_proof_to_hash, METH_VARARGS,
     "proof_to_hash(pi) -> beta (64 bytes), or None if pi is malformed (wrong length, Gamma not a "
     "curve point, s >= L). Does not verify the proof."},
    {NULL, NULL, 0, NULL},
};

static int exec_module(PyObject *module) {
    if (PyType_Ready(&SignatureBatchType) < 0) return -1;
    Py_INCREF(&SignatureBatchType);
    if (PyModule_AddObject(module, "SignatureBatch", (PyObject *)&SignatureBatchType) < 0) {
        Py_DECREF(&SignatureBatchType);
        return -1;
    }
    if (ed25519_init() != 0) {
        PyErr_SetString(PyExc_ImportError,
                        "wekacoin.crypto._ecvrf: edwards25519 self-check failed (miscompiled?)");
        return -1;
    }
    return 0;
}

static PyModuleDef_Slot slots[] = {
    {Py_mod_exec, exec_module},
    {0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "wekacoin.crypto._ecvrf",
    .m_doc = "ECVRF-EDWARDS25519-SHA512-TAI verification (RFC 9381) in C; see wekacoin.crypto.vrf.",
    .m_size = 0,
    .m_methods = methods,
    .m_slots = slots,
};

PyMODINIT_FUNC PyInit__ecvrf(void) { return PyModuleDef_Init(&module_def); }
