/* edwards25519 arithmetic for ECVRF verification: -x^2 + y^2 = 1 + d x^2 y^2 over p = 2^255 - 19.
 *
 * Everything here is VARIABLE-TIME: it runs on public data only (keys, proofs, inputs). Never
 * use it on a secret: proving stays on libsodium's constant-time operations. */
#ifndef WEKACOIN_ED25519_H
#define WEKACOIN_ED25519_H

#include <stddef.h>
#include <stdint.h>

#include "field.h"

/* Extended coordinates: x = X/Z, y = Y/Z, x*y = T/Z. */
typedef struct {
    fe X, Y, Z, T;
} ge_p3;

/* A point ready to be added: Y+X, Y-X, Z, 2*d*T. */
typedef struct {
    fe YplusX, YminusX, Z, T2d;
} ge_cached;

/* Odd multiples P, 3P, ..., (2^(w-1) - 1)P for a width-w NAF; w = 5 is 8 points. */
#define GE_TABLE_W 5
#define GE_TABLE_SIZE (1 << (GE_TABLE_W - 2))

typedef struct {
    ge_cached odd[GE_TABLE_SIZE];
} ge_table;

/* Sets up the constants and the base-point tables; -1 if a self-check fails. */
int ed25519_init(void);

/* RFC 8032 section 5.1.3: 0 and the point, or -1 if y >= p, x^2 has no root, or x = 0 with
 * the sign bit set. Any curve point decodes, in the prime-order subgroup or not. */
int ge_frombytes(ge_p3 *p, const uint8_t s[32]);

/* RFC 8032 section 5.1.2 encodings of n points, sharing one field inversion (1 <= n <= 8). */
void ge_tobytes_batch(uint8_t (*s)[32], const ge_p3 *p, size_t n);

int ge_is_identity(const ge_p3 *p);

/* 8P: clears the cofactor. */
void ge_mul8(ge_p3 *r, const ge_p3 *p);

/* The table of -P: multiples of -P, ready for ge_mul_base_minus and ge_mul_minus. */
void ge_table_neg(ge_table *t, const ge_p3 *p);

/* 1 if L*P = O, that is if P lies in the prime-order subgroup (the identity included). */
int ge_is_torsion_free(const ge_p3 *p);

/* s*B - c*P with s < 2^253 (32 bytes), c 16 bytes, t = ge_table_neg(P). */
void ge_mul_base_minus(ge_p3 *r, const uint8_t s[32], const uint8_t c[16], const ge_table *t);

/* s*Q - c*P with s < 2^253 (32 bytes), c 16 bytes, t = ge_table_neg(P). */
void ge_mul_minus(ge_p3 *r, const uint8_t s[32], const ge_p3 *q, const uint8_t c[16],
                  const ge_table *t);

/* 1 if the 32-byte little-endian scalar s is below the group order
 * L = 2^252 + 27742317777372353535851937790883648493. */
int sc_is_canonical(const uint8_t s[32]);

#endif
