// Hashes, HMAC, P-256 keys, certificate requests and certificate reading for the agent, over the
// BoringSSL copy swift-nio-ssl already links (so the agent carries one copy, not two).
// No BoringSSL type appears here: Swift sees plain bytes, strings and opaque handles.
#ifndef IOTKUBE_NODE_CRYPTO_H
#define IOTKUBE_NODE_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#define IOTKUBE_DIGEST_SHA1 1
#define IOTKUBE_DIGEST_SHA256 256
#define IOTKUBE_DIGEST_SHA512 512

/// A running digest; `state` holds the BoringSSL context (checked to fit at compile time).
typedef struct {
    int algorithm;
    _Alignas(16) unsigned char state[256];
} iotkube_digest;

/// Starts a digest (an IOTKUBE_DIGEST_* algorithm); 0 on success, -1 for an unknown algorithm.
int iotkube_digest_init(iotkube_digest *digest, int algorithm);
void iotkube_digest_update(iotkube_digest *digest, const void *bytes, size_t count);
/// Writes the digest to `out` (64 bytes of room) and returns its length.
size_t iotkube_digest_final(iotkube_digest *digest, uint8_t *out);

/// HMAC-SHA256 of `message` under `key` into `out` (32 bytes); 0 on success.
int iotkube_hmac_sha256(const void *key, size_t key_count, const void *message, size_t message_count, uint8_t *out);
/// 1 when the two buffers hold the same bytes; takes the same time wherever they differ.
int iotkube_equal_in_constant_time(const void *a, const void *b, size_t count);
/// Fills `out` from the operating system's random source; 0 on success.
int iotkube_random_bytes(void *out, size_t count);

/// The text of the last BoringSSL error on this thread (the queue is cleared), or "". Every
/// fallible function here clears the queue first, so the text is about that call.
void iotkube_crypto_last_error(char *out, size_t capacity);
/// Wipes `count` bytes (a private key's PEM) and frees them.
void iotkube_free_secret(void *bytes, size_t count);

/// A fresh P-256 private key (an opaque handle), or NULL.
void *iotkube_key_generate(void);
void iotkube_key_free(void *key);
/// The key as PKCS#8 PEM, malloc'd (free it), or NULL.
char *iotkube_key_pem(void *key, size_t *length);
/// The public key's SubjectPublicKeyInfo (DER), malloc'd, or NULL.
uint8_t *iotkube_key_public_der(void *key, size_t *length);

/// The names a certificate or request is for: organizations (O), a common name (CN), DNS names
/// and IPv4 addresses (4 bytes each) for the subjectAltName extension.
typedef struct {
    const char *common_name;
    const char *const *organizations;
    size_t organization_count;
    const char *const *dns_names;
    size_t dns_name_count;
    const uint8_t *ipv4_addresses;
    size_t ipv4_address_count;
} iotkube_certificate_names;

/// A PKCS#10 request for `names` signed by `key` (ECDSA with SHA-256), as PEM, malloc'd, or NULL.
char *iotkube_request_pem(void *key, const iotkube_certificate_names *names, size_t *length);
/// A self-signed serving certificate (key usage digitalSignature+keyEncipherment, critical;
/// extended key usage serverAuth) valid between the two POSIX times, as PEM, malloc'd, or NULL.
char *iotkube_self_signed_pem(void *key, const iotkube_certificate_names *names, int64_t not_before,
                              int64_t not_after, size_t *length);

/// A parsed certificate (the first one of a PEM text, or DER), or NULL.
void *iotkube_certificate_parse(const uint8_t *bytes, size_t count, int pem);
/// The next certificate of a PEM text (other PEM blocks are skipped); `consumed` bytes were read.
/// NULL with `failed` 0 once no certificate is left; NULL with `failed` 1 for a malformed one.
void *iotkube_certificate_parse_next_pem(const uint8_t *bytes, size_t count, size_t *consumed, int *failed);
void iotkube_certificate_free(void *certificate);
/// The certificate as PEM, malloc'd, or NULL.
char *iotkube_certificate_pem(void *certificate, size_t *length);
/// 1 when `issuer` issued `certificate`: names and key identifiers match, the issuer may sign
/// certificates, and its key verifies the certificate's signature.
int iotkube_certificate_issued_by(void *certificate, void *issuer);
/// The validity period as POSIX times; 0 on success.
int iotkube_certificate_validity(void *certificate, int64_t *not_before, int64_t *not_after);
/// The subject public key info (DER), malloc'd, or NULL.
uint8_t *iotkube_certificate_public_der(void *certificate, size_t *length);

#define IOTKUBE_SUBJECT_COMMON_NAME 0
#define IOTKUBE_SUBJECT_ORGANIZATION 1
/// The next subject attribute of a kind after entry `*position` (start with -1; updated) as
/// UTF-8, malloc'd; NULL past the last one. `failed` is set when an attribute exists but is not
/// text (or holds a NUL byte).
char *iotkube_certificate_subject(void *certificate, int kind, int *position, size_t *length, int *failed);

#define IOTKUBE_NAME_DNS 2
#define IOTKUBE_NAME_IP 7
/// The number of subjectAltName entries (0 without the extension), -1 when it is malformed.
int iotkube_certificate_alt_name_count(void *certificate);
/// The `index`th subjectAltName entry: its kind (IOTKUBE_NAME_*, or the GENERAL_NAME type) and
/// bytes (DNS text or address bytes), malloc'd; NULL for kinds without plain bytes.
uint8_t *iotkube_certificate_alt_name(void *certificate, int index, int *kind, size_t *length);

#endif
