#!/usr/bin/env python3
"""Writes a damaged copy of a GGUF file, for the importer's error tests.

  gguf_mutate.py IN OUT MODE [ARG]
MODE: truncate BYTES | magic | version N | tensor-type TYPE (first tensor) |
      tensor-offset (first tensor's offset pushed past the end) |
      string KEY VALUE (replace a string metadata value) | kv-count N |
      empty
A small GGUF walker of its own (no llmc code, no gguf package).
"""
import struct
import sys

src, dst, mode = sys.argv[1], sys.argv[2], sys.argv[3]
args = sys.argv[4:]
b = bytearray(open(src, "rb").read())

SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}


def walk():
    """Offsets of: each kv (key, value type pos, value pos, end), tensor infos."""
    p = 24
    n_tensors, n_kv = struct.unpack_from("<QQ", b, 8)
    kvs = []
    for _ in range(n_kv):
        (klen,) = struct.unpack_from("<Q", b, p)
        key = bytes(b[p + 8:p + 8 + klen]).decode()
        p += 8 + klen
        (t,) = struct.unpack_from("<I", b, p)
        vpos = p + 4
        p = vpos
        if t == 8:
            (slen,) = struct.unpack_from("<Q", b, p)
            p += 8 + slen
        elif t == 9:
            et, n = struct.unpack_from("<IQ", b, p)
            p += 12
            for _ in range(n):
                if et == 8:
                    (slen,) = struct.unpack_from("<Q", b, p)
                    p += 8 + slen
                else:
                    p += SIZES[et]
        else:
            p += SIZES[t]
        kvs.append((key, t, vpos, p))
    tensors = []
    for _ in range(n_tensors):
        (nlen,) = struct.unpack_from("<Q", b, p)
        p += 8 + nlen
        (nd,) = struct.unpack_from("<I", b, p)
        p += 4 + 8 * nd
        tensors.append(p)  # position of the type field; offset follows
        p += 12
    return kvs, tensors


if mode == "truncate":
    b = b[:int(args[0])]
elif mode == "empty":
    b = bytearray()
elif mode == "magic":
    b[0:4] = b"GGML"
elif mode == "version":
    struct.pack_into("<I", b, 4, int(args[0]))
elif mode == "kv-count":
    struct.pack_into("<Q", b, 16, int(args[0]))
elif mode == "tensor-type":
    _, tensors = walk()
    struct.pack_into("<I", b, tensors[0], int(args[0]))
elif mode == "tensor-offset":
    _, tensors = walk()
    struct.pack_into("<Q", b, tensors[0] + 4, (len(b) // 32 + 1) * 32)
elif mode == "string":
    kvs, _ = walk()
    key, value = args
    for k, t, vpos, end in kvs:
        if k == key:
            assert t == 8, "not a string"
            v = value.encode()
            b[vpos:end] = struct.pack("<Q", len(v)) + v
            break
    else:
        sys.exit("no key " + key)
    # Keep the data section aligned: pad the header by the size change.
    kvs2, tensors = walk()
    end_of_infos = tensors[-1] + 12 if tensors else kvs2[-1][3]
    old_len = len(open(src, "rb").read())
    delta = len(b) - old_len
    pad = (-delta) % 32
    b[end_of_infos:end_of_infos] = b"\0" * pad
else:
    sys.exit("unknown mode " + mode)
open(dst, "wb").write(b)
