// Reading whole input files, gzipped or plain.
//
// Why C: zlib's gzFile API is the simplest complete way to read both forms (it passes plain
// files through) and to tell a clean end from a truncated or corrupt stream.
#pragma once
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Reads all of `path` (decompressing gzip) into a malloc'ed buffer (*out, *length); the
/// caller frees it. Returns 0, -errno when the file cannot be opened or read, or -EILSEQ for a
/// corrupt or truncated gzip stream, with zlib's words in `err`. *is_gzip says which it was.
int lw_read_file(const char *path, uint8_t **out, size_t *length, int *is_gzip, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
