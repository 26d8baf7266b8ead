"""Python's zlib.compress/decompress of a corpus, timed (bench/zlib.sh runs it with and
without LD_PRELOAD=libwdz.so). Prints one line: label, MB/s compress, size, MB/s of the
first decompression in the process, and of the best of the next ROUNDS (default 2: a
long-running process's steady state, its threads, queues and buffers warm), and checks
every round trip."""
import os, sys, time, zlib

label, path = sys.argv[1], sys.argv[2]
rounds = int(os.environ.get("ROUNDS", "2"))
data = open(path, "rb").read()
t = time.perf_counter(); z = zlib.compress(data, 6); tc = time.perf_counter() - t
times = []
for _ in range(1 + rounds):
    t = time.perf_counter(); back = zlib.decompress(z); times.append(time.perf_counter() - t)
    assert back == data
    del back
mb = len(data) / 1e6
warm = min(times[1:]) if rounds else times[0]
print("%-28s %9.1f %12d %7.3f %9.1f %9.1f" % (label, mb / tc, len(z), len(z) / len(data), mb / times[0], mb / warm))
