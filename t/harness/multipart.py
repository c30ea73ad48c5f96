"""The one multipart/form-data builder: from whole forms down to hand-made parts with
raw header lines, for the ordinary and the hostile tests alike."""
import os

CRLF = b"\r\n"


def new_boundary():
    return "hostile" + os.urandom(10).hex()


def part(boundary, header_lines, data):
    """One part: the delimiter line, the given raw header lines (bytes, each without its
    line ending, joined with CRLF), the blank line and the data, without the CRLF that
    belongs to the next delimiter."""
    b = boundary.encode() if isinstance(boundary, str) else boundary
    return b"--" + b + CRLF + b"".join(h + CRLF for h in header_lines) + CRLF + data


def form(boundary, parts, close=True):
    """Parts (from part()) joined by CRLF delimiters, with the close delimiter."""
    b = boundary.encode() if isinstance(boundary, str) else boundary
    body = CRLF.join(parts)
    if close:
        body += CRLF + b"--" + b + b"--" + CRLF
    return body


def file_part(boundary, data, name=b"file", filename=b"x.bin",
              ctype=b"application/octet-stream"):
    disp = b'Content-Disposition: form-data; name="' + name + b'"'
    if filename is not None:
        disp += b'; filename="' + filename + b'"'
    lines = [disp]
    if ctype is not None:
        lines.append(b"Content-Type: " + ctype)
    return part(boundary, lines, data)


def one_file(data, boundary=None, **kw):
    """(body, content type) of a form holding one file part."""
    boundary = boundary or new_boundary()
    return (form(boundary, [file_part(boundary, data, **kw)]),
            "multipart/form-data; boundary=" + boundary)


def multipart(parts, boundary=None):
    """A form from (name, filename or None, content type or None, bytes) tuples; returns
    (body, Content-Type header value)."""
    boundary = boundary or new_boundary()
    body = form(boundary, [file_part(boundary, data, name=name.encode(),
                                     filename=None if fn is None else fn.encode(),
                                     ctype=None if not ct else ct.encode())
                           for name, fn, ct, data in parts])
    return body, "multipart/form-data; boundary=%s" % boundary
