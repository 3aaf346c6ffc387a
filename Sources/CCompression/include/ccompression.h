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

/// One direction of a SPDY session's header compression: zlib with a preset dictionary (the
/// caller keeps `dictionary` alive), one stream for the whole session. Opaque.
typedef struct iotkube_header_zlib iotkube_header_zlib;

/// `compress` 1 to compress, 0 to decompress. NULL when out of memory.
iotkube_header_zlib *iotkube_header_zlib_new(int compress, const unsigned char *dictionary, size_t dictionary_length);
void iotkube_header_zlib_free(iotkube_header_zlib *h);

/// Compresses (ending with a sync flush) or decompresses one header block into `output`:
/// the bytes written, -1 for a corrupt stream (or another dictionary), -2 when the result
/// would not fit in `output_capacity` (a decompression bomb is refused, not buffered).
long iotkube_header_zlib_run(iotkube_header_zlib *h, const unsigned char *input, size_t input_length,
                             unsigned char *output, size_t output_capacity);

#endif
