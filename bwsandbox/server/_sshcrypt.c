/* chacha20-poly1305@openssh.com for small SSH packets, in one call each
 * (issue #3 "Speed"; README "Benchmarks").
 *
 * asyncssh seals each packet with four calls into cryptography (ChaCha20 of
 * the length, of the Poly1305 key and of the payload, then Poly1305), each
 * with its Python wrapping: ~19 us to seal and ~13 us to open a small SFTP
 * request or reply, about a sixth of the server's time per request. Here the
 * whole construction (PROTOCOL.chacha20poly1305 in OpenSSH) is one C call:
 *
 *   K_2 = the first 32 bytes of the key (payload and Poly1305 key),
 *   K_1 = the last 32 bytes (the 4-byte length), nonce = the sequence number;
 *   length' = ChaCha20(K_1, nonce, counter 0) ^ length
 *   payload' = ChaCha20(K_2, nonce, counter 1) ^ payload
 *   tag = Poly1305(ChaCha20(K_2, nonce, counter 0)[:32], length' || payload')
 *
 * The ChaCha20 and Poly1305 below are the plain reference algorithms
 * (RFC 8439's quarter round and block; Poly1305 in 44-bit limbs, as in
 * poly1305-donna-64). They are only as fast as scalar C, so transport.py
 * uses them for small packets and leaves bulk data to OpenSSL; both give the
 * same bytes, which transport.py checks against asyncssh before using them.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#if !defined(__SIZEOF_INT128__)
#error "a compiler with unsigned __int128 (gcc, clang on 64-bit) is needed"
#endif
typedef unsigned __int128 u128;

static inline uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint64_t le64(const uint8_t *p) { return (uint64_t)le32(p) | ((uint64_t)le32(p + 4) << 32); }
static inline void put32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}
static inline void put64(uint8_t *p, uint64_t v) {
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}
static inline uint32_t rotl32(uint32_t x, int r) { return (x << r) | (x >> (32 - r)); }

#define QR(a, b, c, d)                                                                                         \
    a += b, d ^= a, d = rotl32(d, 16), c += d, b ^= c, b = rotl32(b, 12), a += b, d ^= a, d = rotl32(d, 8),   \
        c += d, b ^= c, b = rotl32(b, 7)

/* dst = src ^ ChaCha20(key, 8-byte nonce, 64-bit block counter from ctr); src may be NULL (keystream). */
static void chacha20(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t key[32], const uint8_t nonce[8],
                     uint64_t ctr) {
    uint32_t in[16] = {0x61707865, 0x3320646e, 0x79622d32, 0x6b206574};
    for (int i = 0; i < 8; i++) in[4 + i] = le32(key + 4 * i);
    in[14] = le32(nonce);
    in[15] = le32(nonce + 4);
    while (len) {
        uint32_t x[16];
        uint8_t block[64];
        in[12] = (uint32_t)ctr;
        in[13] = (uint32_t)(ctr >> 32);
        memcpy(x, in, sizeof x);
        for (int i = 0; i < 10; i++) {
            QR(x[0], x[4], x[8], x[12]);
            QR(x[1], x[5], x[9], x[13]);
            QR(x[2], x[6], x[10], x[14]);
            QR(x[3], x[7], x[11], x[15]);
            QR(x[0], x[5], x[10], x[15]);
            QR(x[1], x[6], x[11], x[12]);
            QR(x[2], x[7], x[8], x[13]);
            QR(x[3], x[4], x[9], x[14]);
        }
        for (int i = 0; i < 16; i++) put32(block + 4 * i, x[i] + in[i]);
        size_t n = len < 64 ? len : 64;
        for (size_t i = 0; i < n; i++) dst[i] = (uint8_t)((src ? src[i] : 0) ^ block[i]);
        dst += n;
        if (src) src += n;
        len -= n;
        ctr++;
    }
}

#define M44 0xfffffffffffULL
#define M42 0x3ffffffffffULL

/* Propagate the carries of h (44 + 44 + 42 bits, mod 2^130 - 5) once. */
static inline void carry(uint64_t *h0, uint64_t *h1, uint64_t *h2) {
    uint64_t c = *h1 >> 44;
    *h1 &= M44;
    *h2 += c;
    c = *h2 >> 42;
    *h2 &= M42;
    *h0 += c * 5;
    c = *h0 >> 44;
    *h0 &= M44;
    *h1 += c;
}

/* Poly1305 of two concatenated pieces (length || payload) with a 32-byte one-time key. */
static void poly1305(uint8_t out[16], const uint8_t *m1, size_t n1, const uint8_t *m2, size_t n2,
                     const uint8_t key[32]) {
    uint64_t t0 = le64(key), t1 = le64(key + 8);
    const uint64_t r0 = t0 & 0xffc0fffffffULL;
    const uint64_t r1 = ((t0 >> 44) | (t1 << 20)) & 0xfffffc0ffffULL;
    const uint64_t r2 = (t1 >> 24) & 0x00ffffffc0fULL;
    const uint64_t s1 = r1 * (5 << 2), s2 = r2 * (5 << 2);
    uint64_t h0 = 0, h1 = 0, h2 = 0, c;
    uint8_t block[16];
    size_t total = n1 + n2, done = 0;
    while (done < total) {
        size_t n = total - done < 16 ? total - done : 16;
        /* gather the next block across the two pieces */
        for (size_t i = 0; i < n; i++) {
            size_t at = done + i;
            block[i] = at < n1 ? m1[at] : m2[at - n1];
        }
        uint64_t hibit = (uint64_t)1 << 40;
        if (n < 16) {
            block[n] = 1;
            memset(block + n + 1, 0, 16 - n - 1);
            hibit = 0;
        }
        t0 = le64(block);
        t1 = le64(block + 8);
        h0 += t0 & M44;
        h1 += ((t0 >> 44) | (t1 << 20)) & M44;
        h2 += (((t1 >> 24)) & M42) | hibit;
        u128 d0 = (u128)h0 * r0 + (u128)h1 * s2 + (u128)h2 * s1;
        u128 d1 = (u128)h0 * r1 + (u128)h1 * r0 + (u128)h2 * s2;
        u128 d2 = (u128)h0 * r2 + (u128)h1 * r1 + (u128)h2 * r0;
        c = (uint64_t)(d0 >> 44);
        h0 = (uint64_t)d0 & M44;
        d1 += c;
        c = (uint64_t)(d1 >> 44);
        h1 = (uint64_t)d1 & M44;
        d2 += c;
        c = (uint64_t)(d2 >> 42);
        h2 = (uint64_t)d2 & M42;
        h0 += c * 5;
        c = h0 >> 44;
        h0 &= M44;
        h1 += c;
        done += n;
    }
    carry(&h0, &h1, &h2); /* twice: the first may leave a carry into h1 */
    carry(&h0, &h1, &h2);
    /* h - p, kept when h >= p */
    uint64_t g0 = h0 + 5;
    c = g0 >> 44;
    g0 &= M44;
    uint64_t g1 = h1 + c;
    c = g1 >> 44;
    g1 &= M44;
    uint64_t g2 = h2 + c - ((uint64_t)1 << 42);
    c = (g2 >> 63) - 1; /* all ones when g2 did not go negative */
    g0 &= c;
    g1 &= c;
    g2 &= c;
    c = ~c;
    h0 = (h0 & c) | g0;
    h1 = (h1 & c) | g1;
    h2 = (h2 & c) | g2;
    t0 = le64(key + 16);
    t1 = le64(key + 24);
    h0 += t0 & M44;
    c = h0 >> 44;
    h0 &= M44;
    h1 += (((t0 >> 44) | (t1 << 20)) & M44) + c;
    c = h1 >> 44;
    h1 &= M44;
    h2 += ((t1 >> 24) & M42) + c;
    h2 &= M42;
    put64(out, h0 | (h1 << 44));
    put64(out + 8, (h1 >> 20) | (h2 << 24));
}

static int get(PyObject *args, Py_buffer *key, Py_buffer *header, Py_buffer *data, Py_buffer *nonce,
               const char *fmt) {
    if (!PyArg_ParseTuple(args, fmt, key, header, data, nonce)) return 0;
    if (key->len != 64 || nonce->len != 8 || header->len != 4) {
        PyBuffer_Release(key);
        PyBuffer_Release(header);
        PyBuffer_Release(data);
        PyBuffer_Release(nonce);
        PyErr_SetString(PyExc_ValueError, "key of 64 bytes, 4-byte header and 8-byte nonce expected");
        return 0;
    }
    return 1;
}

static void release(Py_buffer *a, Py_buffer *b, Py_buffer *c, Py_buffer *d) {
    PyBuffer_Release(a);
    PyBuffer_Release(b);
    PyBuffer_Release(c);
    PyBuffer_Release(d);
}

/* seal(key, header, data, nonce) -> (header' + data', tag) */
static PyObject *seal(PyObject *self, PyObject *args) {
    Py_buffer key, header, data, nonce;
    (void)self;
    if (!get(args, &key, &header, &data, &nonce, "y*y*y*y*:seal")) return NULL;
    const uint8_t *k = key.buf, *main_key = k, *len_key = k + 32;
    PyObject *ct = PyBytes_FromStringAndSize(NULL, 4 + data.len);
    PyObject *tag = PyBytes_FromStringAndSize(NULL, 16);
    if (ct && tag) {
        uint8_t *out = (uint8_t *)PyBytes_AS_STRING(ct), polykey[32];
        chacha20(out, header.buf, 4, len_key, nonce.buf, 0);
        chacha20(out + 4, data.buf, (size_t)data.len, main_key, nonce.buf, 1);
        chacha20(polykey, NULL, 32, main_key, nonce.buf, 0);
        poly1305((uint8_t *)PyBytes_AS_STRING(tag), out, 4, out + 4, (size_t)data.len, polykey);
    }
    release(&key, &header, &data, &nonce);
    if (!ct || !tag) {
        Py_XDECREF(ct);
        Py_XDECREF(tag);
        return NULL;
    }
    return Py_BuildValue("(NN)", ct, tag);
}

/* open_header(key, header, nonce) -> the decrypted 4-byte length */
static PyObject *open_header(PyObject *self, PyObject *args) {
    Py_buffer key, header, nonce;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*y*:open_header", &key, &header, &nonce)) return NULL;
    PyObject *out = NULL;
    if (key.len != 64 || nonce.len != 8) PyErr_SetString(PyExc_ValueError, "key of 64 bytes and 8-byte nonce expected");
    else if ((out = PyBytes_FromStringAndSize(NULL, header.len)) != NULL)
        chacha20((uint8_t *)PyBytes_AS_STRING(out), header.buf, (size_t)header.len, (const uint8_t *)key.buf + 32,
                 nonce.buf, 0);
    PyBuffer_Release(&key);
    PyBuffer_Release(&header);
    PyBuffer_Release(&nonce);
    return out;
}

/* open(key, header', data', nonce, tag) -> data, or None when the tag is wrong */
static PyObject *open_packet(PyObject *self, PyObject *args) {
    Py_buffer key, header, data, nonce, tag;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*:open", &key, &header, &data, &nonce, &tag)) return NULL;
    PyObject *out = NULL;
    if (key.len != 64 || nonce.len != 8 || header.len != 4 || tag.len != 16) {
        PyErr_SetString(PyExc_ValueError, "key of 64 bytes, 4-byte header, 8-byte nonce, 16-byte tag expected");
    } else {
        const uint8_t *main_key = key.buf;
        uint8_t polykey[32], want[16], diff = 0;
        chacha20(polykey, NULL, 32, main_key, nonce.buf, 0);
        poly1305(want, header.buf, 4, data.buf, (size_t)data.len, polykey);
        for (int i = 0; i < 16; i++) diff |= want[i] ^ ((const uint8_t *)tag.buf)[i]; /* constant time */
        if (diff) {
            out = Py_None;
            Py_INCREF(out);
        } else if ((out = PyBytes_FromStringAndSize(NULL, data.len)) != NULL) {
            chacha20((uint8_t *)PyBytes_AS_STRING(out), data.buf, (size_t)data.len, main_key, nonce.buf, 1);
        }
    }
    PyBuffer_Release(&key);
    PyBuffer_Release(&header);
    PyBuffer_Release(&data);
    PyBuffer_Release(&nonce);
    PyBuffer_Release(&tag);
    return out;
}

static PyMethodDef methods[] = {
    {"seal", seal, METH_VARARGS, "seal(key, header, data, nonce) -> (ciphertext, tag)"},
    {"open_header", open_header, METH_VARARGS, "open_header(key, header, nonce) -> plaintext length bytes"},
    {"open", open_packet, METH_VARARGS, "open(key, header, data, nonce, tag) -> plaintext or None"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_sshcrypt", "chacha20-poly1305@openssh.com in one call (see transport.py).", -1, methods,
};

PyMODINIT_FUNC PyInit__sshcrypt(void) { return PyModule_Create(&module); }
