// See include/node_crypto.h: digests, HMAC, randomness, keys, requests and self-signed
// certificates (reading certificates is in certificate_reading.c). Every BoringSSL object made
// here is freed on every path.
#include "node_crypto.h"
#include "node_crypto_buffers.h"

#include <CNIOBoringSSL.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof(SHA512_CTX) <= 256 && sizeof(SHA256_CTX) <= 256 && sizeof(SHA_CTX) <= 256,
               "iotkube_digest.state is too small for a BoringSSL digest context");
_Static_assert(_Alignof(SHA512_CTX) <= 16 && _Alignof(SHA256_CTX) <= 16 && _Alignof(SHA_CTX) <= 16,
               "iotkube_digest.state is not aligned enough for a BoringSSL digest context");

int iotkube_digest_init(iotkube_digest *digest, int algorithm) {
    digest->algorithm = algorithm;
    switch (algorithm) {
    case IOTKUBE_DIGEST_SHA1: return SHA1_Init((SHA_CTX *)digest->state) == 1 ? 0 : -1;
    case IOTKUBE_DIGEST_SHA256: return SHA256_Init((SHA256_CTX *)digest->state) == 1 ? 0 : -1;
    case IOTKUBE_DIGEST_SHA512: return SHA512_Init((SHA512_CTX *)digest->state) == 1 ? 0 : -1;
    default: return -1;
    }
}

void iotkube_digest_update(iotkube_digest *digest, const void *bytes, size_t count) {
    switch (digest->algorithm) {
    case IOTKUBE_DIGEST_SHA1: SHA1_Update((SHA_CTX *)digest->state, bytes, count); break;
    case IOTKUBE_DIGEST_SHA256: SHA256_Update((SHA256_CTX *)digest->state, bytes, count); break;
    case IOTKUBE_DIGEST_SHA512: SHA512_Update((SHA512_CTX *)digest->state, bytes, count); break;
    }
}

size_t iotkube_digest_final(iotkube_digest *digest, uint8_t *out) {
    switch (digest->algorithm) {
    case IOTKUBE_DIGEST_SHA1: SHA1_Final(out, (SHA_CTX *)digest->state); return SHA_DIGEST_LENGTH;
    case IOTKUBE_DIGEST_SHA256: SHA256_Final(out, (SHA256_CTX *)digest->state); return SHA256_DIGEST_LENGTH;
    case IOTKUBE_DIGEST_SHA512: SHA512_Final(out, (SHA512_CTX *)digest->state); return SHA512_DIGEST_LENGTH;
    default: return 0;
    }
}

int iotkube_hmac_sha256(const void *key, size_t key_count, const void *message, size_t message_count, uint8_t *out) {
    unsigned int length = 0;
    return HMAC(EVP_sha256(), key, key_count, message, message_count, out, &length) != NULL && length == 32 ? 0 : -1;
}

int iotkube_equal_in_constant_time(const void *a, const void *b, size_t count) {
    return CRYPTO_memcmp(a, b, count) == 0;
}

int iotkube_random_bytes(void *out, size_t count) {
    return RAND_bytes(out, count) == 1 ? 0 : -1;
}

void iotkube_crypto_last_error(char *out, size_t capacity) {
    if (capacity == 0) return;
    out[0] = 0;
    uint32_t code = ERR_peek_last_error();
    if (code != 0) ERR_error_string_n(code, out, capacity);
    ERR_clear_error();
}

void iotkube_free_secret(void *bytes, size_t count) {
    if (bytes == NULL) return;
    OPENSSL_cleanse(bytes, count);
    free(bytes);
}

/// Copies a memory BIO's contents into a malloc'd, NUL-terminated buffer.
char *node_crypto_copy_out(BIO *bio, size_t *length) {
    const uint8_t *contents = NULL;
    size_t count = 0;
    if (!BIO_mem_contents(bio, &contents, &count)) return NULL;
    char *copy = malloc(count + 1);
    if (copy == NULL) return NULL;
    memcpy(copy, contents, count);
    copy[count] = 0;
    *length = count;
    return copy;
}

void *iotkube_key_generate(void) {
    ERR_clear_error();
    EC_KEY *ec = EC_KEY_new_by_curve_name(NID_X9_62_prime256v1);
    EVP_PKEY *key = EVP_PKEY_new();
    if (ec == NULL || key == NULL || !EC_KEY_generate_key(ec) || !EVP_PKEY_assign_EC_KEY(key, ec)) {
        EC_KEY_free(ec);
        EVP_PKEY_free(key);
        return NULL;
    }
    return key;  // owns ec now
}

void iotkube_key_free(void *key) { EVP_PKEY_free(key); }

char *iotkube_key_pem(void *key, size_t *length) {
    ERR_clear_error();
    BIO *bio = BIO_new(BIO_s_mem());
    char *result = NULL;
    if (bio != NULL && PEM_write_bio_PKCS8PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL)) result = node_crypto_copy_out(bio, length);
    // The memory BIO's buffer held the key too: wipe it before it goes back to the allocator.
    const uint8_t *contents = NULL;
    size_t count = 0;
    if (bio != NULL && BIO_mem_contents(bio, &contents, &count) && count > 0) OPENSSL_cleanse((void *)contents, count);
    BIO_free(bio);
    return result;
}

/// A DER encoding made by an i2d function, moved into a malloc'd buffer.
uint8_t *node_crypto_der_out(uint8_t *der, int count, size_t *length) {
    if (count <= 0 || der == NULL) {
        OPENSSL_free(der);
        return NULL;
    }
    uint8_t *copy = malloc((size_t)count);
    if (copy != NULL) {
        memcpy(copy, der, (size_t)count);
        *length = (size_t)count;
    }
    OPENSSL_free(der);
    return copy;
}

uint8_t *iotkube_key_public_der(void *key, size_t *length) {
    ERR_clear_error();
    uint8_t *der = NULL;
    int count = i2d_PUBKEY(key, &der);
    return node_crypto_der_out(der, count, length);
}

/// The subject of `names` (O entries, then CN, as UTF8String taken byte for byte: no length table,
/// so names as long as Kubernetes allows fit), or NULL.
static X509_NAME *make_name(const iotkube_certificate_names *names) {
    X509_NAME *name = X509_NAME_new();
    if (name == NULL) return NULL;
    for (size_t i = 0; i < names->organization_count; i++) {
        if (!X509_NAME_add_entry_by_NID(name, NID_organizationName, V_ASN1_UTF8STRING,
                                        (const uint8_t *)names->organizations[i], -1, -1, 0)) goto fail;
    }
    if (names->common_name != NULL &&
        !X509_NAME_add_entry_by_NID(name, NID_commonName, V_ASN1_UTF8STRING, (const uint8_t *)names->common_name, -1, -1, 0)) goto fail;
    return name;
fail:
    X509_NAME_free(name);
    return NULL;
}

/// Adds one subjectAltName entry of `type` holding `bytes`.
static int push_alt_name(GENERAL_NAMES *all, int type, const void *bytes, size_t count) {
    GENERAL_NAME *entry = GENERAL_NAME_new();
    ASN1_STRING *value = type == GEN_DNS ? ASN1_IA5STRING_new() : ASN1_OCTET_STRING_new();
    if (entry == NULL || value == NULL || !ASN1_STRING_set(value, bytes, (ossl_ssize_t)count)) {
        GENERAL_NAME_free(entry);
        ASN1_STRING_free(value);
        return 0;
    }
    GENERAL_NAME_set0_value(entry, type, value);
    if (!sk_GENERAL_NAME_push(all, entry)) {
        GENERAL_NAME_free(entry);
        return 0;
    }
    return 1;
}

/// The subjectAltName extension for `names`; NULL when there is none to make or on failure
/// (`failed` tells them apart).
static X509_EXTENSION *make_alt_names(const iotkube_certificate_names *names, int *failed) {
    *failed = 0;
    if (names->dns_name_count == 0 && names->ipv4_address_count == 0) return NULL;
    GENERAL_NAMES *all = GENERAL_NAMES_new();
    X509_EXTENSION *extension = NULL;
    if (all == NULL) goto done;
    for (size_t i = 0; i < names->dns_name_count; i++) {
        if (!push_alt_name(all, GEN_DNS, names->dns_names[i], strlen(names->dns_names[i]))) goto done;
    }
    for (size_t i = 0; i < names->ipv4_address_count; i++) {
        if (!push_alt_name(all, GEN_IPADD, names->ipv4_addresses + 4 * i, 4)) goto done;
    }
    extension = X509V3_EXT_i2d(NID_subject_alt_name, 0, all);
done:
    GENERAL_NAMES_free(all);
    if (extension == NULL) *failed = 1;
    return extension;
}

char *iotkube_request_pem(void *key, const iotkube_certificate_names *names, size_t *length) {
    ERR_clear_error();
    X509_REQ *request = X509_REQ_new();
    X509_NAME *subject = make_name(names);
    STACK_OF(X509_EXTENSION) *extensions = NULL;
    BIO *bio = NULL;
    char *result = NULL;
    int failed = 0;
    X509_EXTENSION *alt_names = make_alt_names(names, &failed);
    if (request == NULL || subject == NULL || failed) goto done;
    if (!X509_REQ_set_version(request, X509_REQ_VERSION_1) || !X509_REQ_set_subject_name(request, subject) ||
        !X509_REQ_set_pubkey(request, key)) goto done;
    if (alt_names != NULL) {
        extensions = sk_X509_EXTENSION_new_null();
        if (extensions == NULL || !sk_X509_EXTENSION_push(extensions, alt_names)) goto done;
        alt_names = NULL;  // the stack owns it
        if (!X509_REQ_add_extensions(request, extensions)) goto done;
    }
    if (!X509_REQ_sign(request, key, EVP_sha256())) goto done;
    bio = BIO_new(BIO_s_mem());
    if (bio != NULL && PEM_write_bio_X509_REQ(bio, request)) result = node_crypto_copy_out(bio, length);
done:
    BIO_free(bio);
    sk_X509_EXTENSION_pop_free(extensions, X509_EXTENSION_free);
    X509_EXTENSION_free(alt_names);
    X509_NAME_free(subject);
    X509_REQ_free(request);
    return result;
}

/// Adds an extension given in OpenSSL's configuration text form (fixed strings only).
static int add_text_extension(X509 *certificate, int nid, const char *value) {
    X509_EXTENSION *extension = X509V3_EXT_nconf_nid(NULL, NULL, nid, value);
    int added = extension != NULL && X509_add_ext(certificate, extension, -1);
    X509_EXTENSION_free(extension);
    return added;
}

char *iotkube_self_signed_pem(void *key, const iotkube_certificate_names *names, int64_t not_before,
                              int64_t not_after, size_t *length) {
    ERR_clear_error();
    X509 *certificate = X509_new();
    X509_NAME *subject = make_name(names);
    ASN1_INTEGER *serial = ASN1_INTEGER_new();
    BIO *bio = NULL;
    char *result = NULL;
    int failed = 0;
    X509_EXTENSION *alt_names = make_alt_names(names, &failed);
    uint64_t serial_value = 0;
    if (certificate == NULL || subject == NULL || serial == NULL || failed) goto done;
    // A positive 63-bit random serial (RFC 5280: positive, at most 20 octets).
    if (!RAND_bytes((uint8_t *)&serial_value, sizeof serial_value)) goto done;
    serial_value = (serial_value >> 1) | 1;
    if (!ASN1_INTEGER_set_uint64(serial, serial_value) || !X509_set_serialNumber(certificate, serial)) goto done;
    if (!X509_set_version(certificate, X509_VERSION_3) || !X509_set_subject_name(certificate, subject) ||
        !X509_set_issuer_name(certificate, subject) || !X509_set_pubkey(certificate, key)) goto done;
    if (ASN1_TIME_set_posix(X509_getm_notBefore(certificate), not_before) == NULL ||
        ASN1_TIME_set_posix(X509_getm_notAfter(certificate), not_after) == NULL) goto done;
    if (!add_text_extension(certificate, NID_key_usage, "critical,digitalSignature,keyEncipherment") ||
        !add_text_extension(certificate, NID_ext_key_usage, "serverAuth")) goto done;
    if (alt_names != NULL && !X509_add_ext(certificate, alt_names, -1)) goto done;
    if (!X509_sign(certificate, key, EVP_sha256())) goto done;
    bio = BIO_new(BIO_s_mem());
    if (bio != NULL && PEM_write_bio_X509(bio, certificate)) result = node_crypto_copy_out(bio, length);
done:
    BIO_free(bio);
    X509_EXTENSION_free(alt_names);
    ASN1_INTEGER_free(serial);
    X509_NAME_free(subject);
    X509_free(certificate);
    return result;
}
