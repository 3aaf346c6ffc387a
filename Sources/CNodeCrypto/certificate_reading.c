// See include/node_crypto.h: reading certificates (one, or each of a PEM bundle), their
// validity, key, subject and subjectAltName, and whether one issued another.
#include "node_crypto.h"
#include "node_crypto_buffers.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

/// A certificate and its decoded subjectAltName extension.
typedef struct {
    X509 *x509;
    GENERAL_NAMES *alt_names;
    int alt_names_malformed;
} parsed_certificate;

static void *wrap(X509 *x509);

void *iotkube_certificate_parse(const uint8_t *bytes, size_t count, int pem) {
    ERR_clear_error();
    X509 *x509 = NULL;
    if (pem) {
        BIO *bio = BIO_new_mem_buf(bytes, (ossl_ssize_t)count);
        if (bio != NULL) x509 = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        BIO_free(bio);
    } else if (count <= LONG_MAX) {
        const uint8_t *cursor = bytes;
        x509 = d2i_X509(NULL, &cursor, (long)count);
        if (x509 != NULL && cursor != bytes + count) {  // trailing bytes: not one certificate
            X509_free(x509);
            x509 = NULL;
        }
    }
    return wrap(x509);
}

void *iotkube_certificate_parse_next_pem(const uint8_t *bytes, size_t count, size_t *consumed, int *failed) {
    ERR_clear_error();
    *failed = 0;
    *consumed = 0;
    BIO *bio = BIO_new_mem_buf(bytes, (ossl_ssize_t)count);
    if (bio == NULL) {
        *failed = 1;
        return NULL;
    }
    X509 *x509 = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    *consumed = count - BIO_pending(bio);
    BIO_free(bio);
    if (x509 == NULL) {
        uint32_t error = ERR_peek_last_error();
        // Running out of PEM blocks is the end; anything else is a malformed certificate.
        *failed = !(ERR_GET_LIB(error) == ERR_LIB_PEM && ERR_GET_REASON(error) == PEM_R_NO_START_LINE);
        if (!*failed) ERR_clear_error();
        return NULL;
    }
    void *parsed = wrap(x509);
    if (parsed == NULL) *failed = 1;
    return parsed;
}

char *iotkube_certificate_pem(void *certificate, size_t *length) {
    parsed_certificate *parsed = certificate;
    ERR_clear_error();
    BIO *bio = BIO_new(BIO_s_mem());
    char *result = NULL;
    if (bio != NULL && PEM_write_bio_X509(bio, parsed->x509)) result = node_crypto_copy_out(bio, length);
    BIO_free(bio);
    return result;
}

int iotkube_certificate_issued_by(void *certificate, void *issuer) {
    parsed_certificate *subject = certificate, *candidate = issuer;
    ERR_clear_error();
    EVP_PKEY *key = X509_get0_pubkey(candidate->x509);
    int issued = key != NULL && X509_check_issued(candidate->x509, subject->x509) == X509_V_OK &&
                 X509_verify(subject->x509, key) == 1;
    ERR_clear_error();
    return issued;
}

/// Takes `x509` (freed on failure) with its decoded subjectAltName extension.
static void *wrap(X509 *x509) {
    if (x509 == NULL) return NULL;
    parsed_certificate *parsed = calloc(1, sizeof *parsed);
    if (parsed == NULL) {
        X509_free(x509);
        return NULL;
    }
    parsed->x509 = x509;
    int critical = 0;
    parsed->alt_names = X509_get_ext_d2i(x509, NID_subject_alt_name, &critical, NULL);
    // -1: absent; -2: present more than once; otherwise present and failed to decode when NULL.
    parsed->alt_names_malformed = parsed->alt_names == NULL && critical != -1;
    ERR_clear_error();
    return parsed;
}

void iotkube_certificate_free(void *certificate) {
    parsed_certificate *parsed = certificate;
    if (parsed == NULL) return;
    GENERAL_NAMES_free(parsed->alt_names);
    X509_free(parsed->x509);
    free(parsed);
}

int iotkube_certificate_validity(void *certificate, int64_t *not_before, int64_t *not_after) {
    parsed_certificate *parsed = certificate;
    return ASN1_TIME_to_posix(X509_get0_notBefore(parsed->x509), not_before) &&
                   ASN1_TIME_to_posix(X509_get0_notAfter(parsed->x509), not_after)
               ? 0
               : -1;
}

uint8_t *iotkube_certificate_public_der(void *certificate, size_t *length) {
    parsed_certificate *parsed = certificate;
    uint8_t *der = NULL;
    int count = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(parsed->x509), &der);
    return node_crypto_der_out(der, count, length);
}

char *iotkube_certificate_subject(void *certificate, int kind, int *position, size_t *length, int *failed) {
    parsed_certificate *parsed = certificate;
    *failed = 0;
    X509_NAME *subject = X509_get_subject_name(parsed->x509);
    int nid = kind == IOTKUBE_SUBJECT_ORGANIZATION ? NID_organizationName : NID_commonName;
    if (*position < -1) return NULL;
    *position = X509_NAME_get_index_by_NID(subject, nid, *position);
    if (*position < 0) return NULL;
    X509_NAME_ENTRY *entry = X509_NAME_get_entry(subject, *position);
    if (entry == NULL) {
        *failed = 1;
        return NULL;
    }
    uint8_t *text = NULL;
    int count = ASN1_STRING_to_UTF8(&text, X509_NAME_ENTRY_get_data(entry));
    if (count < 0 || text == NULL || memchr(text, 0, (size_t)count) != NULL) {
        OPENSSL_free(text);
        *failed = 1;
        return NULL;
    }
    char *copy = malloc((size_t)count + 1);
    if (copy != NULL) {
        memcpy(copy, text, (size_t)count);
        copy[count] = 0;
        *length = (size_t)count;
    } else {
        *failed = 1;
    }
    OPENSSL_free(text);
    return copy;
}

int iotkube_certificate_alt_name_count(void *certificate) {
    parsed_certificate *parsed = certificate;
    if (parsed->alt_names_malformed) return -1;
    return parsed->alt_names == NULL ? 0 : (int)sk_GENERAL_NAME_num(parsed->alt_names);
}

uint8_t *iotkube_certificate_alt_name(void *certificate, int index, int *kind, size_t *length) {
    parsed_certificate *parsed = certificate;
    if (parsed->alt_names == NULL || index < 0 || (size_t)index >= sk_GENERAL_NAME_num(parsed->alt_names)) return NULL;
    const GENERAL_NAME *entry = sk_GENERAL_NAME_value(parsed->alt_names, (size_t)index);
    *kind = entry->type;
    const ASN1_STRING *value = NULL;
    if (entry->type == GEN_DNS) value = entry->d.dNSName;
    if (entry->type == GEN_IPADD) value = entry->d.iPAddress;
    if (value == NULL) return NULL;
    int count = ASN1_STRING_length(value);
    uint8_t *copy = malloc(count > 0 ? (size_t)count : 1);
    if (copy == NULL) return NULL;
    if (count > 0) memcpy(copy, ASN1_STRING_get0_data(value), (size_t)count);
    *length = count > 0 ? (size_t)count : 0;
    return copy;
}
