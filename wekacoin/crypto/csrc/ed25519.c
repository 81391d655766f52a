/* edwards25519 arithmetic, written from RFC 7748 (the field), RFC 8032 (the curve, point
 * encoding and decoding) and the twisted Edwards formulas of Hisil, Wong, Carter and Dawson
 * ("Twisted Edwards curves revisited", 2008) with a = -1. Variable-time throughout: see
 * ed25519.h. */
#include "ed25519.h"

#include <string.h>

/* Constants set by ed25519_init. */
static fe fe_d;      /* d = -121665/121666 */
static fe fe_d2;     /* 2d */
static fe fe_sqrtm1; /* i, a square root of -1 */
static fe fe_sqrt1d; /* a square root of 1 + d */
static fe fe_k_plus;  /* a square root of -i/d */
static fe fe_k_minus; /* a square root of i/d */

/* The square root candidate of u/v for p = 5 mod 8 (RFC 8032 section 5.1.3):
 * r = u v^3 (u v^7)^((p-5)/8), with v r^2 = u (u/v)^((p-1)/4), one of u, -u, i u, -i u.
 * Returns 0 with r^2 = u/v when u/v is a square (then r is fixed up by i if need be),
 * 1 when v r^2 = i u, -1 when v r^2 = -i u (u/v not a square), -2 otherwise (v = 0).
 * Inputs below 2^53 - 76. */
static int fe_sqrt_ratio(fe *r, const fe *u, const fe *v) {
    fe v3, t, c, w;
    fe_sq(&v3, v);
    fe_mul(&v3, &v3, v);  /* v^3 */
    fe_sq(&t, &v3);
    fe_mul(&t, &t, v);
    fe_mul(&t, &t, u);    /* u v^7 */
    fe_pow22523(&t, &t);
    fe_mul(&t, &t, &v3);
    fe_mul(r, &t, u);
    fe_sq(&c, r);
    fe_mul(&c, &c, v);    /* v r^2 */
    if (fe_equal(&c, u)) return 0;
    fe_neg(&w, u);
    if (fe_equal(&c, &w)) {
        fe_mul(r, r, &fe_sqrtm1);
        return 0;
    }
    fe_mul(&w, u, &fe_sqrtm1);
    if (fe_equal(&c, &w)) return 1;
    fe_neg(&w, &w);
    if (fe_equal(&c, &w)) return -1;
    return -2;
}

/* 1 and r with r^2 = m, or 0 if m is not a square. */
static int fe_sqrt(fe *r, const fe *m) {
    fe one;
    fe_set(&one, 1);
    return fe_sqrt_ratio(r, m, &one) == 0;
}

/* --- Points ------------------------------------------------------------------------------------ */

typedef struct {
    fe X, Y, Z;
} ge_p2; /* projective: x = X/Z, y = Y/Z */

typedef struct {
    fe E, F, G, H;
} ge_p1p1; /* a sum or double before its last multiplications: X = EF, Y = GH, Z = FG, T = EH */

static void ge_identity(ge_p3 *p) {
    fe_set(&p->X, 0);
    fe_set(&p->Y, 1);
    fe_set(&p->Z, 1);
    fe_set(&p->T, 0);
}

static void p1p1_to_p2(ge_p2 *r, const ge_p1p1 *p) {
    fe_mul(&r->X, &p->E, &p->F);
    fe_mul(&r->Y, &p->G, &p->H);
    fe_mul(&r->Z, &p->F, &p->G);
}

static void p1p1_to_p3(ge_p3 *r, const ge_p1p1 *p) {
    fe_mul(&r->X, &p->E, &p->F);
    fe_mul(&r->Y, &p->G, &p->H);
    fe_mul(&r->Z, &p->F, &p->G);
    fe_mul(&r->T, &p->E, &p->H);
}

static void p3_to_p2(ge_p2 *r, const ge_p3 *p) {
    r->X = p->X;
    r->Y = p->Y;
    r->Z = p->Z;
}

/* Y+X < 2T, Y-X < T + 2^52, 2dT < T for T-bounded X, Y, Z, T. */
static void p3_to_cached(ge_cached *r, const ge_p3 *p) {
    fe_add(&r->YplusX, &p->Y, &p->X);
    fe_sub(&r->YminusX, &p->Y, &p->X);
    r->Z = p->Z;
    fe_mul(&r->T2d, &p->T, &fe_d2);
}

/* 2P (dbl-2008-hwcd, a = -1): A = X^2, B = Y^2, C = 2Z^2, E = (X+Y)^2 - A - B, G = B - A,
 * F = G - C, H = -A - B, here with F and H negated (which negates X, Y, Z and T alike: the same
 * point). Limbs: E < T + 2^53, G < T + 2^52, -F < 2T + 2^53, -H < 2T, all below 2^54. */
static void ge_dbl(ge_p1p1 *r, const ge_p2 *p) {
    fe a, b, c, t;
    fe_sq(&a, &p->X);
    fe_sq(&b, &p->Y);
    fe_sq(&c, &p->Z);
    fe_add(&c, &c, &c);
    fe_add(&t, &p->X, &p->Y);
    fe_sq(&t, &t);
    fe_add(&r->H, &a, &b);
    fe_sub_loose(&r->E, &t, &r->H);
    fe_sub(&r->G, &b, &a);
    fe_sub_loose(&r->F, &c, &r->G);
}

/* P + Q (add-2008-hwcd-3, a = -1): A = (Y1-X1)(Y2-X2), B = (Y1+X1)(Y2+X2), C = 2d T1 T2,
 * D = 2 Z1 Z2, E = B - A, F = D - C, G = D + C, H = B + A. P has T-bounded coordinates, Q's
 * are below 2^53 (see p3_to_cached); E, F, G, H end below 2T + 2^52 < 2^54. */
static void ge_add(ge_p1p1 *r, const ge_p3 *p, const ge_cached *q) {
    fe a, b, c, d, t;
    fe_sub(&t, &p->Y, &p->X);
    fe_mul(&a, &t, &q->YminusX);
    fe_add(&t, &p->Y, &p->X);
    fe_mul(&b, &t, &q->YplusX);
    fe_mul(&c, &p->T, &q->T2d);
    fe_mul(&d, &p->Z, &q->Z);
    fe_add(&d, &d, &d);
    fe_sub(&r->E, &b, &a);
    fe_sub(&r->F, &d, &c);
    fe_add(&r->G, &d, &c);
    fe_add(&r->H, &b, &a);
}

/* P - Q: adding -Q = (-x, y) swaps Y+X with Y-X and negates T. */
static void ge_sub(ge_p1p1 *r, const ge_p3 *p, const ge_cached *q) {
    fe a, b, c, d, t;
    fe_sub(&t, &p->Y, &p->X);
    fe_mul(&a, &t, &q->YplusX);
    fe_add(&t, &p->Y, &p->X);
    fe_mul(&b, &t, &q->YminusX);
    fe_mul(&c, &p->T, &q->T2d);
    fe_mul(&d, &p->Z, &q->Z);
    fe_add(&d, &d, &d);
    fe_sub(&r->E, &b, &a);
    fe_add(&r->F, &d, &c);
    fe_sub(&r->G, &d, &c);
    fe_add(&r->H, &b, &a);
}

int ge_frombytes(ge_p3 *p, const uint8_t s[32]) {
    fe u, v;
    if (!bytes_below_p(s)) return -1;
    fe_frombytes(&p->Y, s);
    fe_set(&p->Z, 1);
    /* x^2 = u/v with u = y^2 - 1, v = d y^2 + 1 */
    fe_sq(&u, &p->Y);
    fe_mul(&v, &u, &fe_d);
    fe_sub(&u, &u, &p->Z);
    fe_add(&v, &v, &p->Z);
    if (fe_sqrt_ratio(&p->X, &u, &v) != 0) return -1; /* u/v is not a square */
    int sign = s[31] >> 7;
    if (fe_iszero(&p->X) && sign) return -1;
    if (fe_isodd(&p->X) != sign) fe_neg(&p->X, &p->X);
    fe_mul(&p->T, &p->X, &p->Y);
    return 0;
}

void ge_tobytes_batch(uint8_t (*s)[32], const ge_p3 *p, size_t n) {
    fe prefix[8], inv, zi, x, y;
    /* Montgomery's trick: prefix[i] = Z_0 ... Z_i, one inversion, then back down. */
    for (size_t i = 0; i < n; i++) {
        if (i == 0)
            prefix[0] = p[0].Z;
        else
            fe_mul(&prefix[i], &prefix[i - 1], &p[i].Z);
    }
    fe_invert(&inv, &prefix[n - 1]);
    for (size_t i = n; i-- > 0;) {
        if (i == 0) {
            zi = inv;
        } else {
            fe_mul(&zi, &inv, &prefix[i - 1]);
            fe_mul(&inv, &inv, &p[i].Z);
        }
        fe_mul(&x, &p[i].X, &zi);
        fe_mul(&y, &p[i].Y, &zi);
        fe_tobytes(s[i], &y);
        s[i][31] |= (uint8_t)(fe_isodd(&x) << 7);
    }
}

int ge_is_identity(const ge_p3 *p) {
    return fe_iszero(&p->X) && fe_equal(&p->Y, &p->Z);
}

void ge_mul8(ge_p3 *r, const ge_p3 *p) {
    ge_p2 q;
    ge_p1p1 t;
    p3_to_p2(&q, p);
    ge_dbl(&t, &q);
    p1p1_to_p2(&q, &t);
    ge_dbl(&t, &q);
    p1p1_to_p2(&q, &t);
    ge_dbl(&t, &q);
    p1p1_to_p3(r, &t);
}

/* Subgroup membership by halving, four exponentiations instead of a 253-bit multiplication.
 *
 * E(GF(p)) is Z/8 x Z/L, so P lies in the subgroup of order L exactly when P is in 8E, that is
 * when P can be halved three times. The facts used, for a point (x, y) with x != 0:
 * (1) 1 - y^2 = -x^2 (1 + d y^2) by the curve equation, and -1 is a square, so 1 - y^2 and
 *     1 + d y^2 are squares together; (x, y) is in 2E exactly when they are (the 2-descent map
 *     u -> u mod squares on the Montgomery form, with u = (1 + y)/(1 - y), has kernel 2E).
 * (2) The halves Q of P = 2Q (Q and Q + (0, -1), with the same y^2) have Y = y(Q)^2 a root of
 *     d (1 + y) Y^2 + 2 (1 - d y) Y - (1 + y) = 0, whose discriminant is 4 (1 + d)(1 + d y^2)
 *     (1 + d is a square). The other root is -1/(d Y): as d is not a square, the true root is
 *     the one that is a square.
 * (3) For the two roots Z, Z' = -1/(d Z) of the quadratic of a point Q in 2E, with Z the true
 *     one, chi(1 - Z') = -chi(1 - Z) (chi: the Legendre symbol), so chi(Z (1 - Z)) for either
 *     root says whether the halves of Q are in 2E, with no need to tell the roots apart.
 * Hence: P in 2E by (1); a half Q by (2), whose y is a square root; Q in 2E by (1) again; and
 * Q's halves in 2E by (3). The sign of every square root taken is free: it swaps the roots of a
 * quadratic or a half Q for Q + (0, -1). */
int ge_is_torsion_free(const ge_p3 *p) {
    fe yn = p->Y, yd = p->Z, t, m, r, u, v, a, b, n;
    if (fe_equal(&yn, &yd)) return 1; /* y = 1: the identity */
    fe_neg(&t, &yd);
    if (fe_equal(&yn, &t)) return 0;  /* y = -1: the point of order 2 */
    /* P in 2E: 1 + d y^2 = (yd^2 + d yn^2) / yd^2 is a square, with root r / yd. */
    fe_sq(&m, &yn);
    fe_mul(&m, &m, &fe_d);
    fe_sq(&t, &yd);
    fe_add(&m, &m, &t);
    if (!fe_sqrt(&r, &m)) return 0;
    /* The roots of (2): (-(1 - d y) +- sqrt(1 + d) r/yd) / (d (1 + y)); one is u / v with
     * u = sqrt(1 + d) r - yd + d yn, v = d (yd + yn). If u/v is a square, y(Q) = sqrt(u/v).
     * Otherwise the candidate r' has v r'^2 = e i u (e = 1 or -1), so u/v = -e i r'^2 and the
     * true root is -1/(d u/v) = -e i / (d r'^2) = (k_e / r')^2, k_e a square root of -e i/d. */
    fe_mul(&u, &fe_sqrt1d, &r);
    fe_sub(&u, &u, &yd);
    fe_mul(&t, &fe_d, &yn);
    fe_add(&u, &u, &t);
    fe_carry(&u);
    fe_add(&t, &yd, &yn);
    fe_mul(&v, &t, &fe_d);
    switch (fe_sqrt_ratio(&r, &u, &v)) {
    case 0: /* y(Q) = a / b */
        a = r;
        fe_set(&b, 1);
        break;
    case 1: /* e = 1 */
        a = fe_k_plus;
        b = r;
        break;
    case -1: /* e = -1 */
        a = fe_k_minus;
        b = r;
        break;
    default: /* v = 0: impossible, as y != -1 */
        return 0;
    }
    /* Q in 2E: 1 + d y(Q)^2 = (b^2 + d a^2) / b^2 is a square, with root r / b. */
    fe_sq(&m, &a);
    fe_mul(&m, &m, &fe_d);
    fe_sq(&t, &b);
    fe_add(&m, &m, &t);
    if (!fe_sqrt(&r, &m)) return 0;
    /* A root of Q's quadratic: Z = n / v with n = sqrt(1 + d) r - b + d a, v = d (a + b);
     * chi(Z (1 - Z)) = chi(n (v - n)). */
    fe_mul(&n, &fe_sqrt1d, &r);
    fe_sub(&n, &n, &b);
    fe_mul(&t, &fe_d, &a);
    fe_add(&n, &n, &t);
    fe_carry(&n);
    fe_add(&t, &a, &b);
    fe_mul(&v, &t, &fe_d);
    fe_sub(&t, &v, &n);
    fe_mul(&t, &t, &n);
    return fe_is_square(&t);
}

/* --- Scalars and multi-scalar multiplication -------------------------------------------------- */

static const uint8_t ORDER_L[32] = {
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10,
};

int sc_is_canonical(const uint8_t s[32]) {
    for (int i = 31; i >= 0; i--) {
        if (s[i] != ORDER_L[i]) return s[i] < ORDER_L[i];
    }
    return 0; /* s = L */
}

/* Room for a width-w NAF of a 256-bit scalar: digits reach position 256 + w at most. */
#define NAF_SLOTS 272

/* The width-w non-adjacent form of the len-byte little-endian scalar s: digits naf[i] odd and
 * below 2^(w-1) in absolute value, at least w - 1 zeros after each nonzero one, and
 * sum naf[i] 2^i = s. Returns one past the highest nonzero position (0 for s = 0). */
static int wnaf(int8_t naf[NAF_SLOTS], const uint8_t *s, size_t len, int w) {
    int nbits = (int)(8 * len), top = 0, carry = 0, pos = 0;
    memset(naf, 0, NAF_SLOTS);
    /* Invariant: what is left to write at position pos is floor(s / 2^pos) + carry. */
    while (pos < nbits) {
        int bit = (s[pos >> 3] >> (pos & 7)) & 1;
        if (bit == carry) { /* even: nothing at this position, carry unchanged */
            pos++;
            continue;
        }
        int window = 0;
        for (int k = w - 1; k >= 0; k--) {
            int i = pos + k;
            window = window << 1 | (i < nbits ? (s[i >> 3] >> (i & 7)) & 1 : 0);
        }
        window += carry; /* odd and below 2^w */
        if (window >= 1 << (w - 1)) {
            naf[pos] = (int8_t)(window - (1 << w));
            carry = 1;
        } else {
            naf[pos] = (int8_t)window;
            carry = 0;
        }
        top = pos + 1;
        pos += w;
    }
    if (carry) {
        naf[pos] = 1;
        top = pos + 1;
    }
    return top;
}

/* odd[i] = (2i + 1) P for i < n. */
static void odd_multiples(ge_cached *odd, size_t n, const ge_p3 *p) {
    ge_p2 p2;
    ge_p1p1 t;
    ge_p3 twice, acc = *p;
    ge_cached twice_cached;
    p3_to_p2(&p2, p);
    ge_dbl(&t, &p2);
    p1p1_to_p3(&twice, &t);
    p3_to_cached(&twice_cached, &twice);
    p3_to_cached(&odd[0], p);
    for (size_t i = 1; i < n; i++) {
        ge_add(&t, &acc, &twice_cached);
        p1p1_to_p3(&acc, &t);
        p3_to_cached(&odd[i], &acc);
    }
}

typedef struct {
    const int8_t *naf;
    const ge_cached *odd;
} term;

/* sum over the terms of naf * P, left to right: one doubling a position, one addition a
 * nonzero digit. */
static void multiscalar(ge_p3 *r, const term *terms, int n, int top) {
    ge_p2 acc;
    ge_p1p1 t;
    ge_p3 u;
    ge_identity(r);
    if (top == 0) return;
    p3_to_p2(&acc, r);
    for (int i = top - 1; i >= 0; i--) {
        ge_dbl(&t, &acc);
        for (int j = 0; j < n; j++) {
            int d = terms[j].naf[i];
            if (d == 0) continue;
            p1p1_to_p3(&u, &t);
            if (d > 0)
                ge_add(&t, &u, &terms[j].odd[d / 2]);
            else
                ge_sub(&t, &u, &terms[j].odd[-d / 2]);
        }
        if (i > 0) p1p1_to_p2(&acc, &t);
    }
    p1p1_to_p3(r, &t);
}

static int max_int(int a, int b) { return a > b ? a : b; }

void ge_table_neg(ge_table *t, const ge_p3 *p) {
    ge_p3 neg = *p;
    fe_neg(&neg.X, &p->X);
    fe_neg(&neg.T, &p->T);
    odd_multiples(t->odd, GE_TABLE_SIZE, &neg);
}

/* L*P = O, the slow way: only for the self-check at start. */
static int order_kills(const ge_table *t) {
    int8_t naf[NAF_SLOTS];
    ge_p3 r;
    int top = wnaf(naf, ORDER_L, 32, GE_TABLE_W);
    term terms[1] = {{naf, t->odd}};
    multiscalar(&r, terms, 1, top);
    return ge_is_identity(&r);
}

/* The base point B and 2^128 B, with wider tables (width 8, 64 points each): s*B splits into
 * two 128-bit halves, so that s*B - c*P takes 128 doublings rather than 253. */
#define BASE_W 8
#define BASE_SIZE (1 << (BASE_W - 2))
static ge_cached base_lo[BASE_SIZE], base_hi[BASE_SIZE];

void ge_mul_base_minus(ge_p3 *r, const uint8_t s[32], const uint8_t c[16], const ge_table *t) {
    int8_t naf_lo[NAF_SLOTS], naf_hi[NAF_SLOTS], naf_c[NAF_SLOTS];
    int top = wnaf(naf_lo, s, 16, BASE_W);
    top = max_int(top, wnaf(naf_hi, s + 16, 16, BASE_W));
    top = max_int(top, wnaf(naf_c, c, 16, GE_TABLE_W));
    term terms[3] = {{naf_lo, base_lo}, {naf_hi, base_hi}, {naf_c, t->odd}};
    multiscalar(r, terms, 3, top);
}

void ge_mul_minus(ge_p3 *r, const uint8_t s[32], const ge_p3 *q, const uint8_t c[16],
                  const ge_table *t) {
    int8_t naf_s[NAF_SLOTS], naf_c[NAF_SLOTS];
    ge_cached q_odd[GE_TABLE_SIZE];
    odd_multiples(q_odd, GE_TABLE_SIZE, q);
    int top = max_int(wnaf(naf_s, s, 32, GE_TABLE_W), wnaf(naf_c, c, 16, GE_TABLE_W));
    term terms[2] = {{naf_s, q_odd}, {naf_c, t->odd}};
    multiscalar(r, terms, 2, top);
}

int ed25519_init(void) {
    fe t, one;
    uint8_t enc[32];
    ge_p3 b, b128;
    ge_table neg_b;
    ge_p2 p2;
    ge_p1p1 p1p1;

    /* d = -121665/121666 */
    fe_set(&t, 121666);
    fe_invert(&t, &t);
    fe_set(&fe_d, 121665);
    fe_mul(&fe_d, &fe_d, &t);
    fe_neg(&fe_d, &fe_d);
    fe_add(&fe_d2, &fe_d, &fe_d);
    /* sqrt(-1) = 2^((p-1)/4), as 2 is not a square mod p; (p-1)/4 = 2(2^252 - 3) + 1. */
    fe_set(&t, 2);
    fe_pow22523(&fe_sqrtm1, &t);
    fe_sq(&fe_sqrtm1, &fe_sqrtm1);
    fe_mul(&fe_sqrtm1, &fe_sqrtm1, &t);

    /* sqrt(1 + d), sqrt(-i/d), sqrt(i/d) for ge_is_torsion_free; all three are squares. */
    fe_set(&one, 1);
    fe_add(&t, &fe_d, &one);
    if (!fe_sqrt(&fe_sqrt1d, &t)) return -1;
    fe_invert(&t, &fe_d);
    fe_mul(&t, &t, &fe_sqrtm1);
    if (!fe_sqrt(&fe_k_minus, &t)) return -1;
    fe_neg(&t, &t);
    if (!fe_sqrt(&fe_k_plus, &t)) return -1;

    /* B = (x, 4/5) with x even (RFC 8032 section 5.1). */
    fe_set(&t, 5);
    fe_invert(&t, &t);
    fe_add(&t, &t, &t);
    fe_add(&t, &t, &t);
    fe_tobytes(enc, &t);
    if (ge_frombytes(&b, enc) != 0) return -1;
    odd_multiples(base_lo, BASE_SIZE, &b);
    p3_to_p2(&p2, &b);
    for (int i = 0; i < 128; i++) {
        ge_dbl(&p1p1, &p2);
        p1p1_to_p2(&p2, &p1p1);
    }
    p1p1_to_p3(&b128, &p1p1);
    odd_multiples(base_hi, BASE_SIZE, &b128);

    /* Self-checks: i^2 = -1, B has order L (not 1), and the subgroup test agrees on B. */
    fe_sq(&t, &fe_sqrtm1);
    fe_add(&t, &t, &one);
    if (!fe_iszero(&t)) return -1;
    ge_table_neg(&neg_b, &b);
    if (ge_is_identity(&b) || !order_kills(&neg_b) || !ge_is_torsion_free(&b)) return -1;
    return 0;
}
