#include "ccompression.h"
#include <stdlib.h>
#include <zlib.h>

struct iotkube_header_zlib {
    int compress;
    z_stream z;
    const unsigned char *dictionary;
    size_t dictionary_length;
};

iotkube_header_zlib *iotkube_header_zlib_new(int compress, const unsigned char *dictionary, size_t dictionary_length) {
    iotkube_header_zlib *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    h->compress = compress;
    h->dictionary = dictionary;
    h->dictionary_length = dictionary_length;
    if (compress) {
        /* A small window and memory level: the agent only compresses tiny replies, and a
           default deflate state (~256 KiB) per session would be memory for the asking. */
        if (deflateInit2(&h->z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 9, 1, Z_DEFAULT_STRATEGY) != Z_OK) { free(h); return NULL; }
        if (deflateSetDictionary(&h->z, dictionary, (uInt)dictionary_length) != Z_OK) { deflateEnd(&h->z); free(h); return NULL; }
    } else if (inflateInit(&h->z) != Z_OK) {
        free(h);
        return NULL;
    }
    return h;
}

void iotkube_header_zlib_free(iotkube_header_zlib *h) {
    if (!h) return;
    if (h->compress) deflateEnd(&h->z); else inflateEnd(&h->z);
    free(h);
}

long iotkube_header_zlib_run(iotkube_header_zlib *h, const unsigned char *input, size_t input_length,
                             unsigned char *output, size_t output_capacity) {
    h->z.next_in = (Bytef *)input;
    h->z.avail_in = (uInt)input_length;
    h->z.next_out = output;
    h->z.avail_out = (uInt)output_capacity;
    for (;;) {
        int status = h->compress ? deflate(&h->z, Z_SYNC_FLUSH) : inflate(&h->z, Z_SYNC_FLUSH);
        if (!h->compress && status == Z_NEED_DICT) {
            /* The peer's dictionary must be ours (zlib checks its checksum). */
            if (inflateSetDictionary(&h->z, h->dictionary, (uInt)h->dictionary_length) != Z_OK) return -1;
            continue;
        }
        if (status == Z_STREAM_END) return -1; /* a session's header stream never ends */
        if (status != Z_OK && status != Z_BUF_ERROR) return -1;
        if (h->z.avail_out == 0) return -2;    /* more than the caller allows (or exactly full: refused alike) */
        if (h->z.avail_in == 0) return (long)(output_capacity - h->z.avail_out);
        if (status == Z_BUF_ERROR) return -1;  /* no progress with input left */
    }
}
