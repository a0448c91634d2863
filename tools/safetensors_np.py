"""Minimal numpy reader/writer for the safetensors format (no `safetensors` package needed).

Layout: u64 little-endian header length N, N bytes of JSON header
({name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}), then the raw
little-endian tensor bytes. Offsets are relative to the end of the header.
"""
import json
import struct

import numpy as np

_DTYPES = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}
_NAMES = {v: k for k, v in _DTYPES.items()}


def read_safetensors(path):
    """Read a safetensors file. Returns (dict name -> np.ndarray (copy), metadata dict)."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError(f"{path}: file too short for a safetensors header")
    (n,) = struct.unpack("<Q", raw[:8])
    if 8 + n > len(raw):
        raise ValueError(f"{path}: header length {n} exceeds file size {len(raw)}")
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    body = memoryview(raw)[8 + n:]
    metadata = header.pop("__metadata__", {}) or {}
    out = {}
    for name, info in header.items():
        dtype_name = info["dtype"]
        shape = tuple(info["shape"])
        begin, end = info["data_offsets"]
        if dtype_name == "BF16":
            # widen bf16 exactly to f32 (bf16 bits are the top half of f32 bits)
            u16 = np.frombuffer(body[begin:end], dtype="<u2")
            arr = (u16.astype(np.uint32) << 16).view(np.float32).reshape(shape)
        else:
            if dtype_name not in _DTYPES:
                raise ValueError(f"{path}: tensor {name}: unsupported dtype {dtype_name}")
            dt = _DTYPES[dtype_name]
            count = int(np.prod(shape)) if shape else 1
            if end - begin != count * dt.itemsize:
                raise ValueError(f"{path}: tensor {name}: byte size {end - begin} != {count}*{dt.itemsize}")
            arr = np.frombuffer(body[begin:end], dtype=dt).reshape(shape)
        out[name] = np.array(arr)  # own the memory
    return out, metadata


def write_safetensors(path, tensors, metadata=None):
    """Write dict name -> np.ndarray to `path` (keys in sorted order, header padded with spaces to 8)."""
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    offset = 0
    blobs = []
    for name in sorted(tensors):
        arr = np.ascontiguousarray(tensors[name])
        key = _NAMES.get(arr.dtype.newbyteorder("<") if arr.dtype.itemsize > 1 else arr.dtype)
        if key is None:
            raise ValueError(f"tensor {name}: unsupported dtype {arr.dtype}")
        data = arr.astype(_DTYPES[key], copy=False).tobytes()
        header[name] = {"dtype": key, "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    hbytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hbytes += b" " * ((8 - len(hbytes) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hbytes)))
        f.write(hbytes)
        for b in blobs:
            f.write(b)
