/* SHA-512 (FIPS 180-4), enough for ECVRF: streaming update, a context that can be copied. */
#ifndef WEKACOIN_SHA512_H
#define WEKACOIN_SHA512_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t state[8];
    uint64_t length; /* bytes absorbed so far */
    uint8_t block[128];
    size_t used; /* bytes waiting in block */
} sha512_ctx;

void sha512_init(sha512_ctx *ctx);
void sha512_update(sha512_ctx *ctx, const uint8_t *data, size_t len);
void sha512_final(sha512_ctx *ctx, uint8_t digest[64]);

#endif
