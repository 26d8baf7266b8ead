/* A program linked against the system libz.so.1 with versioned references
 * (crc32_z@ZLIB_1.2.9, crc32_combine_gen@ZLIB_1.2.12) and base ones: run by
 * tests/dropin.rs with libwdz.so as a drop-in libz.so.1 and under LD_PRELOAD.
 * Prints the library's version, two checksums and a round trip's result. */
#include <zlib.h>
#include <stdio.h>
#include <string.h>
int main(void) {
  const char *s = "hello hello hello hello";
  unsigned char z[128], back[128]; uLongf zl = sizeof z, bl = sizeof back;
  if (compress2(z, &zl, (const unsigned char*)s, strlen(s), 6) != Z_OK) return 1;
  if (uncompress(back, &bl, z, zl) != Z_OK || bl != strlen(s) || memcmp(back, s, bl)) return 2;
  unsigned long c = crc32_z(0, (const unsigned char*)s, strlen(s));
  unsigned long g = crc32_combine_gen(5);
  printf("%s %lx %lx\n", zlibVersion(), c, g);
  return 0;
}
