// Inflating gzip files for the data readers; see lapwing_gz.h.
#include "include/lapwing_gz.h"
#include "include/lapwing_proc.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

int lw_gz_is_gzip(const void *src, size_t len) {
    const unsigned char *b = src;
    return len >= 2 && b[0] == 0x1f && b[1] == 0x8b;
}

void lw_gz_free(void *p) { free(p); }

// Output is produced in slices of this size (zlib counts in uInt); a stop check between them.
static const size_t lw_gz_chunk = (size_t)16 << 20;

static void lw_gz_set_msg(lw_gz_result *out, const char *msg) {
    if (msg == NULL) msg = "";
    strncpy(out->msg, msg, sizeof out->msg - 1);
    out->msg[sizeof out->msg - 1] = 0;
}

int lw_gz_inflate(const void *src, size_t srclen, size_t max_out, lw_gz_result *out) {
    const unsigned char *in = src;
    memset(out, 0, sizeof *out);

    // ISIZE (the last 4 bytes) is the inflated size mod 2^32 of the last member: a good first guess.
    size_t cap = srclen * 4 + 4096;
    if (srclen >= 18) {
        const unsigned char *t = in + srclen - 4;
        size_t isize = (size_t)t[0] | (size_t)t[1] << 8 | (size_t)t[2] << 16 | (size_t)t[3] << 24;
        if (isize >= srclen / 2 && isize / 1100 <= srclen) cap = isize + 64;
    }
    // One byte beyond the limit tells an output of exactly max_out bytes from a longer one.
    size_t most = max_out == SIZE_MAX ? max_out : max_out + 1;
    if (cap > most) cap = most;
    if (cap == 0) cap = 1;
    unsigned char *buf = malloc(cap);
    if (buf == NULL) return -ENOMEM;

    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, 15 + 16) != Z_OK) {
        free(buf);
        return -ENOMEM;
    }
    size_t fed = 0, len = 0; // input bytes handed to zlib, output bytes produced
    int result = 0;
    for (;;) {
        if (zs.avail_in == 0 && fed < srclen) {
            size_t n = srclen - fed < lw_gz_chunk ? srclen - fed : lw_gz_chunk;
            zs.next_in = (unsigned char *)(in + fed);
            zs.avail_in = (uInt)n;
            fed += n;
        }
        if (lw_stop_signal() != 0) {
            out->in_offset = fed - zs.avail_in;
            result = LW_GZ_STOPPED;
            break;
        }
        if (len > max_out) {
            result = LW_GZ_TOO_LARGE;
            break;
        }
        if (len == cap) {
            size_t ncap = cap > most / 2 ? most : cap * 2;
            unsigned char *nbuf = realloc(buf, ncap);
            if (nbuf == NULL) {
                result = -ENOMEM;
                break;
            }
            buf = nbuf;
            cap = ncap;
        }
        size_t room = cap - len < lw_gz_chunk ? cap - len : lw_gz_chunk;
        zs.next_out = buf + len;
        zs.avail_out = (uInt)room;
        int rc = inflate(&zs, Z_NO_FLUSH);
        len += room - zs.avail_out;
        size_t consumed = fed - zs.avail_in;
        if (rc == Z_STREAM_END) {
            if (consumed == srclen) break;
            if (lw_gz_is_gzip(in + consumed, srclen - consumed)) { // another member follows
                inflateReset(&zs);
                continue;
            }
            size_t i = consumed;
            while (i < srclen && in[i] == 0) i++;
            if (i == srclen) break; // zero padding (tape blocks) is allowed, as gzip does
            out->in_offset = consumed;
            lw_gz_set_msg(out, "trailing garbage after the gzip data");
            result = LW_GZ_CORRUPT;
            break;
        }
        if (rc == Z_OK) continue;
        if (rc == Z_BUF_ERROR) {
            if (zs.avail_out == 0 || zs.avail_in > 0 || fed < srclen) continue;
            out->in_offset = srclen;
            result = LW_GZ_TRUNCATED;
            break;
        }
        if (rc == Z_MEM_ERROR) {
            result = -ENOMEM;
            break;
        }
        out->in_offset = consumed;
        lw_gz_set_msg(out, zs.msg);
        result = LW_GZ_CORRUPT;
        break;
    }
    inflateEnd(&zs);
    if (result == 0 && len > max_out) result = LW_GZ_TOO_LARGE;
    out->data = buf;
    out->len = len;
    return result;
}
