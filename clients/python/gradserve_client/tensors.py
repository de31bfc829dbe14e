"""numpy arrays to and from the Open Inference Protocol's tensors.

Datatypes and the numpy dtypes they decode to:

    BOOL bool | INT8..INT64 int8..int64 | UINT8..UINT64 uint8..uint64
    FP16 float16 | FP32 float32 | FP64 float64
    BF16 float32 (widened exactly; ml_dtypes.bfloat16 arrays encode as BF16)
    BYTES object (each element a `bytes`; str elements encode as UTF-8)

The raw form (raw_input_contents / raw_output_contents) is each tensor's
elements flattened row-major, little-endian, unpadded; a BYTES element is a
4-byte little-endian length and then its bytes.
"""

import struct

import numpy as np

from .errors import GradserveError

# The fixed-size datatypes' little-endian numpy dtypes.
_NUMPY = {
    "BOOL": np.dtype("?"),
    "INT8": np.dtype("<i1"), "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"), "INT64": np.dtype("<i8"),
    "UINT8": np.dtype("<u1"), "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"), "UINT64": np.dtype("<u8"),
    "FP16": np.dtype("<f2"), "FP32": np.dtype("<f4"), "FP64": np.dtype("<f8"),
}

# The typed form's field for each datatype (FP16 and BF16 have none).
_CONTENTS_FIELD = {
    "BOOL": "bool_contents", "INT8": "int_contents", "INT16": "int_contents",
    "INT32": "int_contents", "INT64": "int64_contents", "UINT8": "uint_contents",
    "UINT16": "uint_contents", "UINT32": "uint_contents", "UINT64": "uint64_contents",
    "FP32": "fp32_contents", "FP64": "fp64_contents", "BYTES": "bytes_contents",
}

_LENGTH = struct.Struct("<I")


def datatype_of(array):
    """The protocol datatype of a numpy array ("FP32", ...); TypeError if none."""
    dtype = array.dtype
    if dtype.name == "bfloat16":  # ml_dtypes
        return "BF16"
    if dtype.kind == "b":
        return "BOOL"
    if dtype.kind in "iu" and dtype.itemsize in (1, 2, 4, 8):
        return ("INT" if dtype.kind == "i" else "UINT") + str(8 * dtype.itemsize)
    if dtype.kind == "f" and dtype.itemsize in (2, 4, 8):
        return "FP" + str(8 * dtype.itemsize)
    if dtype.kind in "SUO":
        return "BYTES"
    raise TypeError(f"numpy dtype {dtype} has no Open Inference Protocol datatype")


def encode(array):
    """(datatype, shape, raw bytes) of an array-like."""
    array = np.asarray(array)
    datatype = datatype_of(array)
    if datatype == "BYTES":
        return datatype, array.shape, _encode_bytes(array)
    if datatype != "BF16":
        array = array.astype(_NUMPY[datatype], copy=False)  # little-endian
    return datatype, array.shape, np.ascontiguousarray(array).tobytes()


def _encode_bytes(array):
    parts = []
    for element in array.ravel(order="C"):
        if isinstance(element, str):
            element = element.encode("utf-8")
        elif isinstance(element, np.bytes_):
            element = bytes(element)
        if not isinstance(element, bytes):
            raise TypeError(f"a BYTES tensor holds bytes or str, not {type(element).__name__}")
        parts += [_LENGTH.pack(len(element)), element]
    return b"".join(parts)


def decode_outputs(response):
    """{name: array} of a ModelInferResponse's outputs, raw or typed."""
    raw = response.raw_output_contents
    if raw and len(raw) != len(response.outputs):
        raise GradserveError("INTERNAL", f"response holds {len(response.outputs)} outputs "
                             f"but {len(raw)} raw contents")
    arrays = {}
    for i, out in enumerate(response.outputs):
        if raw:
            arrays[out.name] = decode(out.name, out.datatype, out.shape, raw[i])
        else:
            arrays[out.name] = decode_contents(out.name, out.datatype, out.shape, out.contents)
    return arrays


def decode(name, datatype, shape, raw):
    """The array of raw bytes `raw` holding tensor `name` (a writable copy).
    GradserveError INTERNAL when the bytes do not fit the shape,
    UNIMPLEMENTED for a datatype this client does not know."""
    shape = _shape(name, shape)
    count = int(np.prod(shape, dtype=np.int64))
    if datatype == "BYTES":
        return _decode_bytes(name, shape, count, raw)
    itemsize = 2 if datatype == "BF16" else _numpy_dtype(name, datatype).itemsize
    if len(raw) != count * itemsize:
        raise GradserveError("INTERNAL", f"output {name!r}: {len(raw)} bytes for "
                             f"{datatype} of shape {list(shape)} ({count} elements)")
    if datatype == "BF16":  # the high half of an FP32
        bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
        return bits.view(np.float32).reshape(shape)
    return np.frombuffer(raw, dtype=_NUMPY[datatype]).reshape(shape).copy()


def _decode_bytes(name, shape, count, raw):
    elements, offset = [], 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            break
        (length,) = _LENGTH.unpack_from(raw, offset)
        offset += 4
        elements.append(bytes(raw[offset:offset + length]))
        offset += length
    if offset != len(raw) or len(elements) != count:
        raise GradserveError("INTERNAL", f"output {name!r}: BYTES contents do not hold "
                             f"{count} elements of shape {list(shape)}")
    array = np.empty(count, dtype=object)
    array[:] = elements
    return array.reshape(shape)


def decode_contents(name, datatype, shape, contents):
    """The array of a tensor in the typed form (an InferTensorContents)."""
    shape = _shape(name, shape)
    field = _CONTENTS_FIELD.get(datatype)
    if field is None:
        _numpy_dtype(name, datatype)  # an unknown datatype: UNIMPLEMENTED
        raise GradserveError("INTERNAL", f"output {name!r}: {datatype} has no typed "
                             "contents, yet the response holds no raw contents")
    values = list(getattr(contents, field))
    if datatype == "BYTES":
        array = np.empty(len(values), dtype=object)
        array[:] = values
    else:
        array = np.array(values, dtype=_NUMPY[datatype])
    try:
        return array.reshape(shape)
    except ValueError:
        raise GradserveError("INTERNAL", f"output {name!r}: {len(values)} {datatype} "
                             f"values for shape {list(shape)}") from None


def _numpy_dtype(name, datatype):
    try:
        return _NUMPY[datatype]
    except KeyError:
        raise GradserveError("UNIMPLEMENTED", f"output {name!r}: datatype {datatype!r} "
                             "is not one this client decodes") from None


def _shape(name, shape):
    shape = tuple(int(d) for d in shape)
    if any(d < 0 for d in shape):
        raise GradserveError("INTERNAL", f"output {name!r}: negative dimension in {list(shape)}")
    return shape
