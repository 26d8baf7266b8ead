/* One wd_inflate stream over a whole highly expanding gzip file given at once (avail_in =
 * the file), with a 64 KiB output buffer: prints the output length and whether it was
 * all zeros. Usage: zip_bounded FILE */
#include <stdio.h>
#include <stdlib.h>

#include "wd.h"

int main(int argc, char **argv)
{
    if (argc != 2) return 2;
    FILE *f = fopen(argv[1], "rb");
    if (!f) return 2;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *in = malloc((size_t)n);
    if (!in || fread(in, 1, (size_t)n, f) != (size_t)n) return 2;
    fclose(f);
    struct wd_stream s = {0};
    int rc = wd_inflate_init(&s, WD_FORMAT_GZIP);
    if (rc) { printf("init %d\n", rc); return 1; }
    s.next_in = in;
    s.avail_in = (size_t)n;
    static unsigned char out[64 << 10];
    unsigned long long total = 0;
    int zeros = 1;
    do {
        s.next_out = out;
        s.avail_out = sizeof out;
        rc = wd_inflate(&s, WD_FINISH);
        size_t got = sizeof out - s.avail_out;
        for (size_t i = 0; i < got; i++) zeros &= out[i] == 0;
        total += got;
    } while (rc == WD_OK);
    printf("rc %d total %llu zeros %d offloaded %d\n", rc, total, zeros,
           wd_stream_offloaded(&s));
    wd_inflate_end(&s);
    free(in);
    return rc == WD_STREAM_END ? 0 : 1;
}
