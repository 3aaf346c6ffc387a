#ifndef IOTKUBE_DBUS_MARSHAL_H
#define IOTKUBE_DBUS_MARSHAL_H
#include "internal.h"
#include <stdint.h>
#include <string.h>

/* D-Bus wire format for the calls systemd_bus.c makes: values appended in the machine's byte
 * order, each aligned to its size from the start of the header or body (both start 8-aligned). */

/* Heap-allocated (callers run on threads with small stacks; no statics: calls may run at once). */
struct builder {
    unsigned char data[16384];
    size_t length;
    int overflow;
};

static inline void put(struct builder *b, const void *bytes, size_t count) {
    if (b->overflow || count > sizeof b->data - b->length) { b->overflow = 1; return; }
    memcpy(b->data + b->length, bytes, count);
    b->length += count;
}

static inline void pad(struct builder *b, size_t alignment) {
    static const unsigned char zeros[8];
    size_t extra = (alignment - b->length % alignment) % alignment;
    put(b, zeros, extra);
}

static inline void put_byte(struct builder *b, unsigned char value) { put(b, &value, 1); }
static inline void put_u32(struct builder *b, uint32_t value) { pad(b, 4); put(b, &value, 4); }
static inline void put_u64(struct builder *b, uint64_t value) { pad(b, 8); put(b, &value, 8); }

static inline void put_string(struct builder *b, const char *text) {
    size_t length = strlen(text);
    if (length > 4096) { b->overflow = 1; return; }
    put_u32(b, (uint32_t)length);
    put(b, text, length + 1);
}

static inline void put_signature(struct builder *b, const char *signature) {
    size_t length = strlen(signature);
    put_byte(b, (unsigned char)length);
    put(b, signature, length + 1);
}

/* An array: its length is patched in by array_end (padding before the first element is not counted). */
static inline size_t array_begin(struct builder *b, size_t element_alignment, size_t *elements_start) {
    put_u32(b, 0);
    size_t length_at = b->length - 4;
    pad(b, element_alignment);
    *elements_start = b->length;
    return length_at;
}

static inline void array_end(struct builder *b, size_t length_at, size_t elements_start) {
    if (b->overflow) return;
    uint32_t length = (uint32_t)(b->length - elements_start);
    memcpy(b->data + length_at, &length, 4);
}

static inline void put_properties(struct builder *b, const struct iotkube_unit_property *properties, int count) {
    size_t start, at = array_begin(b, 8, &start);
    for (int i = 0; i < count; i++) {
        const struct iotkube_unit_property *p = &properties[i];
        pad(b, 8);
        put_string(b, p->name);
        switch (p->type) {
        case 's': put_signature(b, "s"); put_string(b, p->text ? p->text : ""); break;
        case 'b': put_signature(b, "b"); put_u32(b, p->number ? 1 : 0); break;
        case 't': put_signature(b, "t"); put_u64(b, (uint64_t)p->number); break;
        case 'u': put_signature(b, "u"); put_u32(b, (uint32_t)p->number); break;
        case 'p': {
            put_signature(b, "au");
            size_t pids_start, pids_at = array_begin(b, 4, &pids_start);
            put_u32(b, (uint32_t)p->number);
            array_end(b, pids_at, pids_start);
            break;
        }
        default: b->overflow = 1;
        }
    }
    array_end(b, at, start);
}

static inline void header_field(struct builder *h, unsigned char code, const char *signature, const char *value) {
    pad(h, 8);
    put_byte(h, code);
    put_signature(h, signature);
    if (signature[0] == 'g') put_signature(h, value); else put_string(h, value);
}

#endif
