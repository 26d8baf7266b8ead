/* gzprintf/gzvprintf for libwdz.so: variadic functions cannot be defined in stable Rust.
 * Formats into a heap buffer sized by a first vsnprintf pass (zlib's own limit is its
 * buffer size; we refuse more than 1 MiB, as zlib refuses beyond its buffer) and writes
 * it with gzwrite (libwdz's, which forwards to zlib-rs). Returns what zlib returns: the
 * number of bytes written, 0 on error, or a negative zlib error code. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct gzFile_s *gzFile;
extern int gzwrite(gzFile file, const void *buf, unsigned len);

#define WDZ_PRINTF_MAX (1u << 20)

int gzvprintf(gzFile file, const char *format, va_list va)
{
    va_list copy;
    int n, r;
    char *buf;

    if (file == NULL || format == NULL)
        return -2; /* Z_STREAM_ERROR */
    va_copy(copy, va);
    n = vsnprintf(NULL, 0, format, copy);
    va_end(copy);
    if (n < 0 || (unsigned)n >= WDZ_PRINTF_MAX)
        return 0;
    if (n == 0)
        return 0;
    buf = malloc((size_t)n + 1);
    if (buf == NULL)
        return -4; /* Z_MEM_ERROR */
    vsnprintf(buf, (size_t)n + 1, format, va);
    r = gzwrite(file, buf, (unsigned)n);
    free(buf);
    return r;
}

int gzprintf(gzFile file, const char *format, ...)
{
    va_list va;
    int r;

    va_start(va, format);
    r = gzvprintf(file, format, va);
    va_end(va);
    return r;
}
