#include "ccompression.h"
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

struct iotkube_decompressor {
    int kind;
    z_stream z;
    ZSTD_DStream *zstd;
    int at_boundary;      /* 1 before the first byte and after each complete member/frame */
    const char *error;
};

iotkube_decompressor *iotkube_decompressor_new(int kind) {
    iotkube_decompressor *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    d->kind = kind;
    d->at_boundary = 1;
    if (kind == IOTKUBE_GZIP) {
        if (inflateInit2(&d->z, 16 + MAX_WBITS) != Z_OK) { free(d); return NULL; }
    } else if (kind == IOTKUBE_ZSTD) {
        d->zstd = ZSTD_createDStream();
        if (!d->zstd) { free(d); return NULL; }
        ZSTD_initDStream(d->zstd);
    } else {
        free(d);
        return NULL;
    }
    return d;
}

void iotkube_decompressor_free(iotkube_decompressor *d) {
    if (!d) return;
    if (d->kind == IOTKUBE_GZIP) inflateEnd(&d->z);
    if (d->zstd) ZSTD_freeDStream(d->zstd);
    free(d);
}

const char *iotkube_decompressor_error(const iotkube_decompressor *d) {
    return d->error ? d->error : "unknown error";
}

static int run_gzip(iotkube_decompressor *d, const unsigned char *in, size_t in_len, size_t *consumed,
                    unsigned char *out, size_t out_cap, size_t *produced, int *at_boundary) {
    /* zlib's counters are 32-bit; callers pass modest buffers but clamp anyway. */
    if (in_len > 0x40000000u) in_len = 0x40000000u;
    if (out_cap > 0x40000000u) out_cap = 0x40000000u;
    d->z.next_in = (Bytef *)in;
    d->z.avail_in = (uInt)in_len;
    d->z.next_out = out;
    d->z.avail_out = (uInt)out_cap;
    while (d->z.avail_out > 0) {
        if (d->at_boundary && d->z.avail_in == 0) break;   /* nothing pending between members */
        uInt before_in = d->z.avail_in, before_out = d->z.avail_out;
        d->at_boundary = 0;
        int rc = inflate(&d->z, Z_NO_FLUSH);
        if (rc == Z_STREAM_END) {
            d->at_boundary = 1;
            /* Another gzip member may follow (pigz, concatenated layers). */
            if (inflateReset(&d->z) != Z_OK) { d->error = "gzip: reset failed"; return IOTKUBE_DECOMPRESS_ERROR; }
            continue;
        }
        if (rc == Z_BUF_ERROR) break;   /* no progress possible: needs input or output room */
        if (rc == Z_OK && before_in == d->z.avail_in && before_out == d->z.avail_out) break;
        if (rc != Z_OK) {
            d->error = d->z.msg ? d->z.msg : (rc == Z_MEM_ERROR ? "gzip: out of memory" : "gzip: corrupt data");
            return IOTKUBE_DECOMPRESS_ERROR;
        }
    }
    *consumed = in_len - d->z.avail_in;
    *produced = out_cap - d->z.avail_out;
    *at_boundary = d->at_boundary;
    return IOTKUBE_DECOMPRESS_OK;
}

static int run_zstd(iotkube_decompressor *d, const unsigned char *in, size_t in_len, size_t *consumed,
                    unsigned char *out, size_t out_cap, size_t *produced, int *at_boundary) {
    ZSTD_inBuffer input = { in, in_len, 0 };
    ZSTD_outBuffer output = { out, out_cap, 0 };
    while (output.pos < output.size) {
        if (d->at_boundary && input.pos == input.size) break;   /* nothing pending between frames */
        size_t before_in = input.pos, before_out = output.pos;
        size_t rc = ZSTD_decompressStream(d->zstd, &output, &input);
        if (ZSTD_isError(rc)) { d->error = ZSTD_getErrorName(rc); return IOTKUBE_DECOMPRESS_ERROR; }
        d->at_boundary = rc == 0;
        if (before_in == input.pos && before_out == output.pos) break;
    }
    *consumed = input.pos;
    *produced = output.pos;
    *at_boundary = d->at_boundary;
    return IOTKUBE_DECOMPRESS_OK;
}

int iotkube_decompressor_run(iotkube_decompressor *d, const unsigned char *input, size_t input_length,
                             size_t *consumed, unsigned char *output, size_t output_capacity,
                             size_t *produced, int *at_boundary) {
    *consumed = 0;
    *produced = 0;
    *at_boundary = d->at_boundary;
    if (d->kind == IOTKUBE_GZIP)
        return run_gzip(d, input, input_length, consumed, output, output_capacity, produced, at_boundary);
    return run_zstd(d, input, input_length, consumed, output, output_capacity, produced, at_boundary);
}
