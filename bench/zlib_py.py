"""Python's zlib.compress/decompress of a corpus, timed (bench/zlib.sh runs it with and
without LD_PRELOAD=libwdz.so). Prints one line: label, MB/s compress, size, MB/s
decompress, and checks the round trip."""
import sys, time, zlib

label, path = sys.argv[1], sys.argv[2]
data = open(path, "rb").read()
t = time.perf_counter(); z = zlib.compress(data, 6); tc = time.perf_counter() - t
t = time.perf_counter(); back = zlib.decompress(z); td = time.perf_counter() - t
assert back == data
mb = len(data) / 1e6
print("%-28s %9.1f %12d %7.3f %9.1f" % (label, mb / tc, len(z), len(z) / len(data), mb / td))
