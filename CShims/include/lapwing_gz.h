#pragma once
// zlib shim for the data readers. It exists because zlib's setup (inflateInit2 is a macro),
// its 32-bit buffer sizes and the multi-member gzip loop are clumsy from Swift; Swift hands a
// whole compressed file in and gets the whole inflated file back.
// Functions return 0 (or a count) on success, -errno or one of the LW_GZ_* codes on failure.
#include <stddef.h>

/// The compressed data ended before the gzip stream did (a truncated .gz file).
#define LW_GZ_TRUNCATED (-10001)
/// The compressed data is corrupt (bad header, bad deflate data, CRC mismatch, trailing garbage).
#define LW_GZ_CORRUPT (-10002)
/// The inflated data would exceed the caller's limit (`out->len` bytes were inflated).
#define LW_GZ_TOO_LARGE (-10003)
/// A stop signal arrived (lw_stop_signal() != 0, see lapwing_proc.h) while inflating.
#define LW_GZ_STOPPED (-10004)

typedef struct lw_gz_result {
    /// The inflated bytes (malloc'd, release with lw_gz_free), also set when inflate failed part way.
    unsigned char *data;
    /// Number of inflated bytes in `data`.
    size_t len;
    /// Offset in the compressed input where inflating stopped (the failure point on error).
    size_t in_offset;
    /// zlib's message on LW_GZ_CORRUPT (may be empty).
    char msg[96];
} lw_gz_result;

/// 1 if `src` starts with the gzip magic bytes 1f 8b, else 0.
int lw_gz_is_gzip(const void *src, size_t len);

/// Inflates the whole gzip file `src` (one or more members; trailing zero padding is allowed)
/// into at most `max_out` bytes (LW_GZ_TOO_LARGE beyond: a small file can inflate to anything).
/// Between slices of 16 MiB it checks for a stop signal (LW_GZ_STOPPED), so a job host asked to
/// stop does not finish a long inflate first.
/// On failure `out->data` may hold what was inflated so far (free it as well).
/// The corresponding zlib calls are `inflateInit2(15 + 16)` and `inflate`.
int lw_gz_inflate(const void *src, size_t srclen, size_t max_out, lw_gz_result *out);

/// Frees `lw_gz_result.data` (free(3)).
void lw_gz_free(void *p);
