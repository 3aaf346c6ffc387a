// Buffers both C files of the crypto layer hand to Swift (not part of the module's API).
#ifndef IOTKUBE_NODE_CRYPTO_BUFFERS_H
#define IOTKUBE_NODE_CRYPTO_BUFFERS_H

#include <CNIOBoringSSL.h>
#include <stddef.h>
#include <stdint.h>

/// Copies a memory BIO's contents into a malloc'd, NUL-terminated buffer.
char *node_crypto_copy_out(BIO *bio, size_t *length);
/// A DER encoding made by an i2d function, moved into a malloc'd buffer (the original freed).
uint8_t *node_crypto_der_out(uint8_t *der, int count, size_t *length);

#endif
