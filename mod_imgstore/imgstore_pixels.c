/*
 * Declared pixel counts from image headers (see imgstore_pixels.h). Every
 * walk is bounds-checked like the sniffer's ("need <= len - pos") and stops
 * quietly at the first thing that does not fit: what was read by then
 * counts. Core unit: libc + APR only.
 */
#include <string.h>

#include "imgstore_pixels.h"
#include "imgstore_sniff.h"

static apr_uint32_t be16(const unsigned char *p)
{
    return ((apr_uint32_t)p[0] << 8) | p[1];
}

static apr_uint32_t be32(const unsigned char *p)
{
    return ((apr_uint32_t)p[0] << 24) | ((apr_uint32_t)p[1] << 16) | ((apr_uint32_t)p[2] << 8) |
           p[3];
}

static apr_uint64_t be64(const unsigned char *p)
{
    return ((apr_uint64_t)be32(p) << 32) | be32(p + 4);
}

static apr_uint32_t le16(const unsigned char *p)
{
    return ((apr_uint32_t)p[1] << 8) | p[0];
}

static apr_uint32_t le24(const unsigned char *p)
{
    return ((apr_uint32_t)p[2] << 16) | ((apr_uint32_t)p[1] << 8) | p[0];
}

static apr_uint32_t le32(const unsigned char *p)
{
    return ((apr_uint32_t)p[3] << 24) | le24(p);
}

/* The running maximum. */
typedef struct {
    apr_uint64_t max;
    int found;
} pixel_count;

static void count(pixel_count *c, apr_uint64_t w, apr_uint64_t h)
{
    apr_uint64_t n = w * h; /* each at most 2^32 - 1 */

    c->found = 1;
    if (n > c->max) {
        c->max = n;
    }
}

/* SOFn: FF Cn len(2) precision(1) height(2) width(2) ... */
static void pixels_jpeg(const unsigned char *buf, apr_size_t len, pixel_count *c)
{
    apr_size_t pos = 2;

    for (;;) {
        unsigned int m;
        apr_size_t seglen;

        if (pos >= len || buf[pos] != 0xFF) {
            return;
        }
        while (pos < len && buf[pos] == 0xFF) {
            pos++;
        }
        if (pos >= len) {
            return;
        }
        m = buf[pos++];
        if (m == 0x01 || (m >= 0xD0 && m <= 0xD7)) {
            continue;
        }
        if (m < 0xC0 || m == 0xD8 || m == 0xD9 || len - pos < 2) {
            return;
        }
        seglen = be16(buf + pos);
        if (seglen < 2 || seglen > len - pos) {
            return;
        }
        if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC && seglen >= 7) {
            apr_uint32_t h = be16(buf + pos + 3);

            count(c, be16(buf + pos + 5), h == 0 ? 0xFFFF : h);
        }
        pos += seglen;
        if (m == 0xDA) {
            /* Entropy-coded data up to the next real marker. */
            for (;;) {
                const unsigned char *ff = memchr(buf + pos, 0xFF, len - pos);
                unsigned int next;

                if (ff == NULL) {
                    return;
                }
                pos = (apr_size_t)(ff - buf) + 1;
                if (pos >= len) {
                    return;
                }
                next = buf[pos];
                if (next == 0x00 || (next >= 0xD0 && next <= 0xD7)) {
                    pos++;
                } else if (next != 0xFF) {
                    pos--;
                    break;
                }
            }
        }
    }
}

/* IHDR: width(4) height(4); fcTL: seq(4) width(4) height(4) ... */
static void pixels_png(const unsigned char *buf, apr_size_t len, pixel_count *c)
{
    apr_size_t pos = 8;

    for (;;) {
        const unsigned char *type;
        apr_uint32_t clen;

        if (pos > len || len - pos < 12) {
            return;
        }
        clen = be32(buf + pos);
        if (clen > len - pos - 12) {
            return;
        }
        type = buf + pos + 4;
        if (memcmp(type, "IHDR", 4) == 0 && clen >= 8) {
            count(c, be32(type + 4), be32(type + 8));
        } else if (memcmp(type, "fcTL", 4) == 0 && clen >= 12) {
            count(c, be32(type + 8), be32(type + 12));
        } else if (memcmp(type, "IEND", 4) == 0) {
            return; /* APNG frames (fcTL) may follow IDAT, never IEND */
        }
        pos += 12 + (apr_size_t)clen;
    }
}

/* Screen: "GIF89a" w(2) h(2) ...; descriptor: 2C x(2) y(2) w(2) h(2) flags */
static void pixels_gif(const unsigned char *buf, apr_size_t len, pixel_count *c)
{
    apr_size_t pos = 13;

    if (len < 13) {
        return;
    }
    count(c, le16(buf + 6), le16(buf + 8));
    if (buf[10] & 0x80) {
        apr_size_t gct = (apr_size_t)3 << ((buf[10] & 7) + 1);

        if (gct > len - pos) {
            return;
        }
        pos += gct;
    }
    for (;;) {
        unsigned int block;

        if (pos >= len) {
            return;
        }
        block = buf[pos++];
        if (block == 0x21) {
            if (pos >= len) {
                return;
            }
            pos++;
            if (!imgstore_gif_skip_sub_blocks(buf, len, &pos)) {
                return;
            }
        } else if (block == 0x2C) {
            unsigned int flags;

            if (len - pos < 9) {
                return;
            }
            count(c, le16(buf + pos + 4), le16(buf + pos + 6));
            flags = buf[pos + 8];
            pos += 9;
            if (flags & 0x80) {
                apr_size_t lct = (apr_size_t)3 << ((flags & 7) + 1);

                if (lct > len - pos) {
                    return;
                }
                pos += lct;
            }
            if (pos >= len) {
                return;
            }
            pos++;
            if (!imgstore_gif_skip_sub_blocks(buf, len, &pos)) {
                return;
            }
        } else {
            return; /* trailer or garbage */
        }
    }
}

/*
 * WebP chunks in [pos, end):
 *   VP8X flags(1) rsv(3) canvas_w-1(3) canvas_h-1(3)
 *   VP8  frame tag(3) 9D 01 2A w(2, 14 bits) h(2, 14 bits)
 *   VP8L 2F then w-1 (14 bits) h-1 (14 bits), little-endian bit order
 *   ANMF x(3) y(3) w-1(3) h-1(3) duration(3) flags(1) | frame chunks...
 */
static void pixels_webp_chunks(const unsigned char *buf, apr_size_t pos, apr_size_t end, int depth,
                               pixel_count *c)
{
    while (pos < end && end - pos >= 8) {
        const unsigned char *cc = buf + pos;
        const unsigned char *d = buf + pos + 8;
        apr_uint32_t csize = le32(buf + pos + 4);

        if (csize > end - pos - 8) {
            return;
        }
        if (memcmp(cc, "VP8X", 4) == 0 && csize >= 10) {
            count(c, (apr_uint64_t)le24(d + 4) + 1, (apr_uint64_t)le24(d + 7) + 1);
        } else if (memcmp(cc, "VP8 ", 4) == 0 && csize >= 10) {
            count(c, le16(d + 6) & 0x3FFF, le16(d + 8) & 0x3FFF);
        } else if (memcmp(cc, "VP8L", 4) == 0 && csize >= 5) {
            apr_uint32_t bits = le32(d + 1);

            count(c, (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1);
        } else if (memcmp(cc, "ANMF", 4) == 0 && csize >= 16) {
            count(c, (apr_uint64_t)le24(d + 6) + 1, (apr_uint64_t)le24(d + 9) + 1);
            if (depth == 0) {
                pixels_webp_chunks(buf, pos + 8 + 16, pos + 8 + csize, 1, c);
            }
        }
        pos += 8 + (apr_size_t)csize;
        if ((csize & 1) && pos < end) {
            pos++;
        }
    }
}

static void pixels_webp(const unsigned char *buf, apr_size_t len, pixel_count *c)
{
    apr_uint64_t end;

    if (len < 12) {
        return;
    }
    end = (apr_uint64_t)le32(buf + 4) + 8;
    pixels_webp_chunks(buf, 12, end < len ? (apr_size_t)end : len, 0, c);
}

/* BITMAPCOREHEADER (12): w(2) h(2); the others: w(4, signed) h(4, signed) */
static void pixels_bmp(const unsigned char *buf, apr_size_t len, pixel_count *c)
{
    apr_uint32_t dib;

    if (len < 18) {
        return;
    }
    dib = le32(buf + 14);
    if (dib == 12 && len >= 22) {
        count(c, le16(buf + 18), le16(buf + 20));
    } else if (dib >= 40 && len >= 26) {
        apr_int32_t w = (apr_int32_t)le32(buf + 18);
        apr_int32_t h = (apr_int32_t)le32(buf + 22);
        apr_int64_t aw = w < 0 ? -(apr_int64_t)w : w;
        apr_int64_t ah = h < 0 ? -(apr_int64_t)h : h;

        count(c, (apr_uint64_t)aw, (apr_uint64_t)ah);
    }
}

/* An ISO-BMFF box in [pos, end): size(4) type(4) [largesize(8)]; size 0 = to the end. */
static int bmff_box(const unsigned char *buf, apr_size_t pos, apr_size_t end,
                    const unsigned char **type, apr_size_t *body, apr_size_t *box_end)
{
    apr_size_t avail = end - pos;
    apr_size_t hdr = 8;
    apr_uint64_t size;

    if (avail < 8) {
        return 0;
    }
    size = be32(buf + pos);
    *type = buf + pos + 4;
    if (size == 1) {
        if (avail < 16) {
            return 0;
        }
        size = be64(buf + pos + 8);
        hdr = 16;
    } else if (size == 0) {
        size = avail;
    }
    if (size < hdr || size > avail) {
        return 0;
    }
    *body = pos + hdr;
    *box_end = pos + (apr_size_t)size;
    return 1;
}

/*
 * The boxes on the path meta (full box) > iprp > ipco > ispe (full box:
 * version/flags(4) width(4) height(4)), at depth 0 (file) to 3.
 */
static void pixels_avif_boxes(const unsigned char *buf, apr_size_t pos, apr_size_t end, int depth,
                              pixel_count *c)
{
    static const char *const path[] = {"meta", "iprp", "ipco"};

    while (pos < end) {
        const unsigned char *type;
        apr_size_t body, box_end;

        if (!bmff_box(buf, pos, end, &type, &body, &box_end)) {
            return;
        }
        if (depth < 3 && memcmp(type, path[depth], 4) == 0) {
            if (depth == 0) {
                if (box_end - body < 4) {
                    return;
                }
                body += 4; /* version and flags */
            }
            pixels_avif_boxes(buf, body, box_end, depth + 1, c);
        } else if (depth == 3 && memcmp(type, "ispe", 4) == 0 && box_end - body >= 12) {
            count(c, be32(buf + body + 4), be32(buf + body + 8));
        }
        pos = box_end;
    }
}

int imgstore_pixels(imgstore_type_e type, const unsigned char *buf, apr_size_t len,
                    apr_uint64_t *pixels)
{
    pixel_count c = {0, 0};

    *pixels = 0;
    if (buf == NULL) {
        return 0;
    }
    switch (type) {
        case IMGSTORE_TYPE_JPEG:
            pixels_jpeg(buf, len, &c);
            break;
        case IMGSTORE_TYPE_PNG:
            pixels_png(buf, len, &c);
            break;
        case IMGSTORE_TYPE_GIF:
            pixels_gif(buf, len, &c);
            break;
        case IMGSTORE_TYPE_WEBP:
            pixels_webp(buf, len, &c);
            break;
        case IMGSTORE_TYPE_BMP:
            pixels_bmp(buf, len, &c);
            break;
        case IMGSTORE_TYPE_AVIF:
            pixels_avif_boxes(buf, 0, len, 0, &c);
            break;
        default:
            return 0;
    }
    *pixels = c.max;
    return c.found;
}
