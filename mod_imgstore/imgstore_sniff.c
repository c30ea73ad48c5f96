/*
 * Image type detection from the bytes alone. A magic number is not enough:
 * each format's container structure is walked to its end marker so that a
 * truncated upload, or a polyglot that only starts like an image, is refused.
 *
 * Every read is preceded by a bounds check written as "need <= len - pos"
 * (pos <= len always holds), never "pos + need <= len", so that sizes taken
 * from the file cannot wrap the arithmetic on 32- or 64-bit builds.
 * Core unit: libc + APR only.
 */
#include <string.h>

#include "imgstore_bytes.h"
#include "imgstore_sniff.h"

/* How far into an XML document to look for an <svg> element. */
#define SVG_SCAN_LIMIT 4096

/* Case-insensitive prefix test; the locale must not change what we accept. */
static int has_prefix_ci(const unsigned char *p, apr_size_t len, const char *prefix)
{
    apr_size_t n = strlen(prefix);

    return len >= n && imgstore_ascii_caseeq(p, n, prefix);
}

/*
 * PNG: signature, then chunks; IHDR first (13 bytes), at least one IDAT,
 * and IEND (empty) last.
 *
 *   89 'PNG' 0D 0A 1A 0A | len(4 BE) type(4) data(len) crc(4) | ... | 0 'IEND' crc
 */
static imgstore_type_e sniff_png(const unsigned char *buf, apr_size_t len)
{
    apr_size_t pos = 8;
    int first = 1;
    int seen_idat = 0;

    for (;;) {
        const unsigned char *type;
        apr_uint32_t clen;
        int i;

        if (len - pos < 12) {
            return IMGSTORE_TYPE_NONE;
        }
        clen = imgstore_be32(buf + pos);
        type = buf + pos + 4;
        /* The spec caps chunk lengths at 2^31-1; also the chunk must fit. */
        if (clen > 0x7FFFFFFFu || clen > len - pos - 12) {
            return IMGSTORE_TYPE_NONE;
        }
        for (i = 0; i < 4; i++) {
            if (!imgstore_ascii_alpha(type[i])) {
                return IMGSTORE_TYPE_NONE;
            }
        }
        if (first) {
            if (memcmp(type, "IHDR", 4) != 0 || clen != 13) {
                return IMGSTORE_TYPE_NONE;
            }
            /* Zero width or height is forbidden by the spec. */
            if (imgstore_be32(type + 4) == 0 || imgstore_be32(type + 8) == 0) {
                return IMGSTORE_TYPE_NONE;
            }
            first = 0;
        } else if (memcmp(type, "IHDR", 4) == 0) {
            return IMGSTORE_TYPE_NONE;
        } else if (memcmp(type, "IDAT", 4) == 0) {
            seen_idat = 1;
        } else if (memcmp(type, "IEND", 4) == 0) {
            return (clen == 0 && seen_idat) ? IMGSTORE_TYPE_PNG : IMGSTORE_TYPE_NONE;
        }
        pos += 12 + (apr_size_t)clen;
    }
}

/* SOFn frame headers; C4 (DHT), C8 (JPG) and CC (DAC) share the range. */
static int jpeg_is_sof(unsigned int m)
{
    return m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
}

/*
 * JPEG: SOI, then marker segments, each with a length that includes itself;
 * a frame header must precede the first scan. After SOS comes entropy-coded
 * data in which FF is followed by 00 (stuffing), D0-D7 (restart), more FF
 * (fill), D9 (EOI, done) or the next marker (progressive: DHT, SOS, ...).
 *
 *   FFD8 | FF m len(2 BE) payload(len-2) | ... | FFDA len hdr | data | FFD9
 */
static imgstore_type_e sniff_jpeg(const unsigned char *buf, apr_size_t len)
{
    apr_size_t pos = 2;
    int seen_frame = 0;

    for (;;) {
        unsigned int marker;
        apr_size_t seglen;

        if (pos >= len || buf[pos] != 0xFF) {
            return IMGSTORE_TYPE_NONE;
        }
        while (pos < len && buf[pos] == 0xFF) {
            pos++;
        }
        if (pos >= len) {
            return IMGSTORE_TYPE_NONE;
        }
        marker = buf[pos++];
        if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) {
            continue; /* TEM and RSTn stand alone */
        }
        /* 00 is not a marker, 02-BF are reserved, a second SOI is nonsense
         * and EOI before any scan means there is no picture. */
        if (marker < 0xC0 || marker == 0xD8 || marker == 0xD9) {
            return IMGSTORE_TYPE_NONE;
        }
        if (len - pos < 2) {
            return IMGSTORE_TYPE_NONE;
        }
        seglen = imgstore_be16(buf + pos);
        if (seglen < 2 || seglen > len - pos) {
            return IMGSTORE_TYPE_NONE;
        }
        if (jpeg_is_sof(marker)) {
            if (seglen < 8) {
                return IMGSTORE_TYPE_NONE;
            }
            seen_frame = 1;
        }
        pos += seglen;
        if (marker != 0xDA) {
            continue;
        }
        if (!seen_frame) {
            return IMGSTORE_TYPE_NONE;
        }
        for (;;) {
            const unsigned char *ff = memchr(buf + pos, 0xFF, len - pos);
            unsigned int next;

            if (ff == NULL) {
                return IMGSTORE_TYPE_NONE;
            }
            pos = (apr_size_t)(ff - buf) + 1;
            if (pos >= len) {
                return IMGSTORE_TYPE_NONE;
            }
            next = buf[pos];
            if (next == 0xD9) {
                return IMGSTORE_TYPE_JPEG;
            }
            if (next == 0x00 || (next >= 0xD0 && next <= 0xD7)) {
                pos++;
            } else if (next != 0xFF) {
                pos--; /* a real marker: hand it back to the segment walk */
                break;
            }
        }
    }
}

int imgstore_gif_skip_sub_blocks(const unsigned char *buf, apr_size_t len, apr_size_t *pos)
{
    apr_size_t p = *pos;

    for (;;) {
        apr_size_t n;

        if (p >= len) {
            return 0;
        }
        n = buf[p++];
        if (n == 0) {
            *pos = p;
            return 1;
        }
        if (n > len - p) {
            return 0;
        }
        p += n;
    }
}

/*
 * GIF: header, logical screen descriptor, optional global colour table, then
 * blocks up to the trailer. At least one image is required: a "GIF89a"
 * followed by HTML must not pass merely because of its first six bytes.
 *
 *   "GIF89a" | w(2) h(2) flags bg aspect | [GCT 3*2^(n+1)] |
 *   21 label sub-blocks... 00 | 2C x y w h flags [LCT] lzw sub-blocks... 00 | 3B
 */
static imgstore_type_e sniff_gif(const unsigned char *buf, apr_size_t len)
{
    apr_size_t pos = 13;
    int images = 0;

    if (len < 13) {
        return IMGSTORE_TYPE_NONE;
    }
    if (buf[10] & 0x80) {
        apr_size_t gct = (apr_size_t)3 << ((buf[10] & 7) + 1);

        if (gct > len - pos) {
            return IMGSTORE_TYPE_NONE;
        }
        pos += gct;
    }
    for (;;) {
        unsigned int block;

        if (pos >= len) {
            return IMGSTORE_TYPE_NONE;
        }
        block = buf[pos++];
        if (block == 0x3B) {
            return images ? IMGSTORE_TYPE_GIF : IMGSTORE_TYPE_NONE;
        } else if (block == 0x21) {
            if (pos >= len) {
                return IMGSTORE_TYPE_NONE;
            }
            pos++; /* label */
            if (!imgstore_gif_skip_sub_blocks(buf, len, &pos)) {
                return IMGSTORE_TYPE_NONE;
            }
        } else if (block == 0x2C) {
            unsigned int flags;
            unsigned int lzw;

            if (len - pos < 9) {
                return IMGSTORE_TYPE_NONE;
            }
            flags = buf[pos + 8];
            pos += 9;
            if (flags & 0x80) {
                apr_size_t lct = (apr_size_t)3 << ((flags & 7) + 1);

                if (lct > len - pos) {
                    return IMGSTORE_TYPE_NONE;
                }
                pos += lct;
            }
            if (pos >= len) {
                return IMGSTORE_TYPE_NONE;
            }
            /* Codes are at most 12 bits wide, so the minimum code size is
             * at most 11; 0 is meaningless. */
            lzw = buf[pos++];
            if (lzw < 1 || lzw > 11) {
                return IMGSTORE_TYPE_NONE;
            }
            if (!imgstore_gif_skip_sub_blocks(buf, len, &pos)) {
                return IMGSTORE_TYPE_NONE;
            }
            images++;
        } else {
            return IMGSTORE_TYPE_NONE;
        }
    }
}

/*
 * WebP: a RIFF container that must fit in the buffer. The first chunk is
 * the simple lossy (VP8), lossless (VP8L) or extended (VP8X) header; an
 * extended file must also carry image data (VP8/VP8L/ANMF) somewhere.
 *
 *   "RIFF" size(4 LE) "WEBP" | fourcc(4) csize(4 LE) data(csize) [pad] | ...
 *   <------ 8 ------>  <---------------- size bytes ------------------->
 */
static imgstore_type_e sniff_webp(const unsigned char *buf, apr_size_t len)
{
    apr_uint32_t riff = imgstore_le32(buf + 4);
    apr_size_t end;
    apr_size_t pos = 12;
    int extended = 0;
    int seen_image = 0;
    int first = 1;

    if ((apr_uint64_t)riff + 8 > len || riff < 4 + 8) {
        return IMGSTORE_TYPE_NONE;
    }
    end = (apr_size_t)riff + 8;
    while (pos < end) {
        const unsigned char *cc;
        const unsigned char *data;
        apr_uint32_t csize;

        if (end - pos < 8) {
            return IMGSTORE_TYPE_NONE;
        }
        cc = buf + pos;
        csize = imgstore_le32(buf + pos + 4);
        data = buf + pos + 8;
        if (csize > end - pos - 8) {
            return IMGSTORE_TYPE_NONE;
        }
        if (memcmp(cc, "VP8 ", 4) == 0) {
            /* frame tag (3), then the key frame start code 9D 01 2A */
            if (csize < 10 || (data[0] & 1) != 0 || data[3] != 0x9D || data[4] != 0x01 ||
                data[5] != 0x2A) {
                return IMGSTORE_TYPE_NONE;
            }
            seen_image = 1;
        } else if (memcmp(cc, "VP8L", 4) == 0) {
            if (csize < 5 || data[0] != 0x2F) {
                return IMGSTORE_TYPE_NONE;
            }
            seen_image = 1;
        } else if (memcmp(cc, "VP8X", 4) == 0) {
            if (!first || csize < 10) {
                return IMGSTORE_TYPE_NONE;
            }
            extended = 1;
        } else if (first) {
            return IMGSTORE_TYPE_NONE;
        } else if (memcmp(cc, "ANMF", 4) == 0) {
            seen_image = 1;
        }
        if (seen_image && !extended) {
            /* A simple file is a single image chunk; anything after it
             * inside the RIFF is metadata at most. */
            return IMGSTORE_TYPE_WEBP;
        }
        first = 0;
        pos += 8 + (apr_size_t)csize;
        /* Chunks are padded to even sizes; some writers omit the final pad. */
        if ((csize & 1) && pos < end) {
            pos++;
        }
    }
    return seen_image ? IMGSTORE_TYPE_WEBP : IMGSTORE_TYPE_NONE;
}

/* One ISO-BMFF box inside [pos, end): header length and the box's end. */
typedef struct {
    unsigned char type[4];
    apr_size_t body; /* offset of the payload */
    apr_size_t end;  /* offset just past the box */
} bmff_box;

/*
 *   size(4 BE) type(4) [largesize(8 BE) when size == 1] payload
 *   size 0: the box runs to the end of its container.
 */
static int bmff_read_box(const unsigned char *buf, apr_size_t pos, apr_size_t end, bmff_box *box)
{
    apr_size_t avail = end - pos;
    apr_size_t hdr = 8;
    apr_uint64_t size;

    if (avail < 8) {
        return 0;
    }
    size = imgstore_be32(buf + pos);
    memcpy(box->type, buf + pos + 4, 4);
    if (size == 1) {
        if (avail < 16) {
            return 0;
        }
        size = imgstore_be64(buf + pos + 8);
        hdr = 16;
    } else if (size == 0) {
        size = avail;
    }
    if (size < hdr || size > avail) {
        return 0;
    }
    box->body = pos + hdr;
    box->end = pos + (apr_size_t)size;
    return 1;
}

/* An unsigned field of 0, 4 or 8 bytes at *p, which must fit before end. */
static int bmff_read_uint(const unsigned char *buf, apr_size_t *p, apr_size_t end,
                          unsigned int size, apr_uint64_t *v)
{
    if (size > end - *p) {
        return 0;
    }
    *v = size == 8   ? imgstore_be64(buf + *p)
         : size == 4 ? imgstore_be32(buf + *p)
         : size == 2 ? imgstore_be16(buf + *p)
                     : 0;
    *p += size;
    return 1;
}

/* Whether [base+off, base+off+len) lies in [0, limit); len 0 means "to the end". */
static int bmff_extent_fits(apr_uint64_t base, apr_uint64_t off, apr_uint64_t elen,
                            apr_uint64_t limit)
{
    if (off > limit || base > limit - off) {
        return 0;
    }
    return elen <= limit - off - base;
}

/*
 * iloc: every item extent must lie inside the file (construction method 0)
 * or inside idat (method 1). This catches a file cut on a box boundary,
 * say right after meta: no box overruns the end, but the pixels are gone.
 *
 *   ver(1) flags(3) | offset_size:4 length_size:4 base_offset_size:4 index_size:4
 *   item_count(2 | 4 in v2) | per item: id(2 | 4) [rsv:12 method:4 in v1/v2]
 *   dref(2) base_offset(base_offset_size) extent_count(2)
 *   per extent: [index(index_size)] offset(offset_size) length(length_size)
 */
static int bmff_check_iloc(const unsigned char *buf, apr_size_t len, const bmff_box *iloc,
                           apr_uint64_t idat_size)
{
    apr_size_t p = iloc->body;
    apr_size_t end = iloc->end;
    unsigned int version, off_size, len_size, base_size, idx_size;
    apr_uint64_t count, i, v;

    if (end - p < 6) {
        return 0;
    }
    version = buf[p];
    if (version > 2) {
        return 0;
    }
    off_size = buf[p + 4] >> 4;
    len_size = buf[p + 4] & 15;
    base_size = buf[p + 5] >> 4;
    idx_size = version >= 1 ? (buf[p + 5] & 15u) : 0;
    p += 6;
    if ((off_size != 0 && off_size != 4 && off_size != 8) ||
        (len_size != 0 && len_size != 4 && len_size != 8) ||
        (base_size != 0 && base_size != 4 && base_size != 8) ||
        (idx_size != 0 && idx_size != 4 && idx_size != 8)) {
        return 0;
    }
    if (!bmff_read_uint(buf, &p, end, version < 2 ? 2 : 4, &count)) {
        return 0;
    }
    for (i = 0; i < count; i++) {
        apr_uint64_t method = 0, base, extents, e, off, elen, limit;
        unsigned int per_extent = idx_size + off_size + len_size;

        if (!bmff_read_uint(buf, &p, end, version < 2 ? 2 : 4, &v)) {
            return 0;
        }
        if (version >= 1) {
            if (!bmff_read_uint(buf, &p, end, 2, &method)) {
                return 0;
            }
            method &= 15;
        }
        if (!bmff_read_uint(buf, &p, end, 2, &v) ||
            !bmff_read_uint(buf, &p, end, base_size, &base) ||
            !bmff_read_uint(buf, &p, end, 2, &extents)) {
            return 0;
        }
        if (method == 0) {
            limit = len;
        } else if (method == 1) {
            limit = idat_size;
        } else {
            limit = 0; /* item-relative offsets: nothing to check here */
        }
        /* Zero-width extents are all the same extent; checking each of up
         * to 65535 of them per item would let a small file burn CPU. */
        if (per_extent == 0 && extents > 1) {
            extents = 1;
        }
        for (e = 0; e < extents; e++) {
            if (!bmff_read_uint(buf, &p, end, idx_size, &v) ||
                !bmff_read_uint(buf, &p, end, off_size, &off) ||
                !bmff_read_uint(buf, &p, end, len_size, &elen)) {
                return 0;
            }
            if (method <= 1 && !bmff_extent_fits(base, off, elen, limit)) {
                return 0;
            }
        }
    }
    return 1;
}

/* meta is a FullBox whose children must include hdlr 'pict' and iloc. */
static int bmff_check_meta(const unsigned char *buf, apr_size_t len, const bmff_box *meta)
{
    apr_size_t pos = meta->body;
    bmff_box box;
    bmff_box iloc = {{0}, 0, 0};
    apr_uint64_t idat_size = 0;
    int seen_pict = 0, seen_iloc = 0;

    if (meta->end - pos < 4) {
        return 0;
    }
    pos += 4;
    while (pos < meta->end) {
        if (!bmff_read_box(buf, pos, meta->end, &box)) {
            return 0;
        }
        /* hdlr: version/flags(4) pre_defined(4) handler_type(4) */
        if (memcmp(box.type, "hdlr", 4) == 0 && box.end - box.body >= 12 &&
            memcmp(buf + box.body + 8, "pict", 4) == 0) {
            seen_pict = 1;
        } else if (memcmp(box.type, "iloc", 4) == 0) {
            if (seen_iloc) {
                return 0;
            }
            iloc = box;
            seen_iloc = 1;
        } else if (memcmp(box.type, "idat", 4) == 0) {
            idat_size = box.end - box.body;
        }
        pos = box.end;
    }
    return seen_pict && seen_iloc && bmff_check_iloc(buf, len, &iloc, idat_size);
}

/*
 * AVIF: ISO-BMFF whose first box is ftyp naming avif/avis as major or
 * compatible brand; all top-level boxes must fit, and a valid meta is needed.
 *
 *   ftyp: major(4) minor_version(4) compatible(4)*n
 */
static imgstore_type_e sniff_avif(const unsigned char *buf, apr_size_t len)
{
    bmff_box box;
    apr_size_t pos, p;
    int brand = 0, seen_meta = 0;

    if (!bmff_read_box(buf, 0, len, &box) || memcmp(box.type, "ftyp", 4) != 0 ||
        box.end - box.body < 8) {
        return IMGSTORE_TYPE_NONE;
    }
    for (p = box.body; box.end - p >= 4; p += (p == box.body) ? 8 : 4) {
        if (memcmp(buf + p, "avif", 4) == 0 || memcmp(buf + p, "avis", 4) == 0) {
            brand = 1;
        }
    }
    if (!brand) {
        return IMGSTORE_TYPE_NONE;
    }
    for (pos = box.end; pos < len; pos = box.end) {
        if (!bmff_read_box(buf, pos, len, &box)) {
            return IMGSTORE_TYPE_NONE;
        }
        if (memcmp(box.type, "meta", 4) == 0) {
            if (seen_meta || !bmff_check_meta(buf, len, &box)) {
                return IMGSTORE_TYPE_NONE;
            }
            seen_meta = 1;
        }
    }
    return seen_meta ? IMGSTORE_TYPE_AVIF : IMGSTORE_TYPE_NONE;
}

/*
 * BMP: file header, then a DIB header of a known size. The file-size field
 * must cover the headers and fit in the buffer, the pixel data must start
 * inside it and, when uncompressed, the rows must fit before its end.
 *
 *   "BM" file_size(4) reserved(4) data_offset(4) | dib_size(4) ...
 *   core (12): w(2) h(2) planes(2) bpp(2)
 *   info (40+): w(4, signed) h(4, signed, < 0: top-down) planes(2) bpp(2) compression(4)
 */
static imgstore_type_e sniff_bmp(const unsigned char *buf, apr_size_t len)
{
    apr_uint32_t file_size, data_off, dib, planes, bpp, comp;
    apr_uint64_t width, height, stride, rowbytes, avail;

    if (len < 18) {
        return IMGSTORE_TYPE_NONE;
    }
    file_size = imgstore_le32(buf + 2);
    data_off = imgstore_le32(buf + 10);
    dib = imgstore_le32(buf + 14);
    if (dib != 12 && dib != 40 && dib != 52 && dib != 56 && dib != 64 && dib != 108 && dib != 124) {
        return IMGSTORE_TYPE_NONE;
    }
    if (len - 14 < dib || file_size < 14 + dib || file_size > len || data_off < 14 + dib ||
        data_off >= file_size) {
        return IMGSTORE_TYPE_NONE;
    }
    if (dib == 12) {
        width = imgstore_le16(buf + 18);
        height = imgstore_le16(buf + 20);
        planes = imgstore_le16(buf + 22);
        bpp = imgstore_le16(buf + 24);
        comp = 0;
    } else {
        apr_int32_t w = (apr_int32_t)imgstore_le32(buf + 18);
        apr_int32_t h = (apr_int32_t)imgstore_le32(buf + 22);

        if (w <= 0 || h == 0 || h == (apr_int32_t)0x80000000u) {
            return IMGSTORE_TYPE_NONE;
        }
        width = (apr_uint64_t)w;
        height = h < 0 ? (apr_uint64_t)(-(apr_int64_t)h) : (apr_uint64_t)h;
        planes = imgstore_le16(buf + 26);
        bpp = imgstore_le16(buf + 28);
        comp = imgstore_le32(buf + 30);
    }
    if (width == 0 || height == 0 || planes != 1) {
        return IMGSTORE_TYPE_NONE;
    }
    switch (comp) {
        case 0: /* BI_RGB */
            if (bpp != 1 && bpp != 2 && bpp != 4 && bpp != 8 && bpp != 16 && bpp != 24 &&
                bpp != 32) {
                return IMGSTORE_TYPE_NONE;
            }
            break;
        case 1: /* BI_RLE8 */
            return bpp == 8 ? IMGSTORE_TYPE_BMP : IMGSTORE_TYPE_NONE;
        case 2: /* BI_RLE4 */
            return bpp == 4 ? IMGSTORE_TYPE_BMP : IMGSTORE_TYPE_NONE;
        case 3: /* BI_BITFIELDS */
        case 6: /* BI_ALPHABITFIELDS */
            if (bpp != 16 && bpp != 32) {
                return IMGSTORE_TYPE_NONE;
            }
            break;
        case 4: /* BI_JPEG */
        case 5: /* BI_PNG: the embedded stream's own size is not ours to check */
            return IMGSTORE_TYPE_BMP;
        default:
            return IMGSTORE_TYPE_NONE;
    }
    /* Rows are padded to 4 bytes; tolerate a missing pad after the last. */
    rowbytes = (width * bpp + 7) / 8;
    stride = (width * bpp + 31) / 32 * 4;
    avail = file_size - data_off;
    if (rowbytes > avail || (height > 1 && stride > (avail - rowbytes) / (height - 1))) {
        return IMGSTORE_TYPE_NONE;
    }
    return IMGSTORE_TYPE_BMP;
}

static int xml_space(int c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/*
 * SVG is recognised only so that it can be refused by name: it is an XML
 * document that may carry scripts. An optional UTF-8 BOM and whitespace may
 * precede the root; an XML declaration, comment or non-HTML doctype leads
 * to a search for "<svg" in the first few KB.
 */
static imgstore_type_e sniff_svg(const unsigned char *buf, apr_size_t len)
{
    apr_size_t pos = 0;
    apr_size_t limit;

    if (len >= 3 && buf[0] == 0xEF && buf[1] == 0xBB && buf[2] == 0xBF) {
        pos = 3;
    }
    while (pos < len && xml_space(buf[pos])) {
        pos++;
    }
    if (has_prefix_ci(buf + pos, len - pos, "<svg")) {
        if (len - pos == 4 || xml_space(buf[pos + 4]) || buf[pos + 4] == '>' ||
            buf[pos + 4] == '/') {
            return IMGSTORE_TYPE_SVG;
        }
        return IMGSTORE_TYPE_NONE;
    }
    if (has_prefix_ci(buf + pos, len - pos, "<!doctype")) {
        apr_size_t p = pos + 9;

        while (p < len && xml_space(buf[p])) {
            p++;
        }
        if (has_prefix_ci(buf + p, len - p, "svg")) {
            return IMGSTORE_TYPE_SVG;
        }
        if (has_prefix_ci(buf + p, len - p, "html")) {
            return IMGSTORE_TYPE_NONE;
        }
    } else if (!has_prefix_ci(buf + pos, len - pos, "<?xml") &&
               !has_prefix_ci(buf + pos, len - pos, "<!--")) {
        return IMGSTORE_TYPE_NONE;
    }
    limit = len < SVG_SCAN_LIMIT ? len : SVG_SCAN_LIMIT;
    for (; pos < limit; pos++) {
        if (buf[pos] == '<' && has_prefix_ci(buf + pos, limit - pos, "<svg")) {
            return IMGSTORE_TYPE_SVG;
        }
    }
    return IMGSTORE_TYPE_NONE;
}

imgstore_type_e imgstore_sniff(const unsigned char *buf, apr_size_t len)
{
    static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};

    if (buf == NULL || len == 0) {
        return IMGSTORE_TYPE_NONE;
    }
    /* A matching signature commits to that format: if its structure then
     * fails, the answer is NONE, not whatever else the bytes might be. */
    if (len >= 8 && memcmp(buf, png_sig, 8) == 0) {
        return sniff_png(buf, len);
    }
    if (len >= 3 && buf[0] == 0xFF && buf[1] == 0xD8 && buf[2] == 0xFF) {
        return sniff_jpeg(buf, len);
    }
    if (len >= 6 && (memcmp(buf, "GIF87a", 6) == 0 || memcmp(buf, "GIF89a", 6) == 0)) {
        return sniff_gif(buf, len);
    }
    if (len >= 12 && memcmp(buf, "RIFF", 4) == 0 && memcmp(buf + 8, "WEBP", 4) == 0) {
        return sniff_webp(buf, len);
    }
    if (len >= 8 && memcmp(buf + 4, "ftyp", 4) == 0) {
        return sniff_avif(buf, len);
    }
    if (len >= 2 && buf[0] == 'B' && buf[1] == 'M') {
        return sniff_bmp(buf, len);
    }
    return sniff_svg(buf, len);
}

static const struct {
    const char *name;
    const char *mime;
} type_table[IMGSTORE_TYPE_COUNT] = {
    {NULL, NULL},           {"jpeg", "image/jpeg"}, {"png", "image/png"}, {"gif", "image/gif"},
    {"webp", "image/webp"}, {"avif", "image/avif"}, {"bmp", "image/bmp"}, {"svg", "image/svg+xml"},
};

const char *imgstore_type_mime(imgstore_type_e type)
{
    if ((int)type <= IMGSTORE_TYPE_NONE || (int)type >= IMGSTORE_TYPE_COUNT) {
        return NULL;
    }
    return type_table[type].mime;
}

const char *imgstore_type_name(imgstore_type_e type)
{
    if ((int)type <= IMGSTORE_TYPE_NONE || (int)type >= IMGSTORE_TYPE_COUNT) {
        return NULL;
    }
    return type_table[type].name;
}

imgstore_type_e imgstore_type_parse(const char *name)
{
    int t;

    if (name == NULL) {
        return IMGSTORE_TYPE_NONE;
    }
    if (imgstore_ascii_casecmp(name, "jpg") == 0) {
        return IMGSTORE_TYPE_JPEG;
    }
    /* SVG stays unparseable: no configuration may allow it. */
    for (t = IMGSTORE_TYPE_NONE + 1; t < IMGSTORE_TYPE_COUNT; t++) {
        if (t == IMGSTORE_TYPE_SVG) {
            continue;
        }
        if (imgstore_ascii_casecmp(name, type_table[t].name) == 0 ||
            imgstore_ascii_casecmp(name, type_table[t].mime) == 0) {
            return (imgstore_type_e)t;
        }
    }
    return IMGSTORE_TYPE_NONE;
}

imgstore_type_e imgstore_type_from_mime(const char *mime)
{
    int t;

    if (mime == NULL) {
        return IMGSTORE_TYPE_NONE;
    }
    for (t = IMGSTORE_TYPE_NONE + 1; t < IMGSTORE_TYPE_COUNT; t++) {
        if (strcmp(mime, type_table[t].mime) == 0) {
            return (imgstore_type_e)t;
        }
    }
    return IMGSTORE_TYPE_NONE;
}
