/* SM2 signature verification arithmetic: the point u1*G + u2*P on the SM2 curve (GB/T 32918.1).
 *
 * For public data only. Nothing here is constant-time, nothing here ever sees a private key, and
 * gm/ never signs with it (signing stays on Botan's constant-time code). The rest of SM2
 * verification (DER, range checks, t = r + s, the final comparison) stays in gm/sm2.py.
 *
 * Field elements: 4 x 64-bit little-endian limbs in Montgomery form, R = 2^256, always fully
 * reduced (< p). p = 2^256 - 2^224 - 2^96 + 2^64 - 1 is -1 mod 2^64, so the Montgomery constant
 * -p^-1 mod 2^64 is 1. Points: Jacobian (X/Z^2, Y/Z^3); Z = 0 is the point at infinity. The curve
 * has a = -3, which the doubling formula uses.
 *
 * u1*G reads a table of j * 2^(8i) * G (32 windows x 255 affine entries, built at import, 0.5 MB;
 * the tables are affine so that each use is a mixed addition, 7M + 4S instead of 11M + 5S);
 * u2*P uses 4-bit fixed windows over a 15-entry table made per call, or — for a key verified
 * often (a CA, a TSA, a seal maker) — a table of j * 2^(4i) * P (64 x 15 entries, 60 KB, ~4
 * verifications' work to build) that gm/sm2.py keeps per key and that removes every doubling.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

typedef unsigned __int128 u128;
typedef struct {
    uint64_t v[4];
} fe;
typedef struct {
    fe x, y, z;
} jpoint;
typedef struct { /* affine, never the point at infinity: the entries of the precomputed tables */
    fe x, y;
} apoint;

static const fe P = {{0xFFFFFFFFFFFFFFFFULL, 0xFFFFFFFF00000000ULL, 0xFFFFFFFFFFFFFFFFULL, 0xFFFFFFFEFFFFFFFFULL}};
static const uint8_t GX[32] = {0x32, 0xC4, 0xAE, 0x2C, 0x1F, 0x19, 0x81, 0x19, 0x5F, 0x99, 0x04,
                               0x46, 0x6A, 0x39, 0xC9, 0x94, 0x8F, 0xE3, 0x0B, 0xBF, 0xF2, 0x66,
                               0x0B, 0xE1, 0x71, 0x5A, 0x45, 0x89, 0x33, 0x4C, 0x74, 0xC7};
static const uint8_t GY[32] = {0xBC, 0x37, 0x36, 0xA2, 0xF4, 0xF6, 0x77, 0x9C, 0x59, 0xBD, 0xCE,
                               0xE3, 0x6B, 0x69, 0x21, 0x53, 0xD0, 0xA9, 0x87, 0x7C, 0xC6, 0x2A,
                               0x47, 0x40, 0x02, 0xDF, 0x32, 0xE5, 0x21, 0x39, 0xF0, 0xA0};

static fe R2;  /* 2^512 mod p: into Montgomery form */
static fe ONE; /* 1 in Montgomery form (R mod p) */
static apoint GTABLE[32][255];

/* t[0..4] < 2p -> r = t mod p */
static void reduce_once(fe *r, const uint64_t t[5]) {
    uint64_t s[4], borrow = 0;
    for (int j = 0; j < 4; j++) {
        u128 d = (u128)t[j] - P.v[j] - borrow;
        s[j] = (uint64_t)d;
        borrow = (uint64_t)(d >> 64) & 1;
    }
    if (t[4] || !borrow) /* rare for p this close to 2^256: a well-predicted branch */
        memcpy(r->v, s, sizeof s);
    else
        memcpy(r->v, t, sizeof s);
}

static void fe_add(fe *r, const fe *a, const fe *b) {
    uint64_t t[5];
    u128 c = 0;
    for (int j = 0; j < 4; j++) {
        c += (u128)a->v[j] + b->v[j];
        t[j] = (uint64_t)c;
        c >>= 64;
    }
    t[4] = (uint64_t)c;
    reduce_once(r, t);
}

static void fe_sub(fe *r, const fe *a, const fe *b) {
    uint64_t t[4], borrow = 0;
    for (int j = 0; j < 4; j++) {
        u128 d = (u128)a->v[j] - b->v[j] - borrow;
        t[j] = (uint64_t)d;
        borrow = (uint64_t)(d >> 64) & 1;
    }
    uint64_t add_p = 0 - borrow; /* a - b + p (mod 2^256) when it borrowed; branch-free as above */
    u128 c = 0;
    for (int j = 0; j < 4; j++) {
        c += (u128)t[j] + (P.v[j] & add_p);
        r->v[j] = (uint64_t)c;
        c >>= 64;
    }
}

/* Montgomery product a * b / R mod p (CIOS). */
static void fe_mul(fe *r, const fe *a, const fe *b) {
    uint64_t t[6] = {0, 0, 0, 0, 0, 0};
    for (int i = 0; i < 4; i++) {
        u128 c = 0;
        for (int j = 0; j < 4; j++) {
            c += (u128)a->v[j] * b->v[i] + t[j];
            t[j] = (uint64_t)c;
            c >>= 64;
        }
        c += t[4];
        t[4] = (uint64_t)c;
        t[5] = (uint64_t)(c >> 64);
        uint64_t m = t[0]; /* t[0] * (-p^-1 mod 2^64), which is 1 */
        c = ((u128)m * P.v[0] + t[0]) >> 64;
        for (int j = 1; j < 4; j++) {
            c += (u128)m * P.v[j] + t[j];
            t[j - 1] = (uint64_t)c;
            c >>= 64;
        }
        c += t[4];
        t[3] = (uint64_t)c;
        t[4] = t[5] + (uint64_t)(c >> 64);
    }
    reduce_once(r, t);
}

static void fe_sqr(fe *r, const fe *a) { fe_mul(r, a, a); }

static int fe_is_zero(const fe *a) { return (a->v[0] | a->v[1] | a->v[2] | a->v[3]) == 0; }

static void fe_from_bytes(fe *r, const uint8_t b[32]) { /* big-endian, into Montgomery form */
    fe plain;
    for (int j = 0; j < 4; j++) {
        uint64_t w = 0;
        for (int k = 0; k < 8; k++) w = (w << 8) | b[(3 - j) * 8 + k];
        plain.v[j] = w;
    }
    fe_mul(r, &plain, &R2);
}

static void fe_to_bytes(uint8_t b[32], const fe *a) { /* out of Montgomery form, big-endian */
    fe plain, one = {{1, 0, 0, 0}};
    fe_mul(&plain, a, &one);
    for (int j = 0; j < 4; j++)
        for (int k = 0; k < 8; k++) b[(3 - j) * 8 + k] = (uint8_t)(plain.v[j] >> (56 - 8 * k));
}

static void fe_inv(fe *r, const fe *a) { /* a^(p-2), Fermat, 4-bit fixed windows */
    fe powers[16], result;
    powers[0] = ONE;
    powers[1] = *a;
    for (int k = 2; k < 16; k++) fe_mul(&powers[k], &powers[k - 1], a);
    result = ONE;
    for (int j = 3; j >= 0; j--) {
        uint64_t e = P.v[j] - (j == 0 ? 2 : 0);
        for (int k = 60; k >= 0; k -= 4) {
            if (j != 3 || k != 60)
                for (int s = 0; s < 4; s++) fe_sqr(&result, &result);
            unsigned nibble = (unsigned)(e >> k) & 0xF;
            if (nibble) fe_mul(&result, &result, &powers[nibble]);
        }
    }
    *r = result;
}

/* dbl-2001-b (a = -3) */
static void pt_double(jpoint *r, const jpoint *p) {
    if (fe_is_zero(&p->z)) {
        *r = *p;
        return;
    }
    fe delta, gamma, beta, alpha, t1, t2, x3, y3, z3;
    fe_sqr(&delta, &p->z);
    fe_sqr(&gamma, &p->y);
    fe_mul(&beta, &p->x, &gamma);
    fe_sub(&t1, &p->x, &delta);
    fe_add(&t2, &p->x, &delta);
    fe_mul(&alpha, &t1, &t2);
    fe_add(&t1, &alpha, &alpha);
    fe_add(&alpha, &t1, &alpha); /* 3 (X - delta)(X + delta) */
    fe_sqr(&x3, &alpha);
    fe_add(&t1, &beta, &beta);
    fe_add(&t1, &t1, &t1); /* 4 beta */
    fe_add(&t2, &t1, &t1); /* 8 beta */
    fe_sub(&x3, &x3, &t2);
    fe_add(&z3, &p->y, &p->z);
    fe_sqr(&z3, &z3);
    fe_sub(&z3, &z3, &gamma);
    fe_sub(&z3, &z3, &delta);
    fe_sub(&t1, &t1, &x3);
    fe_mul(&y3, &alpha, &t1);
    fe_sqr(&t2, &gamma);
    fe_add(&t2, &t2, &t2);
    fe_add(&t2, &t2, &t2);
    fe_add(&t2, &t2, &t2); /* 8 gamma^2 */
    fe_sub(&y3, &y3, &t2);
    r->x = x3;
    r->y = y3;
    r->z = z3;
}

/* add-2007-bl, with the equal-point and opposite-point cases */
static void pt_add(jpoint *r, const jpoint *a, const jpoint *b) {
    if (fe_is_zero(&a->z)) {
        *r = *b;
        return;
    }
    if (fe_is_zero(&b->z)) {
        *r = *a;
        return;
    }
    fe z1z1, z2z2, u1, u2, s1, s2, h, i, j, rr, v, t;
    jpoint out;
    fe_sqr(&z1z1, &a->z);
    fe_sqr(&z2z2, &b->z);
    fe_mul(&u1, &a->x, &z2z2);
    fe_mul(&u2, &b->x, &z1z1);
    fe_mul(&s1, &a->y, &b->z);
    fe_mul(&s1, &s1, &z2z2);
    fe_mul(&s2, &b->y, &a->z);
    fe_mul(&s2, &s2, &z1z1);
    fe_sub(&h, &u2, &u1);
    fe_sub(&rr, &s2, &s1);
    if (fe_is_zero(&h)) {
        if (fe_is_zero(&rr)) {
            pt_double(r, a);
        } else {
            memset(r, 0, sizeof *r);
        }
        return;
    }
    fe_add(&rr, &rr, &rr);
    fe_add(&i, &h, &h);
    fe_sqr(&i, &i);
    fe_mul(&j, &h, &i);
    fe_mul(&v, &u1, &i);
    fe_sqr(&out.x, &rr);
    fe_sub(&out.x, &out.x, &j);
    fe_sub(&out.x, &out.x, &v);
    fe_sub(&out.x, &out.x, &v);
    fe_sub(&t, &v, &out.x);
    fe_mul(&out.y, &rr, &t);
    fe_mul(&t, &s1, &j);
    fe_add(&t, &t, &t);
    fe_sub(&out.y, &out.y, &t);
    fe_add(&t, &a->z, &b->z);
    fe_sqr(&t, &t);
    fe_sub(&t, &t, &z1z1);
    fe_sub(&t, &t, &z2z2);
    fe_mul(&out.z, &t, &h);
    *r = out;
}

/* madd-2007-bl: Jacobian + affine (the tables' entries), with the equal and opposite cases */
static void pt_add_affine(jpoint *r, const jpoint *a, const apoint *b) {
    if (fe_is_zero(&a->z)) {
        r->x = b->x;
        r->y = b->y;
        r->z = ONE;
        return;
    }
    fe z1z1, u2, s2, h, hh, i, j, rr, v, t;
    jpoint out;
    fe_sqr(&z1z1, &a->z);
    fe_mul(&u2, &b->x, &z1z1);
    fe_mul(&s2, &b->y, &a->z);
    fe_mul(&s2, &s2, &z1z1);
    fe_sub(&h, &u2, &a->x);
    fe_sub(&rr, &s2, &a->y);
    if (fe_is_zero(&h)) {
        if (fe_is_zero(&rr)) {
            pt_double(r, a);
        } else {
            memset(r, 0, sizeof *r);
        }
        return;
    }
    fe_sqr(&hh, &h);
    fe_add(&i, &hh, &hh);
    fe_add(&i, &i, &i); /* I = 4 HH */
    fe_mul(&j, &h, &i);
    fe_add(&rr, &rr, &rr);
    fe_mul(&v, &a->x, &i);
    fe_sqr(&out.x, &rr);
    fe_sub(&out.x, &out.x, &j);
    fe_sub(&out.x, &out.x, &v);
    fe_sub(&out.x, &out.x, &v);
    fe_sub(&t, &v, &out.x);
    fe_mul(&out.y, &rr, &t);
    fe_mul(&t, &a->y, &j);
    fe_add(&t, &t, &t);
    fe_sub(&out.y, &out.y, &t);
    fe_add(&t, &a->z, &h);
    fe_sqr(&t, &t);
    fe_sub(&t, &t, &z1z1);
    fe_sub(&out.z, &t, &hh);
    *r = out;
}

/* out[k] = in[k] in affine form, with one inversion for all (Montgomery's trick); every in[k].z != 0.
 * scratch holds n field elements. */
static void to_affine_batch(apoint *out, const jpoint *in, size_t n, fe *scratch) {
    scratch[0] = in[0].z;
    for (size_t k = 1; k < n; k++) fe_mul(&scratch[k], &scratch[k - 1], &in[k].z);
    fe inv, zinv, z2;
    fe_inv(&inv, &scratch[n - 1]); /* 1 / (z_0 ... z_{n-1}) */
    for (size_t k = n; k-- > 0;) {
        if (k > 0) {
            fe_mul(&zinv, &inv, &scratch[k - 1]);
            fe_mul(&inv, &inv, &in[k].z);
        } else {
            zinv = inv;
        }
        fe_sqr(&z2, &zinv);
        fe_mul(&out[k].x, &in[k].x, &z2);
        fe_mul(&z2, &z2, &zinv);
        fe_mul(&out[k].y, &in[k].y, &z2);
    }
}

static int finish(uint8_t x_out[32], const jpoint *acc);
static void add_g_part(jpoint *acc, const uint8_t u1[32]);

/* u1*G + u2*Q; scalars big-endian 32 bytes. Returns 0 for the point at infinity. */
static int combine(uint8_t x_out[32], const jpoint *q, const uint8_t u1[32], const uint8_t u2[32]) {
    jpoint table[16], acc;
    memset(&table[0], 0, sizeof table[0]);
    table[1] = *q;
    pt_double(&table[2], q);
    for (int k = 3; k < 16; k++) pt_add(&table[k], &table[k - 1], q);
    memset(&acc, 0, sizeof acc);
    for (int n = 0; n < 64; n++) { /* nibbles of u2, most significant first */
        if (n) {
            for (int d = 0; d < 4; d++) pt_double(&acc, &acc);
        }
        int nibble = (u2[n / 2] >> (n % 2 ? 0 : 4)) & 0xF;
        if (nibble) pt_add(&acc, &acc, &table[nibble]);
    }
    add_g_part(&acc, u1);
    return finish(x_out, &acc);
}



#define KEY_TABLE_POINTS (64 * 15)

/* table[15 i + j - 1] = j 2^(4i) Q, affine; work holds KEY_TABLE_POINTS jpoints and as many fe */
static void build_key_table(apoint *table, const jpoint *q, jpoint *work, fe *scratch) {
    jpoint base = *q;
    for (int i = 0; i < 64; i++) {
        work[15 * i] = base;
        for (int j = 1; j < 15; j++) pt_add(&work[15 * i + j], &work[15 * i + j - 1], &base);
        for (int d = 0; d < 4; d++) pt_double(&base, &base);
    }
    to_affine_batch(table, work, KEY_TABLE_POINTS, scratch);
}

static int finish(uint8_t x_out[32], const jpoint *acc) {
    if (fe_is_zero(&acc->z)) return 0;
    fe zinv, zinv2, x;
    fe_inv(&zinv, &acc->z);
    fe_sqr(&zinv2, &zinv);
    fe_mul(&x, &acc->x, &zinv2);
    fe_to_bytes(x_out, &x);
    return 1;
}

static void add_g_part(jpoint *acc, const uint8_t u1[32]) {
    for (int w = 0; w < 32; w++) { /* byte w of u1 counts 2^(8 (31 - w)) */
        int byte = u1[w];
        if (byte) pt_add_affine(acc, acc, &GTABLE[31 - w][byte - 1]);
    }
}

static int combine_with_table(uint8_t x_out[32], const apoint *table, const uint8_t u1[32], const uint8_t u2[32]) {
    jpoint acc;
    memset(&acc, 0, sizeof acc);
    for (int n = 0; n < 64; n++) { /* nibble n from the top counts 2^(4 (63 - n)) */
        int nibble = (u2[n / 2] >> (n % 2 ? 0 : 4)) & 0xF;
        if (nibble) pt_add_affine(&acc, &acc, &table[15 * (63 - n) + nibble - 1]);
    }
    add_g_part(&acc, u1);
    return finish(x_out, &acc);
}

static int read32(PyObject *obj, const char *what, const uint8_t **out) {
    if (!PyBytes_Check(obj) || PyBytes_GET_SIZE(obj) != 32) {
        PyErr_Format(PyExc_ValueError, "%s must be 32 bytes", what);
        return -1;
    }
    *out = (const uint8_t *)PyBytes_AS_STRING(obj);
    return 0;
}

static PyObject *py_combine(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *ox, *oy, *ou1, *ou2;
    const uint8_t *x, *y, *u1, *u2;
    if (!PyArg_ParseTuple(args, "SSSS", &ox, &oy, &ou1, &ou2)) return NULL;
    if (read32(ox, "x", &x) || read32(oy, "y", &y) || read32(ou1, "u1", &u1) || read32(ou2, "u2", &u2)) return NULL;
    jpoint q;
    uint8_t out[32];
    int finite;
    fe_from_bytes(&q.x, x);
    fe_from_bytes(&q.y, y);
    q.z = ONE;
    Py_BEGIN_ALLOW_THREADS
    finite = combine(out, &q, u1, u2);
    Py_END_ALLOW_THREADS
    if (!finite) Py_RETURN_NONE;
    return PyBytes_FromStringAndSize((const char *)out, 32);
}

static PyObject *py_key_table(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *ox, *oy;
    const uint8_t *x, *y;
    if (!PyArg_ParseTuple(args, "SS", &ox, &oy)) return NULL;
    if (read32(ox, "x", &x) || read32(oy, "y", &y)) return NULL;
    jpoint *work = PyMem_RawMalloc(KEY_TABLE_POINTS * sizeof(jpoint));
    fe *scratch = PyMem_RawMalloc(KEY_TABLE_POINTS * sizeof(fe));
    PyObject *blob = PyBytes_FromStringAndSize(NULL, KEY_TABLE_POINTS * sizeof(apoint));
    if (work == NULL || scratch == NULL || blob == NULL) {
        PyMem_RawFree(work);
        PyMem_RawFree(scratch);
        Py_XDECREF(blob);
        return PyErr_NoMemory();
    }
    jpoint q;
    fe_from_bytes(&q.x, x);
    fe_from_bytes(&q.y, y);
    q.z = ONE;
    apoint *table = (apoint *)PyBytes_AS_STRING(blob);
    Py_BEGIN_ALLOW_THREADS
    build_key_table(table, &q, work, scratch);
    Py_END_ALLOW_THREADS
    PyMem_RawFree(work);
    PyMem_RawFree(scratch);
    return blob;
}

static PyObject *py_combine_table(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *otable, *ou1, *ou2;
    const uint8_t *u1, *u2;
    if (!PyArg_ParseTuple(args, "SSS", &otable, &ou1, &ou2)) return NULL;
    if (PyBytes_GET_SIZE(otable) != (Py_ssize_t)(KEY_TABLE_POINTS * sizeof(apoint))) {
        PyErr_SetString(PyExc_ValueError, "not a key table from key_table()");
        return NULL;
    }
    if (read32(ou1, "u1", &u1) || read32(ou2, "u2", &u2)) return NULL;
    uint8_t out[32];
    int finite;
    const apoint *table = (const apoint *)PyBytes_AS_STRING(otable);
    Py_BEGIN_ALLOW_THREADS
    finite = combine_with_table(out, table, u1, u2);
    Py_END_ALLOW_THREADS
    if (!finite) Py_RETURN_NONE;
    return PyBytes_FromStringAndSize((const char *)out, 32);
}

static PyObject *py_field_mul(PyObject *self, PyObject *args) { /* test hook: a * b mod p */
    (void)self;
    PyObject *oa, *ob;
    const uint8_t *a, *b;
    if (!PyArg_ParseTuple(args, "SS", &oa, &ob)) return NULL;
    if (read32(oa, "a", &a) || read32(ob, "b", &b)) return NULL;
    fe fa, fb, fr;
    uint8_t out[32];
    fe_from_bytes(&fa, a);
    fe_from_bytes(&fb, b);
    fe_mul(&fr, &fa, &fb);
    fe_to_bytes(out, &fr);
    return PyBytes_FromStringAndSize((const char *)out, 32);
}

static PyMethodDef METHODS[] = {
    {"combine", py_combine, METH_VARARGS,
     "combine(x, y, u1, u2) -> affine x of u1*G + u2*(x, y) as 32 bytes, or None at infinity.\n"
     "The point must already be checked to lie on the curve."},
    {"key_table", py_key_table, METH_VARARGS,
     "key_table(x, y) -> opaque table of multiples of the (curve-checked) point, for combine_table."},
    {"combine_table", py_combine_table, METH_VARARGS,
     "combine_table(table, u1, u2) -> as combine(), with the point's precomputed table."},
    {"_field_mul", py_field_mul, METH_VARARGS, "a * b mod p for 32-byte big-endian inputs < p (tests)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef MODULE = {PyModuleDef_HEAD_INIT, "_sm2verify", NULL, -1, METHODS};

static int init_tables(void) {
    fe r = {{0, 0, 0, 0}};
    /* R mod p = 2^256 - p; then R2 = R * 2^256 mod p by 256 doublings */
    u128 c = 1;
    for (int j = 0; j < 4; j++) {
        c += (u128)(uint64_t)~P.v[j];
        r.v[j] = (uint64_t)c;
        c >>= 64;
    }
    ONE = r;
    for (int k = 0; k < 256; k++) fe_add(&r, &r, &r);
    R2 = r;
    jpoint *work = PyMem_RawMalloc(32 * 255 * sizeof(jpoint));
    fe *scratch = PyMem_RawMalloc(32 * 255 * sizeof(fe));
    if (work == NULL || scratch == NULL) {
        PyMem_RawFree(work);
        PyMem_RawFree(scratch);
        return -1;
    }
    jpoint base;
    fe_from_bytes(&base.x, GX);
    fe_from_bytes(&base.y, GY);
    base.z = ONE;
    for (int i = 0; i < 32; i++) {
        work[255 * i] = base;
        for (int j = 1; j < 255; j++) pt_add(&work[255 * i + j], &work[255 * i + j - 1], &base);
        for (int d = 0; d < 8; d++) pt_double(&base, &base);
    }
    to_affine_batch(&GTABLE[0][0], work, 32 * 255, scratch);
    PyMem_RawFree(work);
    PyMem_RawFree(scratch);
    return 0;
}

PyMODINIT_FUNC PyInit__sm2verify(void) {
    if (init_tables() != 0) return PyErr_NoMemory();
    return PyModule_Create(&MODULE);
}
