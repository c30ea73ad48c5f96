/*
 * Metadata stripping at container level (see imgstore_strip.h for what each
 * format keeps and drops). Each format is walked like the sniffer walks it;
 * kept units are copied verbatim with memmove, so the output may be the
 * input buffer: the write position never passes the read position, because
 * units are only ever dropped or replaced by something no larger.
 *
 * Bounds checks are written "need <= len - pos" (pos <= len always holds),
 * never "pos + need <= len", so that sizes read from the file cannot wrap.
 * Core unit: libc + APR only.
 */
#include <string.h>

#include "imgstore_sniff.h"
#include "imgstore_strip.h"

/* What a format walk found. */
typedef struct {
    apr_size_t out_len;
    int removed; /* something was left out or replaced */
} strip_result;

static apr_uint32_t be16(const unsigned char *p)
{
    return ((apr_uint32_t)p[0] << 8) | p[1];
}

static apr_uint32_t be32(const unsigned char *p)
{
    return ((apr_uint32_t)p[0] << 24) | ((apr_uint32_t)p[1] << 16) | ((apr_uint32_t)p[2] << 8) |
           p[3];
}

static apr_uint32_t le16(const unsigned char *p)
{
    return ((apr_uint32_t)p[1] << 8) | p[0];
}

static apr_uint32_t le32(const unsigned char *p)
{
    return ((apr_uint32_t)p[3] << 24) | ((apr_uint32_t)p[2] << 16) | ((apr_uint32_t)p[1] << 8) |
           p[0];
}

static void put_le32(unsigned char *p, apr_uint32_t v)
{
    p[0] = (unsigned char)(v & 0xFF);
    p[1] = (unsigned char)((v >> 8) & 0xFF);
    p[2] = (unsigned char)((v >> 16) & 0xFF);
    p[3] = (unsigned char)((v >> 24) & 0xFF);
}

static void put_be32(unsigned char *p, apr_uint32_t v)
{
    p[0] = (unsigned char)((v >> 24) & 0xFF);
    p[1] = (unsigned char)((v >> 16) & 0xFF);
    p[2] = (unsigned char)((v >> 8) & 0xFF);
    p[3] = (unsigned char)(v & 0xFF);
}

/* The CRC-32 of PNG chunks (ISO 3309, reflected 0xEDB88320); bitwise: it
 * only ever covers the 30 bytes of a minimal eXIf chunk. */
static apr_uint32_t png_crc(const unsigned char *p, apr_size_t n)
{
    apr_uint32_t c = 0xFFFFFFFFu;
    apr_size_t i;
    int k;

    for (i = 0; i < n; i++) {
        c ^= p[i];
        for (k = 0; k < 8; k++) {
            c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
        }
    }
    return c ^ 0xFFFFFFFFu;
}

/* Whether the n bytes at p start with the string s (length sn). */
static int starts_with(const unsigned char *p, apr_size_t n, const char *s, apr_size_t sn)
{
    return n >= sn && memcmp(p, s, sn) == 0;
}

/* Copy in[from, from + n) to out + *w; memmove because out may be in. */
static void emit(unsigned char *out, apr_size_t *w, const unsigned char *in, apr_size_t from,
                 apr_size_t n)
{
    if (out + *w != in + from) {
        memmove(out + *w, in + from, n);
    }
    *w += n;
}

/*
 * The minimal EXIF (a TIFF structure) that replaces a file's EXIF when the
 * original has a valid Orientation: big-endian header, IFD0 holding the one
 * entry Orientation (0x0112, SHORT, count 1), no next IFD. JPEG wraps it in
 * APP1 "Exif\0\0", PNG in an eXIf chunk, WebP in an EXIF chunk.
 *
 *   "MM" 002A 00000008 | 0001 | 0112 0003 00000001 00vv 0000 | 00000000
 */
#define EXIF_MINIMAL_LEN 26
static void exif_minimal(unsigned char *t, unsigned int orientation)
{
    static const unsigned char tiff[EXIF_MINIMAL_LEN] = {
        'M',  'M',  0x00, 0x2A, 0x00, 0x00, 0x00, 0x08, 0x00, 0x01, 0x01, 0x12, 0x00,
        0x03, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};

    memcpy(t, tiff, EXIF_MINIMAL_LEN);
    t[19] = (unsigned char)orientation;
}

/*
 * The Orientation (1-8) in IFD0 of a TIFF structure, or 0 when there is
 * none, it is not a single SHORT, or the structure does not hold.
 *
 *   "II" 2A00 | "MM" 002A, IFD0 offset(4) | ... | count(2) entries(12 each)
 *   entry: tag(2) type(2) count(4) value-or-offset(4)
 */
static unsigned int exif_orientation(const unsigned char *t, apr_size_t tlen)
{
    apr_size_t ifd, i, count;
    int big;

    if (tlen < 8) {
        return 0;
    }
    if (t[0] == 'M' && t[1] == 'M') {
        big = 1;
    } else if (t[0] == 'I' && t[1] == 'I') {
        big = 0;
    } else {
        return 0;
    }
    if ((big ? be16(t + 2) : le16(t + 2)) != 42) {
        return 0;
    }
    ifd = big ? be32(t + 4) : le32(t + 4);
    if (ifd > tlen || tlen - ifd < 2) {
        return 0;
    }
    count = big ? be16(t + ifd) : le16(t + ifd);
    for (i = 0; i < count; i++) {
        apr_size_t e = ifd + 2 + 12 * i;
        unsigned int tag, type, value;

        if (e > tlen || tlen - e < 12) {
            return 0;
        }
        tag = big ? be16(t + e) : le16(t + e);
        if (tag != 0x0112) {
            continue;
        }
        type = big ? be16(t + e + 2) : le16(t + e + 2);
        if (type != 3 || (big ? be32(t + e + 4) : le32(t + e + 4)) != 1) {
            return 0;
        }
        value = big ? be16(t + e + 8) : le16(t + e + 8);
        return (value >= 1 && value <= 8) ? value : 0;
    }
    return 0;
}

/*
 * Put the unit that replaces in[start, end) -- repl, n bytes, n never more
 * than end - start (the caller checks) -- at out + *w. When the unit already
 * is repl, it is copied as it stands and nothing counts as removed.
 */
static void emit_replacement(unsigned char *out, apr_size_t *w, const unsigned char *in,
                             apr_size_t start, apr_size_t end, const unsigned char *repl,
                             apr_size_t n, strip_result *r)
{
    if (end - start == n && memcmp(in + start, repl, n) == 0) {
        emit(out, w, in, start, n);
        return;
    }
    memmove(out + *w, repl, n);
    *w += n;
    r->removed = 1;
}

/* Whether a JPEG marker segment (marker m, payload p of n bytes) is kept. */
static int jpeg_keep_segment(unsigned int m, const unsigned char *p, apr_size_t n)
{
    if (m == 0xE0) {
        return starts_with(p, n, "JFIF\0", 5);
    }
    if (m == 0xE2) {
        return starts_with(p, n, "ICC_PROFILE\0", 12);
    }
    if (m == 0xEE) {
        return starts_with(p, n, "Adobe", 5);
    }
    /* Every other APPn (EXIF, XMP, IPTC, MPF, maker data...) and COM. */
    return !((m >= 0xE0 && m <= 0xEF) || m == 0xFE);
}

/*
 * JPEG: SOI, marker segments, entropy-coded data after each SOS, EOI.
 * Kept segments keep their fill bytes; dropped ones lose them too.
 */
static int strip_jpeg(const unsigned char *in, apr_size_t len, unsigned char *out, strip_result *r)
{
    apr_size_t pos = 2;
    apr_size_t w = 0;
    int exif_seen = 0;

    emit(out, &w, in, 0, 2);
    for (;;) {
        apr_size_t start = pos;
        apr_size_t seglen;
        unsigned int marker;

        if (pos >= len || in[pos] != 0xFF) {
            return 0;
        }
        while (pos < len && in[pos] == 0xFF) {
            pos++;
        }
        if (pos >= len) {
            return 0;
        }
        marker = in[pos++];
        if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) {
            emit(out, &w, in, start, pos - start);
            continue;
        }
        if (marker == 0xD9) {
            emit(out, &w, in, start, pos - start);
            if (pos < len) {
                r->removed = 1; /* trailers: MPF images, maker blobs */
            }
            r->out_len = w;
            return 1;
        }
        if (marker < 0xC0 || marker == 0xD8 || len - pos < 2) {
            return 0;
        }
        seglen = be16(in + pos);
        if (seglen < 2 || seglen > len - pos) {
            return 0;
        }
        if (marker == 0xE1 && starts_with(in + pos + 2, seglen - 2, "Exif\0\0", 6)) {
            /* FFE1 len=34 "Exif" 0 0 | minimal TIFF */
            unsigned char seg[10 + EXIF_MINIMAL_LEN] = {
                0xFF, 0xE1, 0x00, 8 + EXIF_MINIMAL_LEN, 'E', 'x', 'i', 'f', 0, 0};
            unsigned int orientation = 0;

            if (!exif_seen) {
                orientation = exif_orientation(in + pos + 8, seglen - 8);
            }
            exif_seen = 1;
            /* Read before writing (out may be in); never outgrow the original. */
            if (orientation != 0 && sizeof(seg) <= pos + seglen - start) {
                exif_minimal(seg + 10, orientation);
                emit_replacement(out, &w, in, start, pos + seglen, seg, sizeof(seg), r);
            } else {
                r->removed = 1;
            }
        } else if (jpeg_keep_segment(marker, in + pos + 2, seglen - 2)) {
            emit(out, &w, in, start, pos + seglen - start);
        } else {
            r->removed = 1;
        }
        pos += seglen;
        if (marker != 0xDA) {
            continue;
        }
        /* Entropy-coded data: up to the FF of the next real marker. */
        start = pos;
        for (;;) {
            const unsigned char *ff = memchr(in + pos, 0xFF, len - pos);
            apr_size_t k;
            unsigned int next;

            if (ff == NULL) {
                return 0;
            }
            k = (apr_size_t)(ff - in);
            if (len - k < 2) {
                return 0;
            }
            next = in[k + 1];
            if (next == 0x00 || (next >= 0xD0 && next <= 0xD7)) {
                pos = k + 2;
            } else if (next == 0xFF) {
                pos = k + 1;
            } else {
                pos = k;
                break;
            }
        }
        emit(out, &w, in, start, pos - start);
    }
}

/* PNG chunks that carry metadata rather than pixels or their colours. */
static int png_drop_chunk(const unsigned char *type)
{
    return memcmp(type, "eXIf", 4) == 0 || memcmp(type, "tEXt", 4) == 0 ||
           memcmp(type, "zTXt", 4) == 0 || memcmp(type, "iTXt", 4) == 0 ||
           memcmp(type, "tIME", 4) == 0;
}

/*   signature(8) | len(4 BE) type(4) data(len) crc(4) | ... | IEND */
static int strip_png(const unsigned char *in, apr_size_t len, unsigned char *out, strip_result *r)
{
    apr_size_t pos = 8;
    apr_size_t w = 0;
    int exif_seen = 0;

    emit(out, &w, in, 0, 8);
    for (;;) {
        apr_uint32_t clen;
        apr_size_t total;
        const unsigned char *type;
        int iend;

        if (pos > len || len - pos < 12) {
            return 0;
        }
        clen = be32(in + pos);
        if (clen > 0x7FFFFFFFu || clen > len - pos - 12) {
            return 0;
        }
        type = in + pos + 4;
        total = 12 + (apr_size_t)clen;
        /* Decide before copying: with out == in the copy moves these bytes. */
        iend = memcmp(type, "IEND", 4) == 0;
        if (memcmp(type, "eXIf", 4) == 0 && !exif_seen) {
            /* len=26 "eXIf" minimal TIFF crc */
            unsigned char chunk[12 + EXIF_MINIMAL_LEN] = {0,   0,   0,   EXIF_MINIMAL_LEN,
                                                          'e', 'X', 'I', 'f'};
            unsigned int orientation = exif_orientation(type + 4, clen);

            exif_seen = 1;
            if (orientation != 0 && sizeof(chunk) <= total) {
                exif_minimal(chunk + 8, orientation);
                put_be32(chunk + 8 + EXIF_MINIMAL_LEN, png_crc(chunk + 4, 4 + EXIF_MINIMAL_LEN));
                emit_replacement(out, &w, in, pos, pos + total, chunk, sizeof(chunk), r);
            } else {
                r->removed = 1;
            }
        } else if (png_drop_chunk(type)) {
            r->removed = 1;
        } else {
            emit(out, &w, in, pos, total);
        }
        pos += total;
        if (iend) {
            if (pos < len) {
                r->removed = 1;
            }
            r->out_len = w;
            return 1;
        }
    }
}

/* VP8X flags (first payload byte): EXIF 0x08, XMP 0x04. */
#define WEBP_VP8X_EXIF 0x08u
#define WEBP_VP8X_XMP 0x04u

/*
 *   "RIFF" size(4 LE) "WEBP" | fourcc(4) csize(4 LE) data(csize) [pad] | ...
 * A simple file (VP8/VP8L first) is that one image chunk: whatever follows
 * it inside the RIFF is not image data and goes. An extended file (VP8X
 * first) loses its EXIF and "XMP " chunks and the matching flags.
 */
static int strip_webp(const unsigned char *in, apr_size_t len, unsigned char *out, strip_result *r)
{
    apr_uint32_t riff;
    apr_size_t end;
    apr_size_t pos = 12;
    apr_size_t w = 0;
    apr_size_t vp8x = 0; /* offset in out of the VP8X flags byte, 0 when none */
    int first = 1;
    int exif_seen = 0;
    int exif_kept = 0;

    if (len < 12) {
        return 0;
    }
    riff = le32(in + 4);
    if ((apr_uint64_t)riff + 8 > len || riff < 4 + 8) {
        return 0;
    }
    end = (apr_size_t)riff + 8;
    emit(out, &w, in, 0, 12);
    while (pos < end) {
        const unsigned char *cc = in + pos;
        apr_uint32_t csize;
        apr_size_t total;

        if (end - pos < 8) {
            return 0;
        }
        csize = le32(in + pos + 4);
        if (csize > end - pos - 8) {
            return 0;
        }
        total = 8 + (apr_size_t)csize;
        if ((csize & 1) && end - pos > total) {
            total++;
        }
        if (memcmp(cc, "EXIF", 4) == 0 || memcmp(cc, "XMP ", 4) == 0) {
            if (first) {
                return 0;
            }
            if (cc[0] == 'E' && !exif_seen) {
                /* "EXIF" size=26 minimal TIFF; some writers put "Exif\0\0" first */
                unsigned char chunk[8 + EXIF_MINIMAL_LEN] = {'E', 'X', 'I', 'F', EXIF_MINIMAL_LEN,
                                                             0,   0,   0};
                const unsigned char *d = in + pos + 8;
                apr_size_t dn = csize;
                unsigned int orientation;

                if (starts_with(d, dn, "Exif\0\0", 6)) {
                    d += 6;
                    dn -= 6;
                }
                orientation = exif_orientation(d, dn);
                exif_seen = 1;
                if (orientation != 0 && sizeof(chunk) <= total) {
                    exif_minimal(chunk + 8, orientation);
                    emit_replacement(out, &w, in, pos, pos + total, chunk, sizeof(chunk), r);
                    exif_kept = 1;
                } else {
                    r->removed = 1;
                }
            } else {
                r->removed = 1;
            }
        } else {
            if (memcmp(cc, "VP8X", 4) == 0) {
                if (!first || csize < 10) {
                    return 0;
                }
                vp8x = w + 8;
            }
            emit(out, &w, in, pos, total);
            if (first && vp8x == 0) {
                /* Simple format: the image chunk is the whole picture. */
                if (end - pos > total) {
                    r->removed = 1;
                }
                first = 0;
                break;
            }
        }
        first = 0;
        pos += total;
    }
    if (first) {
        return 0;
    }
    if (end < len) {
        r->removed = 1;
    }
    if (r->removed) {
        if (vp8x != 0) {
            out[vp8x] &= (unsigned char)~(WEBP_VP8X_EXIF | WEBP_VP8X_XMP);
            if (exif_kept) {
                out[vp8x] |= WEBP_VP8X_EXIF;
            }
        }
        put_le32(out + 4, (apr_uint32_t)(w - 8));
    }
    r->out_len = w;
    return 1;
}

/*
 *   header(6) screen(7) [GCT] | 21 label sub-blocks 00 | 2C descriptor [LCT] lzw
 *   sub-blocks 00 | ... | 3B
 * Application extension: 21 FF 0B identifier(8) authentication(3) ...
 */
static int strip_gif(const unsigned char *in, apr_size_t len, unsigned char *out, strip_result *r)
{
    apr_size_t pos = 13;
    apr_size_t w = 0;

    if (len < 13) {
        return 0;
    }
    if (in[10] & 0x80) {
        apr_size_t gct = (apr_size_t)3 << ((in[10] & 7) + 1);

        if (gct > len - pos) {
            return 0;
        }
        pos += gct;
    }
    emit(out, &w, in, 0, pos);
    for (;;) {
        apr_size_t start = pos;
        unsigned int block;

        if (pos >= len) {
            return 0;
        }
        block = in[pos++];
        if (block == 0x3B) {
            emit(out, &w, in, start, 1);
            if (pos < len) {
                r->removed = 1;
            }
            r->out_len = w;
            return 1;
        } else if (block == 0x21) {
            unsigned int label;
            int keep = 1;

            if (pos >= len) {
                return 0;
            }
            label = in[pos++];
            if (!imgstore_gif_skip_sub_blocks(in, len, &pos)) {
                return 0;
            }
            if (label == 0xFE) {
                keep = 0;
            } else if (label == 0xFF) {
                /* start + 2 is the first sub-block's size, in bounds: the
                 * sub-blocks were walked. */
                keep = in[start + 2] == 11 && (memcmp(in + start + 3, "NETSCAPE2.0", 11) == 0 ||
                                               memcmp(in + start + 3, "ANIMEXTS1.0", 11) == 0);
            }
            if (keep) {
                emit(out, &w, in, start, pos - start);
            } else {
                r->removed = 1;
            }
        } else if (block == 0x2C) {
            unsigned int flags;

            if (len - pos < 9) {
                return 0;
            }
            flags = in[pos + 8];
            pos += 9;
            if (flags & 0x80) {
                apr_size_t lct = (apr_size_t)3 << ((flags & 7) + 1);

                if (lct > len - pos) {
                    return 0;
                }
                pos += lct;
            }
            if (pos >= len) {
                return 0;
            }
            pos++; /* LZW minimum code size */
            if (!imgstore_gif_skip_sub_blocks(in, len, &pos)) {
                return 0;
            }
            emit(out, &w, in, start, pos - start);
        } else {
            return 0;
        }
    }
}

imgstore_strip_e imgstore_strip(imgstore_type_e type, const unsigned char *in, apr_size_t len,
                                unsigned char *out, apr_size_t *out_len)
{
    strip_result r = {0, 0};
    int ok;

    *out_len = 0;
    if (in == NULL || out == NULL || type == IMGSTORE_TYPE_NONE || type == IMGSTORE_TYPE_SVG ||
        imgstore_sniff(in, len) != type) {
        return IMGSTORE_STRIP_MALFORMED;
    }
    switch (type) {
        case IMGSTORE_TYPE_JPEG:
            ok = strip_jpeg(in, len, out, &r);
            break;
        case IMGSTORE_TYPE_PNG:
            ok = strip_png(in, len, out, &r);
            break;
        case IMGSTORE_TYPE_WEBP:
            ok = strip_webp(in, len, out, &r);
            break;
        case IMGSTORE_TYPE_GIF:
            ok = strip_gif(in, len, out, &r);
            break;
        default: /* AVIF, BMP */
            if (out != in) {
                memcpy(out, in, len);
            }
            *out_len = len;
            return type == IMGSTORE_TYPE_AVIF ? IMGSTORE_STRIP_UNSUPPORTED
                                              : IMGSTORE_STRIP_UNCHANGED;
    }
    /* Nothing removed means every byte was copied where it was. */
    if (!ok || r.out_len > len || (!r.removed && r.out_len != len) ||
        imgstore_sniff(out, r.out_len) != type) {
        return IMGSTORE_STRIP_MALFORMED;
    }
    *out_len = r.out_len;
    return r.removed ? IMGSTORE_STRIP_STRIPPED : IMGSTORE_STRIP_UNCHANGED;
}

const char *imgstore_strip_name(imgstore_strip_e status)
{
    static const char *const names[] = {"stripped", "unchanged", "unsupported", "malformed"};

    if ((int)status < 0 || (int)status >= (int)(sizeof(names) / sizeof(names[0]))) {
        return NULL;
    }
    return names[status];
}
