#include "lapwing_gz.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

int lw_read_file(const char *path, uint8_t **out, size_t *length, int *is_gzip, char *err, size_t errlen) {
    *out = NULL;
    *length = 0;
    err[0] = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    unsigned char magic[2] = {0, 0};
    ssize_t m = pread(fd, magic, 2, 0);
    *is_gzip = m == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
    gzFile gz = gzdopen(fd, "rb");
    if (!gz) {
        int e = errno ? errno : ENOMEM;
        close(fd);
        return -e;
    }
    gzbuffer(gz, 1 << 17);
    size_t cap = 1 << 20, len = 0;
    uint8_t *buf = malloc(cap);
    if (!buf) {
        gzclose_r(gz);
        return -ENOMEM;
    }
    for (;;) {
        if (cap - len < (1 << 16)) {
            size_t ncap = cap * 2;
            uint8_t *nbuf = realloc(buf, ncap);
            if (!nbuf) {
                free(buf);
                gzclose_r(gz);
                return -ENOMEM;
            }
            buf = nbuf;
            cap = ncap;
        }
        size_t want = cap - len > (1u << 30) ? (1u << 30) : cap - len;
        int n = gzread(gz, buf + len, (unsigned)want);
        if (n < 0) {
            int zerr;
            const char *msg = gzerror(gz, &zerr);
            int e = zerr == Z_ERRNO ? errno : EILSEQ;
            snprintf(err, errlen, "%s", zerr == Z_ERRNO ? strerror(e) : msg);
            free(buf);
            gzclose_r(gz);
            return -e;
        }
        if (n == 0) break;
        len += (size_t)n;
    }
    // gzread returns 0 both at a clean end and when the stream stops early; gzerror tells.
    int zerr = Z_OK;
    const char *msg = gzerror(gz, &zerr);
    if (zerr != Z_OK && zerr != Z_STREAM_END) {
        snprintf(err, errlen, "%s", msg);
        free(buf);
        gzclose_r(gz);
        return -EILSEQ;
    }
    gzclose_r(gz);
    *out = buf;
    *length = len;
    return 0;
}
