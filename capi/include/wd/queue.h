/* WarpDrive queue API (the user API of the 2018 WarpDrive RFC): see wd.h.
 *
 * A process requests a queue on an accelerator for an algorithm, sends requests to it,
 * and receives them back completed. Requests are asynchronous: wd_send() copies what the
 * device needs (key, input) into the queue's DMA memory and returns at once; the same
 * request pointer comes back from wd_recv() / wd_recv_sync() with its result.
 *
 * What `void *req` is depends on the algorithm the queue was requested for:
 *   "rsa"  ->  struct wd_rsa_req (HiSilicon HPRE: RSA-1024/2048/3072/4096 modexp).
 *
 * Where queues come from: the WD_DEVICES environment variable, read once per process:
 *   auto, uacce (default)  the kernel's uacce devices (/dev/hisi_hpre-N; see docs/hardware.md)
 *   model                  the device model, in threads of this process (WD_MODEL_* knobs);
 *                          only in a libwd.so built with the model (the default developer
 *                          build; a production build refuses it: wd_request_queue -EINVAL)
 *   none                   no devices (every wd_request_queue fails with -ENODEV)
 * The same values, with the same meaning, select the devices of comp.h and of the provider.
 *
 * Errors are negative errno values:
 *   -EINVAL      NULL or malformed argument; nothing in flight for wd_recv_sync
 *   -ENODEV      no device offers the algorithm
 *   -EBUSY       every queue of every device is in use: do the work in software
 *   -EOPNOTSUPP  unsupported algorithm or key size
 *   -EAGAIN      submission ring full: receive completions, then send again
 *   -ETIMEDOUT   the device did not complete a request within 5 s (stalled)
 *   -EIO         the device failed the request (in req->status) or the queue
 *   -EPROTO      the device broke the ring protocol
 *   -ENXIO       the device was removed or the queue torn down
 *   -EEXIST      wd_mem_share of a range overlapping one already shared
 * No function aborts, unwinds or crashes on bad input it can detect (NULL pointers,
 * lengths); pointers that are non-NULL but invalid cannot be detected.
 *
 * Threads: a queue may be used from any thread, one call at a time per queue is the
 * efficient use (calls on one queue are serialised by a lock). After fork(), a child must
 * not use queues its parent requested: it requests its own (and may release the
 * parent's handles, which closes nothing of the parent's).
 */
#ifndef WD_QUEUE_H
#define WD_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A queue on an accelerator. Opaque. */
struct wd_queue;

/* struct wd_rsa_req operations. */
#define WD_RSA_PUBLIC      0 /* out = in^e mod n              key: n, e */
#define WD_RSA_PRIVATE     1 /* out = in^d mod n              key: n, d */
#define WD_RSA_PRIVATE_CRT 2 /* out = in^d mod n by CRT       key: n_len, p, q, dp, dq, qinv */

/* One RSA modular exponentiation: the `req` of an "rsa" queue. Every number is a
 * big-endian byte string; leading zeros are allowed. Unused key fields may be NULL/0.
 * The modulus size (n without leading zeros; n_len for CRT, where n may be NULL) must be
 * 128, 256, 384 or 512 bytes. The key and input are copied at wd_send(); the struct
 * itself and `out` must stay valid until the request comes back. */
struct wd_rsa_req {
    int op;                     /* WD_RSA_* */
    const unsigned char *n;     size_t n_len;
    const unsigned char *e;     size_t e_len;
    const unsigned char *d;     size_t d_len;
    const unsigned char *p;     size_t p_len;
    const unsigned char *q;     size_t q_len;
    const unsigned char *dp;    size_t dp_len;
    const unsigned char *dq;    size_t dq_len;
    const unsigned char *qinv;  size_t qinv_len;
    const unsigned char *in;    size_t in_len;   /* at most the modulus size */
    unsigned char *out;         size_t out_len;  /* at least the modulus size */
    int status;        /* out: 0, or a negative errno (-EIO: the device failed it) */
    size_t out_bytes;  /* out: bytes written to `out` (the modulus size, zeros kept) */
    void *opaque;      /* yours; never touched */
};

/* Requests a queue for `alg` ("rsa") on device `dev` (e.g. "hisi_hpre-1"), or on any
 * device offering it when `dev` is NULL (the one with most free queues first).
 * 0 and *q set; -EINVAL, -EOPNOTSUPP, -ENODEV, -EBUSY (fall back to software), or another
 * negative errno from the kernel. */
int wd_request_queue(struct wd_queue **q, const char *alg, const char *dev);

/* Releases a queue (NULL is allowed). Requests still in flight are dropped and never
 * returned; ranges still shared are unshared. */
void wd_release_queue(struct wd_queue *q);

/* Sends one request. 0; or -EINVAL, -EOPNOTSUPP (key size), -EAGAIN (ring full), -ENXIO.
 * A request that failed to send is not queued and never comes back. */
int wd_send(struct wd_queue *q, void *req);

/* Takes one completed request without waiting: 1 and *req set (check (*req)->status),
 * 0 if none is ready, or a negative errno. */
int wd_recv(struct wd_queue *q, void **req);

/* Waits for one completed request (brief spin, then sleep on the queue's interrupt):
 * 1 and *req set; -EINVAL if nothing is in flight; -ETIMEDOUT if the device stalled. */
int wd_recv_sync(struct wd_queue *q, void **req);

/* Shares `size` bytes at `addr` with the queue's device (for requests that carry device
 * addresses of caller memory; see wd_mem_dev_addr). `flags` must be 0. The memory must
 * stay mapped until wd_mem_unshare() or wd_release_queue(). With SVA (mainline kernels)
 * the device address is the virtual address; on the device model it is an IOVA.
 *
 * No-SVA queues (openEuler kernels whose device api ends in "_noiommu": no SVA, no IOMMU
 * mapping of user memory) cannot share arbitrary memory: the device reaches only the
 * queue's static-share region, which the kernel allocates and wd maps when the queue is
 * requested (size WD_SS_SIZE, default 4 MiB for HPRE, 48 MiB for ZIP). There
 * wd_mem_share of any other memory fails with -EOPNOTSUPP; the library's own requests
 * (RSA, compression) take their buffers from the region and are unaffected.
 *
 * 0; -EINVAL; -EEXIST (overlaps a shared range); -EOPNOTSUPP (no-SVA queue, memory outside
 * its static-share region). */
int wd_mem_share(struct wd_queue *q, const void *addr, size_t size, int flags);

/* Stops sharing a range shared with exactly this `addr` and `size`. 0 or -EINVAL. */
int wd_mem_unshare(struct wd_queue *q, const void *addr, size_t size);

/* The device address of `addr`, inside a shared range. 0 and *dev_addr set, or -EINVAL. */
int wd_mem_dev_addr(struct wd_queue *q, const void *addr, uint64_t *dev_addr);

#ifdef __cplusplus
}
#endif

#endif /* WD_QUEUE_H */
