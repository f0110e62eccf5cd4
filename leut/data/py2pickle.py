"""A writer for Python-2-style protocol-2 pickles, the format of the CIFAR-10 python archive.

The official ``cifar-10-batches-py`` files were pickled by Python 2: dictionary keys
and strings are Python-2 ``str`` (read back as ``bytes`` with ``encoding='bytes'``)
and arrays are reduced through ``numpy.core.multiarray._reconstruct``. Python 3's
pickler writes bytes differently (``_codecs.encode``), so this module emits the
opcodes directly. It supports exactly the value types the archive uses: ``dict``,
``list``, ``int``, ``bytes`` and C-contiguous ``uint8`` arrays.
"""

from __future__ import annotations

import struct

import numpy as np

__all__ = ["dumps_py2"]


def _emit(obj, out: bytearray) -> None:
  if isinstance(obj, bool) or obj is None:
    raise TypeError(f"py2pickle does not support {type(obj).__name__}")
  if isinstance(obj, int):
    if 0 <= obj < 256:
      out += b"K" + bytes([obj])
    elif 0 <= obj < 65536:
      out += b"M" + struct.pack("<H", obj)
    elif -(2**31) <= obj < 2**31:
      out += b"J" + struct.pack("<i", obj)
    else:
      raise ValueError(f"integer {obj} out of the supported range")
  elif isinstance(obj, bytes):
    if len(obj) < 256:
      out += b"U" + bytes([len(obj)]) + obj
    else:
      out += b"T" + struct.pack("<I", len(obj)) + obj
  elif isinstance(obj, list):
    out += b"](" if obj else b"]"
    for item in obj:
      _emit(item, out)
    if obj:
      out += b"e"
  elif isinstance(obj, dict):
    out += b"}(" if obj else b"}"
    for key, value in obj.items():
      _emit(key, out)
      _emit(value, out)
    if obj:
      out += b"u"
  elif isinstance(obj, np.ndarray):
    if obj.dtype != np.uint8:
      raise TypeError(f"py2pickle only writes uint8 arrays, got {obj.dtype}")
    out += b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85U\x01b\x87R("
    _emit(1, out)
    out += b"("
    for dim in obj.shape:
      _emit(int(dim), out)
    out += b"t"
    out += b"cnumpy\ndtype\nU\x02u1K\x00K\x01\x87R(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
    out += b"\x89"  # not Fortran-ordered
    _emit(np.ascontiguousarray(obj).tobytes(), out)
    out += b"tb"
  else:
    raise TypeError(f"py2pickle does not support {type(obj).__name__}")


def dumps_py2(obj) -> bytes:
  """Serialises ``obj`` as Python 2 would with ``cPickle.dump(obj, f, 2)``.

  Example:
   >>> import pickle
   >>> pickle.loads(dumps_py2({b"labels": [1, 2]}), encoding="bytes")
   {b'labels': [1, 2]}
  """
  out = bytearray(b"\x80\x02")
  _emit(obj, out)
  out += b"."
  return bytes(out)
