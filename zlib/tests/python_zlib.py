"""Python's zlib and gzip modules against libwdz.so (driven by tests/python.rs).

gen DIR    (system zlib) writes inputs and the system's compressed versions of them
run DIR    (under LD_PRELOAD) compresses the inputs every way the modules offer, writes
           the results, and decompresses the system's files, comparing in process
check DIR  (system zlib) decompresses what `run` wrote and compares with the inputs
"""
import gzip, io, os, random, sys, zlib

def inputs():
    r = random.Random(5)
    words = [b"nginx ", b"gzip ", b"the ", b"engine ", b"zip\n", b"1234 ", b"deflate "]
    text = b"".join(r.choice(words) for _ in range(400_000))
    noise = bytes(r.getrandbits(8) for _ in range(300_000))
    return {"text": text, "mixed": text[:500_000] + noise + text[500_000:], "small": text[:3000], "empty": b""}

def path(d, *p):
    return os.path.join(d, *p)

def gen(d):
    for name, data in inputs().items():
        open(path(d, name + ".raw"), "wb").write(data)
        open(path(d, name + ".sys.z"), "wb").write(zlib.compress(data, 6))
        open(path(d, name + ".sys.gz"), "wb").write(gzip.compress(data, 6))
        c = zlib.compressobj(6, zlib.DEFLATED, -15)
        open(path(d, name + ".sys.raw15"), "wb").write(c.compress(data) + c.flush())

def run(d):
    r = random.Random(int(os.environ.get("SEED", "1")))
    for name, data in inputs().items():
        out = {}
        out["oneshot.z"] = zlib.compress(data)
        out["oneshot9.z"] = zlib.compress(data, 9)
        out["gz"] = gzip.compress(data)
        bio = io.BytesIO()
        with gzip.GzipFile(fileobj=bio, mode="wb", compresslevel=6) as f:
            pos = 0
            while pos < len(data):
                n = r.choice([1, 100, 5000, 70000, 300000])
                f.write(data[pos:pos + n])
                pos += n
                if r.random() < 0.1:
                    f.flush()
        out["gzipfile.gz"] = bio.getvalue()
        for wbits in (15, 31, -15):
            c = zlib.compressobj(6, zlib.DEFLATED, wbits)
            parts, pos = [], 0
            while pos < len(data):
                n = r.choice([7, 4096, 65536, 250000])
                parts.append(c.compress(data[pos:pos + n]))
                pos += n
                mode = r.choice([None, None, zlib.Z_SYNC_FLUSH, zlib.Z_FULL_FLUSH])
                if mode is not None:
                    parts.append(c.flush(mode))
                    # everything so far decompresses now (checked in process)
                    so_far = b"".join(parts)
                    dd = zlib.decompressobj(wbits)
                    assert dd.decompress(so_far) == data[:pos], (name, wbits, "sync prefix")
            parts.append(c.flush())
            out["obj%d" % wbits] = b"".join(parts)
        for k, v in out.items():
            open(path(d, "%s.%s" % (name, k)), "wb").write(v)
        # Decompression of the system's files, in process.
        assert zlib.decompress(open(path(d, name + ".sys.z"), "rb").read()) == data
        assert gzip.decompress(open(path(d, name + ".sys.gz"), "rb").read()) == data
        dd = zlib.decompressobj(-15)
        raw = open(path(d, name + ".sys.raw15"), "rb").read()
        got = b"".join(dd.decompress(raw[i:i + 999]) for i in range(0, len(raw), 999)) + dd.flush()
        assert got == data
        # Our own output, decompressed by ourselves, with unused_data after the stream.
        dd = zlib.decompressobj()
        assert dd.decompress(out["oneshot.z"] + b"tail") == data and dd.unused_data == b"tail"
    print("run ok")

def check(d):
    n = 0
    for name, data in inputs().items():
        for f in os.listdir(d):
            if not f.startswith(name + ".") or ".sys." in f or f.endswith(".raw"):
                continue
            blob = open(path(d, f), "rb").read()
            if f.endswith("obj-15"):
                got = zlib.decompress(blob, -15)
            elif f.endswith("obj31") or f.endswith(".gz"):
                got = gzip.decompress(blob)
            else:
                got = zlib.decompress(blob)
            assert got == data, f
            n += 1
    print("check ok", n)

{"gen": gen, "run": run, "check": check}[sys.argv[1]](sys.argv[2])
