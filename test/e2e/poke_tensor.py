"""Overwrites one element of a tensor in a safetensors file, in place.

    poke_tensor.py FILE TENSOR INDEX VALUE

VALUE is a number, nan or inf; it is stored in the tensor's dtype (F32, F16
or BF16). For tests of damaged checkpoints."""
import json
import struct
import sys


def main():
    path, name, index, value = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    with open(path, "r+b") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        t = header[name]
        dtype, begin = t["dtype"], t["data_offsets"][0]
        if dtype == "F32":
            raw, size = struct.pack("<f", value), 4
        elif dtype == "F16":
            raw, size = struct.pack("<e", value), 2
        elif dtype == "BF16":
            raw, size = struct.pack("<f", value)[2:], 2
        else:
            sys.exit("poke_tensor.py: dtype %s is not a float" % dtype)
        f.seek(8 + n + begin + index * size)
        f.write(raw)


if __name__ == "__main__":
    main()
