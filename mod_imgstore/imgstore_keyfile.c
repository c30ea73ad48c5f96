#include "imgstore_keyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <apr_strings.h>

#include <openssl/crypto.h>

#define HEX_CHARS (2 * IMGSTORE_MASTER_KEY_BYTES)
/* Longest accepted file: 64 hex digits and a CRLF. */
#define FILE_MAX (HEX_CHARS + 2)

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

static const char *parse_key(const unsigned char *buf, size_t n,
                             unsigned char key[IMGSTORE_MASTER_KEY_BYTES])
{
    size_t i;

    if (n == IMGSTORE_MASTER_KEY_BYTES) {
        memcpy(key, buf, n);
        return NULL;
    }
    if (n == HEX_CHARS + 2 && buf[HEX_CHARS] == '\r' && buf[HEX_CHARS + 1] == '\n') {
        n = HEX_CHARS;
    } else if (n == HEX_CHARS + 1 && buf[HEX_CHARS] == '\n') {
        n = HEX_CHARS;
    }
    if (n != HEX_CHARS) {
        return "must hold 32 raw bytes or 64 hex digits";
    }
    for (i = 0; i < IMGSTORE_MASTER_KEY_BYTES; i++) {
        int hi = hex_value(buf[2 * i]), lo = hex_value(buf[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return "must hold 32 raw bytes or 64 hex digits (found a non-hex character)";
        }
        key[i] = (unsigned char)(hi << 4 | lo);
    }
    return NULL;
}

int imgstore_keyfile_open(apr_pool_t *p, const char *path, int flags, struct stat *sb,
                          const char **err, int *open_errno)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | flags);

    if (open_errno != NULL) {
        *open_errno = fd < 0 ? errno : 0;
    }
    if (fd < 0) {
        *err = apr_psprintf(p, "cannot be opened: %s", strerror(errno));
        return -1;
    }
    /* Checked on the descriptor, so what we verify is what we read. */
    if (fstat(fd, sb) != 0) {
        *err = apr_psprintf(p, "cannot be examined: %s", strerror(errno));
    } else if (!S_ISREG(sb->st_mode)) {
        *err = "is not a regular file";
    } else {
        *err = NULL;
        return fd;
    }
    close(fd);
    return -1;
}

const char *imgstore_keyfile_read(apr_pool_t *p, int fd, unsigned char *buf, size_t cap,
                                  size_t expected, size_t *n)
{
    *n = 0;
    while (*n < cap) {
        ssize_t got = read(fd, buf + *n, cap - *n);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got < 0) {
            return apr_psprintf(p, "cannot be read: %s", strerror(errno));
        }
        if (got == 0) {
            break;
        }
        *n += (size_t)got;
    }
    return *n == expected ? NULL : "changed size while being read";
}

const char *imgstore_keyfile_load(apr_pool_t *p, const char *path, uid_t allowed_uid,
                                  unsigned char key[IMGSTORE_MASTER_KEY_BYTES])
{
    unsigned char buf[FILE_MAX + 1];
    const char *err = NULL;
    struct stat st;
    size_t n = 0;
    int fd;

    /* Whatever happens below, the caller never sees a partial key. */
    memset(key, 0, IMGSTORE_MASTER_KEY_BYTES);
    fd = imgstore_keyfile_open(p, path, 0, &st, &err, NULL);
    if (fd < 0) {
        return err;
    }
    if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
        err = apr_psprintf(p, "is accessible to group or others (mode %04o); chmod 0400 it",
                           (unsigned)(st.st_mode & 07777));
    } else if (st.st_uid != 0 && st.st_uid != allowed_uid) {
        err =
            apr_psprintf(p, "is owned by uid %ld, not by root or the user starting httpd (uid %ld)",
                         (long)st.st_uid, (long)allowed_uid);
    } else if (st.st_size != IMGSTORE_MASTER_KEY_BYTES && st.st_size != HEX_CHARS &&
               st.st_size != HEX_CHARS + 1 && st.st_size != HEX_CHARS + 2) {
        err = apr_psprintf(p,
                           "has the wrong size (%ld bytes): it must hold 32 raw bytes or 64 "
                           "hex digits",
                           (long)st.st_size);
    } else {
        err = imgstore_keyfile_read(p, fd, buf, sizeof(buf), (size_t)st.st_size, &n);
    }
    close(fd);
    if (err == NULL) {
        err = parse_key(buf, n, key);
    }
    OPENSSL_cleanse(buf, sizeof(buf));
    if (err != NULL) {
        OPENSSL_cleanse(key, IMGSTORE_MASTER_KEY_BYTES);
    }
    return err;
}
