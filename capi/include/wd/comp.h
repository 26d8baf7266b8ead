/* Streaming compression API: see wd.h.
 *
 * Deflate (RFC 1951), zlib (RFC 1950) and gzip (RFC 1952) streams, compressed and
 * decompressed on the HiSilicon ZIP accelerator when one is available (WD_DEVICES:
 * auto, uacce, model, none; each thread uses its own queue) and in software (zlib-rs)
 * otherwise, with the same output formats. Names are prefixed wd_ and never clash with
 * zlib's; a program may link both.
 *
 * Use, much as with zlib:
 *
 *     struct wd_stream s = {0};
 *     wd_deflate_init(&s, WD_FORMAT_GZIP, 6);
 *     s.next_in = data; s.avail_in = len;
 *     do {
 *         s.next_out = buf; s.avail_out = sizeof buf;
 *         rc = wd_deflate(&s, WD_FINISH);          // < 0: error
 *         fwrite(buf, 1, sizeof buf - s.avail_out, f);
 *     } while (rc == WD_OK);                        // WD_STREAM_END: done
 *     wd_deflate_end(&s);
 *
 * wd_deflate takes ALL of avail_in (next_in advances, avail_in becomes 0) unless output
 * from earlier input is still waiting: then it only delivers that output and takes no
 * input (call again, with more room). wd_inflate takes input only as far as the output it
 * makes fits a fixed internal budget (a few MiB): input it has not taken stays in
 * next_in/avail_in, so memory is bounded whatever the expansion ratio; call again (as
 * with zlib) until WD_STREAM_END. Output the caller has no room for is kept inside the
 * stream; output buffers of any size (even 1 byte) work.
 *
 * Return values: WD_OK (0) progress, call again as needed; WD_STREAM_END (1) the stream
 * is complete and all output delivered; negative errno on failure:
 *   -EINVAL   NULL stream or buffer with nonzero length, bad format/level/flush,
 *             a deflate call on an inflate stream (or the reverse), input after WD_FINISH
 *   -EBADMSG  corrupt input: bad header, bad deflate data, checksum or length mismatch,
 *             trailing garbage after the stream
 *   -ENODATA  WD_FINISH given but the input ended inside the stream (truncated)
 *   -ENOMEM   out of memory (never an abort)
 *   -EIO      the device failed and could not recover; internal error
 * After an error the stream can only be ended. No output of a failed stream should be
 * taken as valid.
 *
 * Decompression of gzip reads any number of members; WD_STREAM_END then comes only with
 * WD_FINISH (more members could follow). Zero bytes after the last member (tape and block
 * device padding) are ignored, as gzip(1) does; other trailing bytes are -EBADMSG. For zlib and deflate it comes when the stream
 * ends; input after that is an error (-EBADMSG).
 *
 * Levels: 0..9, -1 = 6. 1..6 run on the device (whose effort is fixed); 0 and 7..9 in
 * software. Raw deflate runs on the device only on hisi_qm_v3 devices.
 */
#ifndef WD_COMP_H
#define WD_COMP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum wd_format {
    WD_FORMAT_DEFLATE = 0,
    WD_FORMAT_ZLIB = 1,
    WD_FORMAT_GZIP = 2,
};

#define WD_OK 0
#define WD_STREAM_END 1

#define WD_NO_FLUSH 0   /* the library may hold input back */
#define WD_SYNC_FLUSH 2 /* all input so far decodable from the output so far */
#define WD_FINISH 4     /* no more input follows */

struct wd_stream {
    const uint8_t *next_in; /* next input byte */
    size_t avail_in;        /* bytes available at next_in */
    uint64_t total_in;      /* input bytes taken so far */
    uint8_t *next_out;      /* next output byte goes here */
    size_t avail_out;       /* room at next_out */
    uint64_t total_out;     /* output bytes delivered so far */
    void *state;            /* private; NULL before init and after end */
};

/* Starts a compression stream of format at level (0..9, -1 = default). */
int wd_deflate_init(struct wd_stream *s, int format, int level);
/* Compresses; flush is WD_NO_FLUSH, WD_SYNC_FLUSH or WD_FINISH. */
int wd_deflate(struct wd_stream *s, int flush);
/* Frees the stream's state. */
int wd_deflate_end(struct wd_stream *s);

/* Starts a decompression stream of format. */
int wd_inflate_init(struct wd_stream *s, int format);
/* Decompresses; WD_FINISH declares the end of the input (truncation is then an error). */
int wd_inflate(struct wd_stream *s, int flush);
/* Frees the stream's state. */
int wd_inflate_end(struct wd_stream *s);

/* 1 if the stream runs on the accelerator, 0 in software, negative errno if invalid. */
int wd_stream_offloaded(struct wd_stream *s);

#ifdef __cplusplus
}
#endif

#endif /* WD_COMP_H */
