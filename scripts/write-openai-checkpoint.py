#!/usr/bin/env python3
"""Write an OpenAI Whisper checkpoint (`base.pt`) from a whisper.cpp ggml model, as torch.save writes it.

usage: write-openai-checkpoint.py MODEL.ggml.bin OUT.pt

A test fixture (scripts/fetch-test-model runs it): kikitori's own reader of `.pt` files must be tested
on a real OpenAI-format checkpoint, and PyTorch itself is several GB to install. This script needs no
torch: the pickle stream is made by Python's own pickle module, which is what torch.save uses, over
stand-ins that pickle exactly as torch's objects do:

- the object is OpenAI's `{"dims": asdict(ModelDimensions), "model_state_dict": model.state_dict()}`
  (whisper/__init__.py, model.py); the state dict is an OrderedDict carrying `_metadata` like
  nn.Module.state_dict() returns, every tensor float16 in state_dict order;
- a tensor pickles as `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad,
  OrderedDict())` (torch/_tensor.py `_reduce_ex_internal`);
- a storage pickles as the persistent id `("storage", torch.HalfStorage, key, "cpu", numel)`
  (torch/serialization.py `_save`), protocol 2;
- the zip is laid out as PyTorch's writer does (caffe2/serialize/inline_container.cc with miniz):
  records `<name>/data.pkl`, `<name>/data/<key>` in sorted key order, `<name>/version` ("3\n"), all
  stored uncompressed, each record's data aligned to 64 bytes by an "FB" extra field in its local
  header, and a zip64 end-of-central-directory record (miniz's MZ_ZIP_FLAG_WRITE_ZIP64).

The weights of the ggml file are those of the checkpoint it was converted from (whisper.cpp's
convert-pt-to-ggml.py only widens 1-D tensors, conv biases and positional embeddings to float32, which
is exact), so converting the written checkpoint back must give the same ggml file byte for byte.
"""

import collections
import io
import os
import pickle
import struct
import sys
import types
import zlib

# --- stand-ins with torch's pickled names -------------------------------------------------------
torch = types.ModuleType("torch")
torch_utils = types.ModuleType("torch._utils")
torch._utils = torch_utils
sys.modules["torch"] = torch
sys.modules["torch._utils"] = torch_utils


def _rebuild_tensor_v2(*args):  # only its name is pickled
    raise RuntimeError("stand-in for torch._utils._rebuild_tensor_v2")


_rebuild_tensor_v2.__module__ = "torch._utils"
torch_utils._rebuild_tensor_v2 = _rebuild_tensor_v2


class HalfStorage:  # only its name is pickled
    pass


HalfStorage.__module__ = "torch"
torch.HalfStorage = HalfStorage


class Storage:
    def __init__(self, key, data):
        self.key = key
        self.data = data


class Tensor:
    def __init__(self, storage, shape):
        self.storage = storage
        self.shape = tuple(shape)
        strides, step = [], 1
        for d in reversed(self.shape):
            strides.insert(0, step)
            step *= d
        self.stride = tuple(strides)

    def __reduce_ex__(self, protocol):
        return (_rebuild_tensor_v2, (self.storage, 0, self.shape, self.stride, False, collections.OrderedDict()))


class CheckpointPickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            return ("storage", HalfStorage, obj.key, "cpu", len(obj.data) // 2)
        return None


# --- the ggml model -----------------------------------------------------------------------------
def read_ggml(path):
    with open(path, "rb") as f:
        data = f.read()
    if struct.unpack_from("<I", data, 0)[0] != 0x67676D6C:
        raise SystemExit(f"{path}: not a ggml model file")
    keys = ["n_vocab", "n_audio_ctx", "n_audio_state", "n_audio_head", "n_audio_layer",
            "n_text_ctx", "n_text_state", "n_text_head", "n_text_layer", "n_mels", "ftype"]
    hp = dict(zip(keys, struct.unpack_from("<11i", data, 4)))
    n_mel, n_fft = struct.unpack_from("<2i", data, 48)
    pos = 56 + 4 * n_mel * n_fft
    (n_tokens,) = struct.unpack_from("<i", data, pos)
    pos += 4
    for _ in range(n_tokens):
        (n,) = struct.unpack_from("<i", data, pos)
        pos += 4 + n
    tensors = []
    while pos < len(data):
        n_dims, name_len, ttype = struct.unpack_from("<3i", data, pos)
        ne = struct.unpack_from(f"<{n_dims}i", data, pos + 12)
        name = data[pos + 12 + 4 * n_dims: pos + 12 + 4 * n_dims + name_len].decode()
        start = pos + 12 + 4 * n_dims + name_len
        count = 1
        for d in ne:
            count *= d
        size = count * (4 if ttype == 0 else 2)
        raw = data[start: start + size]
        if ttype == 0:  # float32 → float16: exact for weights that were float16 to begin with
            values = struct.unpack(f"<{count}f", raw)
            raw = struct.pack(f"<{count}e", *values)
            if struct.unpack(f"<{count}e", raw) != values:
                raise SystemExit(f"{name}: float32 values that float16 cannot hold exactly")
        elif ttype != 1:
            raise SystemExit(f"{name}: ggml type {ttype} (only F32/F16 models are supported)")
        shape = [d for d in reversed(ne)]
        if name in ("encoder.conv1.bias", "encoder.conv2.bias"):
            shape = [shape[0]]  # ggml keeps them as [n, 1]; OpenAI's are [n]
        tensors.append((name, shape, raw))
        pos = start + size
    return hp, tensors


def module_metadata(names):
    """nn.Module.state_dict()'s `_metadata`: every module path (parents first) → {"version": 1}."""
    modules = [""]
    for name in names:
        parts = name.split(".")[:-1]
        for i in range(1, len(parts) + 1):
            path = ".".join(parts[:i])
            if path not in modules:
                modules.append(path)
                if path.endswith(".mlp"):  # Sequential(Linear, GELU, Linear): GELU has no weights
                    modules += [f"{path}.0", f"{path}.1", f"{path}.2"]
    return collections.OrderedDict((m, {"version": 1}) for m in modules)


# --- PyTorch's zip layout -----------------------------------------------------------------------
class TorchZipWriter:
    def __init__(self, f, archive_name):
        self.f = f
        self.prefix = archive_name + "/"
        self.central = []

    def record(self, name, data):
        full = (self.prefix + name).encode()
        offset = self.f.tell()
        start = offset + 30 + len(full) + 4  # data start if the padding field were empty
        padding = (64 - start % 64) % 64
        extra = b"FB" + struct.pack("<H", padding) + b"Z" * padding
        crc = zlib.crc32(data)
        self.f.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0, 0, 0, 0x21, crc, len(data), len(data),
                                 len(full), len(extra)))
        self.f.write(full + extra + data)
        self.central.append((full, crc, len(data), offset))

    def close(self):
        cd_start = self.f.tell()
        for full, crc, size, offset in self.central:
            self.f.write(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0, 0, 0, 0x21, crc, size, size,
                                     len(full), 0, 0, 0, 0, 0, offset))
            self.f.write(full)
        cd_end = self.f.tell()
        n = len(self.central)
        self.f.write(struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, n, n, cd_end - cd_start, cd_start))
        self.f.write(struct.pack("<IIQI", 0x07064B50, 0, cd_end, 1))
        self.f.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n, n, cd_end - cd_start, cd_start, 0))


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__.splitlines()[2])
    src, out = sys.argv[1], sys.argv[2]
    hp, tensors = read_ggml(src)
    dims = {  # whisper.model.ModelDimensions, in field order
        "n_mels": hp["n_mels"],
        "n_audio_ctx": hp["n_audio_ctx"],
        "n_audio_state": hp["n_audio_state"],
        "n_audio_head": hp["n_audio_head"],
        "n_audio_layer": hp["n_audio_layer"],
        "n_vocab": hp["n_vocab"],
        "n_text_ctx": hp["n_text_ctx"],
        "n_text_state": hp["n_text_state"],
        "n_text_head": hp["n_text_head"],
        "n_text_layer": hp["n_text_layer"],
    }
    state = collections.OrderedDict()
    storages = []
    for i, (name, shape, raw) in enumerate(tensors):
        storage = Storage(str(i), raw)
        storages.append(storage)
        state[name] = Tensor(storage, shape)
    state._metadata = module_metadata(state.keys())
    buf = io.BytesIO()
    CheckpointPickler(buf, protocol=2).dump({"dims": dims, "model_state_dict": state})
    tmp = out + ".partial"
    with open(tmp, "wb") as f:
        z = TorchZipWriter(f, os.path.splitext(os.path.basename(out))[0])
        z.record("data.pkl", buf.getvalue())
        for storage in sorted(storages, key=lambda s: s.key):
            z.record(f"data/{storage.key}", storage.data)
        z.record("version", b"3\n")
        z.close()
    os.replace(tmp, out)


if __name__ == "__main__":
    main()
