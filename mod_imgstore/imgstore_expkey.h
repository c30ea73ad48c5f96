/*
 * Expiry keys (format v2): an image is sealed under the secret of the period
 * its expiry falls in; the secrets form a one-way chain, and every secret is
 * erased once its period plus the grace is over. After that, nothing that
 * still exists (URL, master key, state file, any database backup) opens it.
 *
 * Every HKDF and HMAC below is over SHA-256; "||" is concatenation; integers
 * are big-endian; labels are ASCII without a terminating NUL.
 *
 * Periods. P seconds (1 .. 86400, from ImgStoreExpiryKeyPeriod); the period
 * of epoch second t is e = floor(t / P) (t < 0 counts as 0). An image is
 * sealed under e = floor(expires_at / P).
 *
 * The chain (one way: S_e does not reveal S_(e-1)):
 *
 *   S_(e+1) = HKDF-Expand(PRK = S_e, info = "imgstore v2 ratchet", L = 32)
 *           = HMAC(S_e, "imgstore v2 ratchet" || 0x01)
 *
 *     S_g --> S_(g+1) --> ... --> S_e --> S_(e+1) --> ...
 *      |        (erased when its period + grace is over)
 *      +-> lineage = SHA-256("imgstore v2 lineage" || S_g)   (g: creation)
 *
 * The per-image key (format v2). Needs the master key AND S_e AND the token:
 *
 *   master (32 B, key file) --HKDF-Extract(salt = "imgstore v2 extract")--> PRK_m
 *                                                   (once per key, at startup)
 *   PRK_i = HKDF-Extract(salt = S_e, IKM = PRK_m)  = HMAC(S_e, PRK_m)
 *   key   = HKDF-Expand(PRK_i, info, L = 32)       = HMAC(PRK_i, info || 0x01)
 *   info  = "imgstore v2 key" || key_id (u16) || e (u64) || token (32 B)
 *
 *   (equivalently: key = HKDF(salt = S_e, IKM = PRK_m, info, L = 32))
 *   S_e without the master key gives nothing (PRK_m is secret); the master
 *   key without S_e gives nothing (HMAC keyed by S_e).
 *
 * Cipher: AES-256-GCM, 12-byte random nonce, 16-byte tag appended to the
 * ciphertext (as in v1). Associated data v2 = v1's layout with version 2 and
 * the period appended:
 *
 *   +-----+--------+------+------+------------+--------------------+--------+
 *   | ver | key_id | id   | tlen | type       | expires_at         | e      |
 *   | 1 B | u16    | 32 B | 1 B  | tlen bytes | i64, epoch seconds | u64    |
 *   | =2  |        |      |      |            |                    |        |
 *   +-----+--------+------+------+------------+--------------------+--------+
 *
 * The state file (ImgStoreExpiryKeyFile), exactly 120 bytes:
 *
 *   offset size
 *        0    8  magic "IMGSXKEY"
 *        8    4  format version (u32) = 1
 *       12    4  period length P in seconds (u32)
 *       16    8  e (u64): the period whose secret follows
 *       24   32  S_e
 *       56   32  lineage id (fixed at creation, copied with the file)
 *       88   32  SHA-256("imgstore v2 state" || bytes 0..87)
 *
 * It must be a regular file (not a symbolic link: it is replaced by rename),
 * owned by the expected uid (root), mode 0600 or stricter. The period length
 * in the file must equal the configured one: changing P needs a new chain,
 * i.e. a new file, which makes every live image unreadable. Rewritten
 * atomically: "<path>.tmp" (O_EXCL, 0600), write, fsync, rename over path,
 * fsync of the directory; a leftover "<path>.tmp" is removed first. (The
 * replaced file's blocks are freed, not overwritten: on a disk that keeps
 * freed blocks readable, put the file on tmpfs or an encrypted volume.)
 *
 * Who calls what. The parent runs imgstore_expkey_file_sync at startup and
 * at each period boundary and builds a window from the state; children
 * inherit the window at fork and call imgstore_expkey_window_advance on a
 * timer as well as looking secrets up. Grace = clock skew allowance + one
 * cleanup interval: S_e is erased at (e + 1) * P + grace, so at most one
 * period plus the grace after an image expires its secret is gone.
 *
 * Core unit: libc, APR and OpenSSL only. One result convention: a status
 * and, for file problems, a sentence that names the file and the problem.
 */
#ifndef IMGSTORE_EXPKEY_H
#define IMGSTORE_EXPKEY_H

#include <apr_pools.h>
#include <sys/types.h>

#include "imgstore_crypt.h"
#include "imgstore_status.h"
#include "imgstore_token.h"

#define IMGSTORE_EXPKEY_SECRET_BYTES 32
#define IMGSTORE_EXPKEY_LINEAGE_BYTES 32
#define IMGSTORE_EXPKEY_FILE_BYTES 120
#define IMGSTORE_EXPKEY_FILE_VERSION 1
#define IMGSTORE_EXPKEY_PERIOD_MIN 1
#define IMGSTORE_EXPKEY_PERIOD_MAX 86400
#define IMGSTORE_AAD_VERSION_V2 2

/*
 * Results follow the core's one convention (imgstore_status.h): OK;
 * NOTFOUND: the period's secret is erased or out of reach (answer 404);
 * NOKEY: unknown master key id; TAMPERED: ciphertext too short or the tag
 * did not verify; INVALID: the state file is unusable (the reason names the
 * file and the problem); INTERNAL: OpenSSL, memory or I/O failure (the
 * reason says which).
 */

/* What the state file holds (in memory). */
typedef struct {
    apr_uint32_t period; /* P, seconds */
    apr_uint64_t e;      /* the period of secret */
    unsigned char secret[IMGSTORE_EXPKEY_SECRET_BYTES];
    unsigned char lineage[IMGSTORE_EXPKEY_LINEAGE_BYTES];
} imgstore_expkey_state_t;

/* e = floor(t / period); t < 0 counts as 0. */
apr_uint64_t imgstore_expkey_period_of(apr_int64_t t, apr_uint32_t period);

/* out = S_(e + steps) from in = S_e (in and out may be the same buffer). */
imgstore_status_e imgstore_expkey_ratchet(const unsigned char in[IMGSTORE_EXPKEY_SECRET_BYTES],
                                          apr_uint64_t steps,
                                          unsigned char out[IMGSTORE_EXPKEY_SECRET_BYTES]);

/* lineage = SHA-256("imgstore v2 lineage" || genesis) */
void imgstore_expkey_lineage(const unsigned char genesis[IMGSTORE_EXPKEY_SECRET_BYTES],
                             unsigned char lineage[IMGSTORE_EXPKEY_LINEAGE_BYTES]);

/* Wipe a state (OPENSSL_cleanse). */
void imgstore_expkey_state_wipe(imgstore_expkey_state_t *st);

/* ---- The state file (parent process) ---- */

/*
 * Read and check path: opened without following a symbolic link, then
 * checked on the descriptor (regular file, owner == owner_uid, mode 0600 or
 * stricter, exactly IMGSTORE_EXPKEY_FILE_BYTES), magic, version, checksum,
 * period length in range and equal to period. OK, or BADFILE/ERROR with
 * *reason ("<path> is ..."); st is wiped unless OK.
 */
imgstore_status_e imgstore_expkey_file_load(apr_pool_t *p, const char *path, uid_t owner_uid,
                                            apr_uint32_t period, imgstore_expkey_state_t *st,
                                            const char **reason);

/* Write st to path atomically (see above). OK or ERROR with *reason. */
imgstore_status_e imgstore_expkey_file_write(apr_pool_t *p, const char *path,
                                             const imgstore_expkey_state_t *st,
                                             const char **reason);

/*
 * What the parent runs at startup and at each period boundary: remove a
 * leftover temp file; load path (created with a fresh random secret at the
 * period of (now - grace) if missing: CREATED); advance it to the period of
 * (now - grace) and rewrite it if that moved it. Never moves backwards (a
 * clock that went back leaves the file as it is). st receives the state.
 * OK with *reason NULL; OK with *reason set when the file was missing and
 * is now created (a sentence to log at notice); or INVALID/INTERNAL with
 * *reason.
 */
imgstore_status_e imgstore_expkey_file_sync(apr_pool_t *p, const char *path, uid_t owner_uid,
                                            apr_uint32_t period, apr_int64_t grace, apr_int64_t now,
                                            imgstore_expkey_state_t *st, const char **reason);

/*
 * Test seam: before each step of a rewrite, hook(step, baton) is called; a
 * non-zero answer stops the rewrite right there as a crash would (nothing
 * cleaned up) and the write returns ERROR. NULL restores normal operation.
 */
enum {
    IMGSTORE_EXPKEY_STEP_CREATE_TMP = 1, /* before creating <path>.tmp */
    IMGSTORE_EXPKEY_STEP_WRITE,          /* before writing anything */
    IMGSTORE_EXPKEY_STEP_WRITE_HALF,     /* after writing half of the bytes */
    IMGSTORE_EXPKEY_STEP_FSYNC,          /* before fsync of the temp file */
    IMGSTORE_EXPKEY_STEP_RENAME,         /* before rename(tmp, path) */
    IMGSTORE_EXPKEY_STEP_FSYNC_DIR,      /* before fsync of the directory */
    IMGSTORE_EXPKEY_STEP_COUNT = IMGSTORE_EXPKEY_STEP_FSYNC_DIR
};
void imgstore_expkey_set_crash_hook(int (*hook)(int step, void *baton), void *baton);

/* ---- Master keys for v2 (PRK_m per key id) ---- */

typedef struct imgstore_expkey_keys_t imgstore_expkey_keys_t;

/* Wiped when p is cleared; NULL if OpenSSL lacks HKDF or AES-256-GCM. */
imgstore_expkey_keys_t *imgstore_expkey_keys_create(apr_pool_t *p);

/* PRK_m for key_id (1..IMGSTORE_KEY_ID_MAX); NULL or a reason. */
const char *imgstore_expkey_keys_add(imgstore_expkey_keys_t *keys, int key_id,
                                     const unsigned char master[IMGSTORE_MASTER_KEY_BYTES]);

/*
 * Seal buf[0..len) in place under (key aad->key_id, S_e, token); the tag goes
 * to buf + len. OK, NOKEY or ERROR (also for a content type over 255 bytes).
 */
imgstore_status_e
imgstore_expkey_seal(const imgstore_expkey_keys_t *keys,
                     const unsigned char secret[IMGSTORE_EXPKEY_SECRET_BYTES], apr_uint64_t e,
                     const unsigned char token[IMGSTORE_TOKEN_BYTES], const imgstore_aad_t *aad,
                     unsigned char nonce[IMGSTORE_NONCE_BYTES], unsigned char *buf, apr_size_t len);

/*
 * Open ct (ct_len includes the tag) into out (may equal ct). Unless OK, out
 * is wiped: NOKEY, TAG or ERROR.
 */
imgstore_status_e
imgstore_expkey_open(const imgstore_expkey_keys_t *keys,
                     const unsigned char secret[IMGSTORE_EXPKEY_SECRET_BYTES], apr_uint64_t e,
                     const unsigned char token[IMGSTORE_TOKEN_BYTES], const imgstore_aad_t *aad,
                     const unsigned char nonce[IMGSTORE_NONCE_BYTES], const unsigned char *ct,
                     apr_size_t ct_len, unsigned char *out);

/* ---- The window a child holds ---- */

/*
 * Secrets of the periods from period(now - grace) to period(now + horizon +
 * grace) (horizon: the longest TTL). Only S of the oldest period held is kept
 * exactly; later ones are derived forward on demand and cached at evenly
 * spaced checkpoints (at most 1024, so P = 1 s with a 30-day TTL stays small).
 * Every secret whose period + grace is over is wiped (OPENSSL_cleanse) by
 * the next advance or lookup. Thread-safe (one mutex).
 */
typedef struct imgstore_expkey_window_t imgstore_expkey_window_t;

/* From a state (copied; the caller may wipe its own). Wiped when p is cleared. NULL on failure. */
imgstore_expkey_window_t *imgstore_expkey_window_create(apr_pool_t *p,
                                                        const imgstore_expkey_state_t *st,
                                                        apr_int64_t grace, apr_int64_t horizon);

/* Wipe what is over at now (a child calls this on a timer, so idle children forget too). */
imgstore_status_e imgstore_expkey_window_advance(imgstore_expkey_window_t *w, apr_int64_t now);

/* S_e into out (the caller wipes it): OK, GONE (erased, or beyond the window) or ERROR. */
imgstore_status_e imgstore_expkey_window_get(imgstore_expkey_window_t *w, apr_uint64_t e,
                                             apr_int64_t now,
                                             unsigned char out[IMGSTORE_EXPKEY_SECRET_BYTES]);

/* The period length P of the window's chain. */
apr_uint32_t imgstore_expkey_window_period(const imgstore_expkey_window_t *w);

/* The oldest period still held (secrets of earlier periods are gone). */
apr_uint64_t imgstore_expkey_window_low(imgstore_expkey_window_t *w);

/* Wipe everything now; every later lookup is GONE. */
void imgstore_expkey_window_wipe(imgstore_expkey_window_t *w);

/* Test seam: the one block of memory that holds every secret of the window. */
void imgstore_expkey_window_memory(const imgstore_expkey_window_t *w, const void **mem,
                                   apr_size_t *len);

/* Sealing and opening under a window: imgstore_image.h (the image use case). */

#endif
