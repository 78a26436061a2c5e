"""Pickles in the byte layout of the CIFAR python files (written by Python 2's cPickle).

Their text (dict keys, batch labels, file and class names) is Python 2 ``str``, which
Python 3 reads as ``bytes`` with ``pickle.load(f, encoding='bytes')`` (b'data', as the
CIFAR page shows) and as ``str`` with ``encoding='latin1'`` ('data', as torchvision and
mmpretrain read it); a Python 3 pickle of ``str`` or ``bytes`` would give one of the two only.
Arrays are pickled as Python 2 numpy did (``numpy.core.multiarray._reconstruct`` with the raw
bytes as a Python 2 ``str``), which every numpy version reads.
"""

from __future__ import annotations

import io
import pickle
import struct

import numpy as np

PROTOCOL = 2  # cPickle.HIGHEST_PROTOCOL of Python 2
ROW_BYTES = 3072  # one 32 x 32 RGB image: 1024 red, then 1024 green, then 1024 blue values


class _Py2Str(bytes):
    """Bytes written as a Python 2 ``str`` (SHORT_BINSTRING / BINSTRING)."""


_NUMPY_RECONSTRUCT = np.empty(0).__reduce__()[0]  # numpy's own array-unpickling function


class _Reconstruct:
    """Stands for ``numpy.core.multiarray._reconstruct`` in the written stream."""

    def __call__(self, *args):
        return _NUMPY_RECONSTRUCT(*args)


_RECONSTRUCT = _Reconstruct()


class _Py2Pickler(pickle._Pickler):
    """The pure-Python pickler, writing ``_Py2Str`` and numpy arrays as Python 2 did."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2_str(self, obj):
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack('<i', len(obj)) + obj)
        self.memoize(obj)

    def save_reconstruct(self, obj):
        self.write(pickle.GLOBAL + b'numpy.core.multiarray\n_reconstruct\n')
        self.memoize(obj)

    dispatch[_Py2Str] = save_py2_str
    dispatch[_Reconstruct] = save_reconstruct

    def reducer_override(self, obj):
        if isinstance(obj, np.ndarray):
            array = np.ascontiguousarray(obj)
            state = (1, array.shape, array.dtype, False, _Py2Str(array.tobytes()))
            return _RECONSTRUCT, (np.ndarray, (0,), _Py2Str(b'b')), state
        return NotImplemented


def _as_py2(obj):
    """``obj`` with every ``str`` (keys too) turned into a Python 2 ``str``."""
    if isinstance(obj, str):
        return _Py2Str(obj.encode('latin1'))
    if isinstance(obj, dict):
        return {_as_py2(key): _as_py2(value) for key, value in obj.items()}
    if isinstance(obj, list):
        return [_as_py2(item) for item in obj]
    return obj


def py2_pickle(obj):
    """Bytes of ``obj`` (dicts, lists, str, int, numpy arrays) as Python 2's cPickle wrote them."""
    buffer = io.BytesIO()
    _Py2Pickler(buffer, protocol=PROTOCOL).dump(_as_py2(obj))
    return buffer.getvalue()


def cifar_rows(images):
    """CIFAR's rows [N, 3072] uint8 (channel-major) of RGB images [N, 32, 32, 3] uint8."""
    images = np.asarray(images, dtype=np.uint8)
    if images.ndim != 4 or images.shape[1:] != (32, 32, 3):
        raise ValueError(f'CIFAR rows hold 32 x 32 RGB images, got shape {images.shape}')
    return images.transpose(0, 3, 1, 2).reshape(len(images), ROW_BYTES)


def batch_bytes(batch_label, labels, images, filenames):
    """One data batch: {'batch_label', 'labels', 'data' [N, 3072] uint8, 'filenames'}."""
    return py2_pickle(
        {
            'batch_label': batch_label,
            'labels': [int(label) for label in labels],
            'data': cifar_rows(images),
            'filenames': list(filenames),
        }
    )


def meta_bytes(label_names, cases_per_batch):
    """``batches.meta``: {'num_cases_per_batch', 'label_names', 'num_vis'}."""
    return py2_pickle(
        {
            'num_cases_per_batch': int(cases_per_batch),
            'label_names': list(label_names),
            'num_vis': ROW_BYTES,
        }
    )
