#ifndef IOTKUBE_CCOMPRESSION_H
#define IOTKUBE_CCOMPRESSION_H
#include <stddef.h>

/// A streaming decompressor for image layers: gzip (any number of members) or zstd
/// (any number of frames). Opaque; made by iotkube_decompressor_new.
typedef struct iotkube_decompressor iotkube_decompressor;

enum iotkube_compression { IOTKUBE_GZIP = 1, IOTKUBE_ZSTD = 2 };

/// Result codes of iotkube_decompressor_run.
enum iotkube_decompress_status {
    IOTKUBE_DECOMPRESS_OK = 0,        ///< progress made; call again with more input or output room
    IOTKUBE_DECOMPRESS_ERROR = -1,    ///< corrupt stream; iotkube_decompressor_error says why
};

/// NULL when out of memory or the kind is unknown.
iotkube_decompressor *iotkube_decompressor_new(int kind);
void iotkube_decompressor_free(iotkube_decompressor *d);

/// Decompresses from `input` into `output`. `*consumed` and `*produced` receive how many bytes
/// were used and written. `*at_boundary` is 1 when the stream ended cleanly at the end of a
/// gzip member or zstd frame (a truncated stream never reports 1 at end of input).
int iotkube_decompressor_run(iotkube_decompressor *d, const unsigned char *input, size_t input_length,
                             size_t *consumed, unsigned char *output, size_t output_capacity,
                             size_t *produced, int *at_boundary);

/// The library's message for the last error (static storage).
const char *iotkube_decompressor_error(const iotkube_decompressor *d);

#endif
