/* libwd's streaming compression from C, checked against the system zlib both ways. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "wd.h"

static int failures, tests;
#define CHECK(c, ...)                                                  \
    do {                                                               \
        tests++;                                                       \
        if (!(c)) {                                                    \
            failures++;                                                \
            printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #c);        \
            printf(__VA_ARGS__);                                       \
            printf("\n");                                              \
        }                                                              \
    } while (0)

static unsigned char *make_text(size_t n)
{
    static const char *words[] = {"accelerator ", "queue ", "deflate ", "zlib ",
                                  "gzip ", "kunpeng\n", "0123 ", "stream "};
    unsigned char *p = malloc(n);
    unsigned long x = 88172645463325252UL;
    size_t i = 0;
    while (i < n) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        const char *w = words[x % 8];
        for (size_t k = 0; w[k] && i < n; k++) p[i++] = (unsigned char)w[k];
    }
    return p;
}

/* Runs a whole stream through wd with output room `room`, feeding `feed` bytes a call. */
static int wd_run(int inflate_dir, int format, const unsigned char *in, size_t n,
                  size_t feed, size_t room, unsigned char **out, size_t *outn)
{
    struct wd_stream s;
    memset(&s, 0, sizeof s);
    int rc = inflate_dir ? wd_inflate_init(&s, format) : wd_deflate_init(&s, format, 6);
    if (rc) return rc;
    size_t cap = 1 << 20, len = 0, pos = 0;
    unsigned char *buf = malloc(cap);
    unsigned char *tmp = malloc(room);
    for (;;) {
        if (s.avail_in == 0 && pos < n) {
            size_t k = n - pos < feed ? n - pos : feed;
            s.next_in = in + pos;
            s.avail_in = k;
            pos += k;
        }
        int flush = pos == n ? WD_FINISH : WD_NO_FLUSH;
        s.next_out = tmp;
        s.avail_out = room;
        rc = inflate_dir ? wd_inflate(&s, flush) : wd_deflate(&s, flush);
        size_t got = room - s.avail_out;
        if (len + got > cap) { cap = 2 * (len + got); buf = realloc(buf, cap); }
        memcpy(buf + len, tmp, got);
        len += got;
        if (rc < 0 || rc == WD_STREAM_END) break;
    }
    if (inflate_dir) wd_inflate_end(&s); else wd_deflate_end(&s);
    free(tmp);
    *out = buf;
    *outn = len;
    return rc == WD_STREAM_END ? 0 : rc;
}

static int zlib_inflate(int wbits, const unsigned char *in, size_t n, unsigned char *out,
                        size_t cap, size_t *outn)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, wbits) != Z_OK) return -1;
    z.next_in = (unsigned char *)in; z.avail_in = (uInt)n;
    z.next_out = out; z.avail_out = (uInt)cap;
    int rc = inflate(&z, Z_FINISH);
    *outn = z.total_out;
    inflateEnd(&z);
    return rc == Z_STREAM_END ? 0 : rc;
}

static size_t zlib_deflate(int wbits, const unsigned char *in, size_t n, unsigned char *out,
                           size_t cap)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    deflateInit2(&z, 6, Z_DEFLATED, wbits, 8, Z_DEFAULT_STRATEGY);
    z.next_in = (unsigned char *)in; z.avail_in = (uInt)n;
    z.next_out = out; z.avail_out = (uInt)cap;
    deflate(&z, Z_FINISH);
    size_t r = z.total_out;
    deflateEnd(&z);
    return r;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "?";
    size_t n = 3 << 20;
    unsigned char *text = make_text(n);
    unsigned char *back = malloc(n + 1);
    int formats[2] = {WD_FORMAT_ZLIB, WD_FORMAT_GZIP};
    int wbits[2] = {15, 31};
    for (int i = 0; i < 2; i++) {
        unsigned char *c; size_t cn = 0, bn = 0;
        /* wd compresses with a small output buffer, zlib decompresses. */
        int rc = wd_run(0, formats[i], text, n, 100000, 1000, &c, &cn);
        CHECK(rc == 0, "wd deflate format %d: %d", formats[i], rc);
        rc = zlib_inflate(wbits[i], c, cn, back, n + 1, &bn);
        CHECK(rc == 0 && bn == n && memcmp(back, text, n) == 0, "zlib reads wd's output: %d %zu", rc, bn);
        free(c);
        /* zlib compresses, wd decompresses with a 7-byte output buffer and 1 KiB feeds. */
        unsigned char *z = malloc(n);
        size_t zn = zlib_deflate(wbits[i], text, n, z, n);
        unsigned char *d; size_t dn = 0;
        rc = wd_run(1, formats[i], z, zn, 1024, 7, &d, &dn);
        CHECK(rc == 0 && dn == n && memcmp(d, text, n) == 0, "wd reads zlib's output: %d %zu", rc, dn);
        free(d);
        /* Truncated: -ENODATA; corrupt: -EBADMSG; garbage after: -EBADMSG. */
        rc = wd_run(1, formats[i], z, zn - 3, zn, 4096, &d, &dn);
        CHECK(rc == -ENODATA || rc == -EBADMSG, "truncated: %d", rc);
        free(d);
        z[zn - 2] ^= 0x55;
        rc = wd_run(1, formats[i], z, zn, zn, 1 << 20, &d, &dn);
        CHECK(rc == -EBADMSG, "corrupt trailer: %d", rc);
        free(d);
        free(z);
    }
    /* Bad arguments never crash. */
    struct wd_stream s;
    memset(&s, 0, sizeof s);
    CHECK(wd_deflate_init(NULL, WD_FORMAT_GZIP, 6) == -EINVAL, "NULL stream");
    CHECK(wd_deflate_init(&s, 9, 6) == -EINVAL, "bad format");
    CHECK(wd_deflate_init(&s, WD_FORMAT_GZIP, 12) == -EINVAL, "bad level");
    CHECK(wd_deflate(&s, WD_FINISH) == -EINVAL, "not initialised");
    CHECK(wd_inflate_init(&s, WD_FORMAT_GZIP) == 0, "init");
    CHECK(wd_deflate(&s, WD_FINISH) == -EINVAL, "deflate on an inflate stream");
    s.avail_in = 5; s.next_in = NULL;
    CHECK(wd_inflate(&s, WD_NO_FLUSH) == -EINVAL, "NULL input with length");
    s.avail_in = 0;
    CHECK(wd_inflate(&s, 3) == -EINVAL, "bad flush");
    int off = wd_stream_offloaded(&s);
    int device = strcmp(mode, "model") == 0 || strcmp(mode, "fake") == 0 ||
                 strcmp(mode, "vfio") == 0;
    CHECK(off == device, "offloaded %d in mode %s", off, mode);
    CHECK(wd_inflate_end(&s) == 0, "end");
    CHECK(wd_inflate_end(&s) == -EINVAL, "double end");
    free(text);
    free(back);
    printf("%s: %d tests, %d failures\n", mode, tests, failures);
    return failures != 0;
}
