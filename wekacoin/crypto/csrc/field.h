/* The field GF(2^255 - 19) in radix 2^51 with unsigned __int128 products (RFC 7748 section 4.1
 * gives p; the representation is the usual one for 64-bit machines). Variable-time like the
 * rest: public data only. Included by ed25519.h; every function is static inline. */
#ifndef WEKACOIN_FIELD_H
#define WEKACOIN_FIELD_H

#include <stdint.h>
#include <string.h>

typedef unsigned __int128 u128;

#define MASK51 ((((uint64_t)1) << 51) - 1)

/* v[0] + v[1] 2^51 + v[2] 2^102 + v[3] 2^153 + v[4] 2^204, limbs below 2^54 (see fe_add). */
typedef struct {
    uint64_t v[5];
} fe;

static inline void fe_set(fe *h, uint64_t n) {
    memset(h, 0, sizeof *h);
    h->v[0] = n;
}

/* Brings every limb to 51 bits, folding the carry out of the top (2^255 = 19) into limb 0. */
static inline void fe_carry(fe *h) {
    uint64_t c;
    for (int i = 0; i < 4; i++) {
        c = h->v[i] >> 51;
        h->v[i] &= MASK51;
        h->v[i + 1] += c;
    }
    c = h->v[4] >> 51;
    h->v[4] &= MASK51;
    h->v[0] += 19 * c;
}

/* Sums and differences are not carried ("lazy reduction"). The bounds that make it safe, with
 * T = 2^51 + 2^17 the limb bound of a product (fe_mul, fe_sq) or of fe_carry's output:
 * - fe_add of two T-bounded elements is below 2T;
 * - fe_sub needs g below 2^52 - 38 (true of T-bounded elements) and adds below 2^52 to f;
 * - fe_sub_loose needs g below 2^53 - 76 and adds below 2^53 to f;
 * - fe_mul and fe_sq take limbs up to 2^54 (see fe_reduce_wide).
 * The point formulas below keep to these bounds; the comments there say how. */
static inline void fe_add(fe *h, const fe *f, const fe *g) {
    for (int i = 0; i < 5; i++) h->v[i] = f->v[i] + g->v[i];
}

/* f + 2p - g */
static inline void fe_sub(fe *h, const fe *f, const fe *g) {
    h->v[0] = f->v[0] + ((((uint64_t)1) << 52) - 38) - g->v[0];
    for (int i = 1; i < 5; i++) h->v[i] = f->v[i] + ((((uint64_t)1) << 52) - 2) - g->v[i];
}

/* f + 4p - g */
static inline void fe_sub_loose(fe *h, const fe *f, const fe *g) {
    h->v[0] = f->v[0] + ((((uint64_t)1) << 53) - 76) - g->v[0];
    for (int i = 1; i < 5; i++) h->v[i] = f->v[i] + ((((uint64_t)1) << 53) - 4) - g->v[i];
}

/* -f for f below 2^53 - 76, carried: the result is T-bounded. */
static inline void fe_neg(fe *h, const fe *f) {
    fe zero;
    fe_set(&zero, 0);
    fe_sub_loose(h, &zero, f);
    fe_carry(h);
}

/* Carries the five 128-bit column sums of a product into h. With input limbs below 2^54 each
 * column is below 5 * 19 * 2^108 < 2^114.6, every carry fits 64 bits, and the output limbs are
 * below 2^51 except limb 1, below 2^51 + 2^17. */
static inline void fe_reduce_wide(fe *h, u128 r0, u128 r1, u128 r2, u128 r3, u128 r4) {
    r1 += (uint64_t)(r0 >> 51);
    r2 += (uint64_t)(r1 >> 51);
    r3 += (uint64_t)(r2 >> 51);
    r4 += (uint64_t)(r3 >> 51);
    u128 t0 = ((uint64_t)r0 & MASK51) + (u128)(uint64_t)(r4 >> 51) * 19;
    h->v[0] = (uint64_t)t0 & MASK51;
    h->v[1] = ((uint64_t)r1 & MASK51) + (uint64_t)(t0 >> 51);
    h->v[2] = (uint64_t)r2 & MASK51;
    h->v[3] = (uint64_t)r3 & MASK51;
    h->v[4] = (uint64_t)r4 & MASK51;
}

/* Limb i times limb j lands at 2^(51(i+j)); past 2^255 it wraps around times 19. */
static inline void fe_mul(fe *h, const fe *f, const fe *g) {
    const uint64_t *a = f->v, *b = g->v;
    uint64_t b1_19 = 19 * b[1], b2_19 = 19 * b[2], b3_19 = 19 * b[3], b4_19 = 19 * b[4];
    u128 r0 = (u128)a[0] * b[0] + (u128)a[1] * b4_19 + (u128)a[2] * b3_19 + (u128)a[3] * b2_19 +
              (u128)a[4] * b1_19;
    u128 r1 = (u128)a[0] * b[1] + (u128)a[1] * b[0] + (u128)a[2] * b4_19 + (u128)a[3] * b3_19 +
              (u128)a[4] * b2_19;
    u128 r2 = (u128)a[0] * b[2] + (u128)a[1] * b[1] + (u128)a[2] * b[0] + (u128)a[3] * b4_19 +
              (u128)a[4] * b3_19;
    u128 r3 = (u128)a[0] * b[3] + (u128)a[1] * b[2] + (u128)a[2] * b[1] + (u128)a[3] * b[0] +
              (u128)a[4] * b4_19;
    u128 r4 = (u128)a[0] * b[4] + (u128)a[1] * b[3] + (u128)a[2] * b[2] + (u128)a[3] * b[1] +
              (u128)a[4] * b[0];
    fe_reduce_wide(h, r0, r1, r2, r3, r4);
}

static inline void fe_sq(fe *h, const fe *f) {
    const uint64_t *a = f->v;
    uint64_t a0_2 = 2 * a[0], a1_2 = 2 * a[1];
    uint64_t a1_38 = 38 * a[1], a2_38 = 38 * a[2], a3_38 = 38 * a[3];
    uint64_t a3_19 = 19 * a[3], a4_19 = 19 * a[4];
    u128 r0 = (u128)a[0] * a[0] + (u128)a1_38 * a[4] + (u128)a2_38 * a[3];
    u128 r1 = (u128)a0_2 * a[1] + (u128)a2_38 * a[4] + (u128)a3_19 * a[3];
    u128 r2 = (u128)a0_2 * a[2] + (u128)a[1] * a[1] + (u128)a3_38 * a[4];
    u128 r3 = (u128)a0_2 * a[3] + (u128)a1_2 * a[2] + (u128)a4_19 * a[4];
    u128 r4 = (u128)a0_2 * a[4] + (u128)a1_2 * a[3] + (u128)a[2] * a[2];
    fe_reduce_wide(h, r0, r1, r2, r3, r4);
}

/* f^(2^n) */
static inline void fe_sqn(fe *h, const fe *f, int n) {
    fe_sq(h, f);
    while (--n > 0) fe_sq(h, h);
}

/* z^(2^250 - 1), and z^11 on the side. */
static inline void fe_pow2_250_1(fe *out, fe *z11, const fe *z) {
    fe t0, t1, t2, t3;
    fe_sq(&t0, z);            /* z^2 */
    fe_sqn(&t1, &t0, 2);      /* z^8 */
    fe_mul(&t1, &t1, z);      /* z^9 */
    fe_mul(z11, &t0, &t1);    /* z^11 */
    fe_sq(&t2, z11);          /* z^22 */
    fe_mul(&t1, &t1, &t2);    /* z^31 = z^(2^5 - 1) */
    fe_sqn(&t2, &t1, 5);
    fe_mul(&t1, &t2, &t1);    /* 2^10 - 1 */
    fe_sqn(&t2, &t1, 10);
    fe_mul(&t2, &t2, &t1);    /* 2^20 - 1 */
    fe_sqn(&t3, &t2, 20);
    fe_mul(&t2, &t3, &t2);    /* 2^40 - 1 */
    fe_sqn(&t2, &t2, 10);
    fe_mul(&t1, &t2, &t1);    /* 2^50 - 1 */
    fe_sqn(&t2, &t1, 50);
    fe_mul(&t2, &t2, &t1);    /* 2^100 - 1 */
    fe_sqn(&t3, &t2, 100);
    fe_mul(&t2, &t3, &t2);    /* 2^200 - 1 */
    fe_sqn(&t2, &t2, 50);
    fe_mul(out, &t2, &t1);    /* 2^250 - 1 */
}

/* z^(p - 2) = z^(2^255 - 21) = 1/z (0 for 0). */
static inline void fe_invert(fe *out, const fe *z) {
    fe t, z11;
    fe_pow2_250_1(&t, &z11, z);
    fe_sqn(&t, &t, 5);
    fe_mul(out, &t, &z11);
}

/* z^((p - 5)/8) = z^(2^252 - 3), the exponent of RFC 8032's square root. */
static inline void fe_pow22523(fe *out, const fe *z) {
    fe t, z11;
    fe_pow2_250_1(&t, &z11, z);
    fe_sqn(&t, &t, 2);
    fe_mul(out, &t, z);
}

static inline uint64_t load_le64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static inline void store_le64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++, v >>= 8) p[i] = (uint8_t)v;
}

/* The low 255 bits of s (the top bit, a sign bit in point encodings, is ignored). */
static inline void fe_frombytes(fe *h, const uint8_t s[32]) {
    h->v[0] = load_le64(s) & MASK51;
    h->v[1] = (load_le64(s + 6) >> 3) & MASK51;
    h->v[2] = (load_le64(s + 12) >> 6) & MASK51;
    h->v[3] = (load_le64(s + 19) >> 1) & MASK51;
    h->v[4] = (load_le64(s + 24) >> 12) & MASK51;
}

/* The canonical encoding: the value reduced below p, 32 bytes little-endian. */
static inline void fe_tobytes(uint8_t s[32], const fe *h) {
    fe t = *h;
    fe_carry(&t);
    fe_carry(&t); /* now every limb is below 2^51: the value is below 2^255 */
    /* q = 1 exactly when the value is at least p, that is when value + 19 reaches 2^255. */
    uint64_t q = (t.v[0] + 19) >> 51;
    for (int i = 1; i < 5; i++) q = (t.v[i] + q) >> 51;
    t.v[0] += 19 * q;
    for (int i = 0; i < 4; i++) {
        t.v[i + 1] += t.v[i] >> 51;
        t.v[i] &= MASK51;
    }
    t.v[4] &= MASK51; /* drops the 2^255: subtracts p in all */
    store_le64(s, t.v[0] | t.v[1] << 51);
    store_le64(s + 8, t.v[1] >> 13 | t.v[2] << 38);
    store_le64(s + 16, t.v[2] >> 26 | t.v[3] << 25);
    store_le64(s + 24, t.v[3] >> 39 | t.v[4] << 12);
}

static inline int fe_iszero(const fe *f) {
    uint8_t s[32];
    uint8_t acc = 0;
    fe_tobytes(s, f);
    for (int i = 0; i < 32; i++) acc |= s[i];
    return acc == 0;
}

static inline int fe_equal(const fe *f, const fe *g) {
    fe t;
    fe_sub_loose(&t, f, g);
    return fe_iszero(&t);
}

static inline int fe_isodd(const fe *f) {
    uint8_t s[32];
    fe_tobytes(s, f);
    return s[0] & 1;
}

/* 1 if the low 255 bits of s are below p. */
static inline int bytes_below_p(const uint8_t s[32]) {
    if ((s[31] & 0x7f) != 0x7f) return 1;
    for (int i = 30; i > 0; i--)
        if (s[i] != 0xff) return 1;
    return s[0] < 0xed;
}

/* z^((p-1)/2) = z^(2^254 - 10) is 1: z is a nonzero square. */
static inline int fe_is_square(const fe *z) {
    fe t, z11, z2, z6, one;
    fe_pow2_250_1(&t, &z11, z);
    fe_sqn(&t, &t, 4);
    fe_sq(&z2, z);
    fe_sq(&z6, &z2);
    fe_mul(&z6, &z6, &z2);
    fe_mul(&t, &t, &z6);
    fe_set(&one, 1);
    return fe_equal(&t, &one);
}

#endif
