"""A Python client of gradserve.v1.TrainingService (proto/training.proto) for
the end-to-end tests, beside the official Triton client.

The message classes are generated at import time with protoc from
proto/training.proto. Its import of proto/grpc_service.proto is pointed at
"grpc_service.proto", the file tritonclient's service_pb2 registered, so the
Open Inference Protocol messages (InferInputTensor, InferParameter) are
tritonclient's own and both clients live in one process (two copies of the
`inference` package would clash in protobuf's descriptor pool).

    stub = TrainingStub("127.0.0.1:8001")
    r = stub.train("digits_mlp", {"pixels": x, "labels": y})    # ModelTrainResponse
    stub.status("digits_mlp").step
"""

import atexit
import os
import re
import shutil
import subprocess
import sys
import tempfile

import grpc
import numpy as np
from tritonclient.grpc import service_pb2  # registers grpc_service.proto first

_SOURCE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_MAX_MESSAGE = 64 << 20
_DATATYPES = {np.dtype(np.float32): "FP32", np.dtype(np.float64): "FP64",
              np.dtype(np.int32): "INT32", np.dtype(np.int64): "INT64"}


def _temp_dir():
    """A temporary folder removed when the process exits."""
    path = tempfile.mkdtemp(prefix="gradserve-pb2-")
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def _generate(protoc="protoc"):
    out = _temp_dir()
    src = os.path.join(out, "src")
    os.makedirs(src)
    with open(os.path.join(_SOURCE_DIR, "proto", "training.proto")) as f:
        text = f.read()
    text = text.replace('import "proto/grpc_service.proto";', 'import "grpc_service.proto";')
    with open(os.path.join(src, "training.proto"), "w") as f:
        f.write(text)
    # protoc needs the imported files' text; only training_pb2 is generated.
    for name in ("grpc_service", "model_config"):
        with open(os.path.join(_SOURCE_DIR, "proto", name + ".proto")) as f:
            text = re.sub(r'import "proto/(\w+\.proto)";', r'import "\1";', f.read())
        with open(os.path.join(src, name + ".proto"), "w") as f:
            f.write(text)
    subprocess.run([protoc, f"-I{src}", f"--python_out={out}", "training.proto"], check=True)
    sys.modules.setdefault("grpc_service_pb2", service_pb2)
    sys.path.insert(0, out)
    import training_pb2  # noqa: E402  (generated just now)
    return training_pb2


pb = _generate()


def add_tensor(request, name, array):
    """Appends `array` as input `name` in raw_input_contents."""
    a = np.ascontiguousarray(array)
    request.inputs.add(name=name, datatype=_DATATYPES[a.dtype], shape=a.shape)
    request.raw_input_contents.append(a.tobytes())


def train_request(model, inputs, version="", request_id=""):
    """A ModelTrainRequest with `inputs` ({name: array} or (name, array) pairs)."""
    r = pb.ModelTrainRequest(model_name=model, model_version=version, id=request_id)
    for name, a in (inputs.items() if isinstance(inputs, dict) else inputs):
        add_tensor(r, name, a)
    return r


class TrainingStub:
    """The TrainingService's five calls over one channel."""

    def __init__(self, address):
        self.channel = grpc.insecure_channel(
            address, options=[("grpc.max_send_message_length", _MAX_MESSAGE),
                              ("grpc.max_receive_message_length", _MAX_MESSAGE)])

        def call(method, request_type, response_type):
            return self.channel.unary_unary(
                f"/gradserve.v1.TrainingService/{method}",
                request_serializer=request_type.SerializeToString,
                response_deserializer=response_type.FromString)

        self.ModelTrain = call("ModelTrain", pb.ModelTrainRequest, pb.ModelTrainResponse)
        self.ModelCheckpoint = call("ModelCheckpoint", pb.ModelCheckpointRequest,
                                    pb.ModelCheckpointResponse)
        self.ModelExport = call("ModelExport", pb.ModelExportRequest, pb.ModelExportResponse)
        self.ModelRollback = call("ModelRollback", pb.ModelRollbackRequest,
                                  pb.ModelRollbackResponse)
        self.TrainingStatus = call("TrainingStatus", pb.TrainingStatusRequest,
                                   pb.TrainingStatusResponse)

    def train(self, model, inputs, version="", request_id="", timeout=30):
        return self.ModelTrain(train_request(model, inputs, version, request_id), timeout=timeout)

    def train_future(self, model, inputs, version="", timeout=30):
        return self.ModelTrain.future(train_request(model, inputs, version), timeout=timeout)

    def checkpoint(self, model, version="", timeout=30):
        return self.ModelCheckpoint(
            pb.ModelCheckpointRequest(model_name=model, model_version=version), timeout=timeout)

    def export(self, model, version="", export_version=0, timeout=60):
        return self.ModelExport(pb.ModelExportRequest(
            model_name=model, model_version=version, export_version=export_version),
            timeout=timeout)

    def rollback(self, model, checkpoint="", version="", timeout=30):
        return self.ModelRollback(pb.ModelRollbackRequest(
            model_name=model, model_version=version, checkpoint=checkpoint), timeout=timeout)

    def status(self, model, version="", timeout=10):
        return self.TrainingStatus(
            pb.TrainingStatusRequest(model_name=model, model_version=version), timeout=timeout)

    def close(self):
        self.channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def load_digits(path):
    """The UCI digits CSV (.gz): features float32 [n, 64] scaled to [0, 1],
    labels int64 [n]."""
    import gzip
    with gzip.open(path, "rt") as f:
        rows = [line.strip().split(",") for line in f if line.strip()]
    data = np.array(rows, dtype=np.float64)
    return (data[:, :-1] / 16.0).astype(np.float32), data[:, -1].astype(np.int64)


def _generate_gradserve_protos(protoc="protoc"):
    """checkpoint_pb2 and saved_model_pb2 (package gradserve: no clash)."""
    out = _temp_dir()
    subprocess.run([protoc, f"-I{_SOURCE_DIR}", f"--python_out={out}", "proto/graph.proto",
                    "proto/checkpoint.proto", "proto/saved_model.proto"], check=True)
    sys.path.insert(0, out)
    from proto import checkpoint_pb2, saved_model_pb2  # noqa: E402
    return checkpoint_pb2, saved_model_pb2


checkpoint_pb2, saved_model_pb2 = _generate_gradserve_protos()
_NUMPY_OF_DATATYPE = {1: np.float32, 2: np.float64, 3: np.int32, 9: np.int64}  # DT_*


def read_checkpoint(path):
    """Reads and verifies a gradserve checkpoint (graph/checkpoint.h, Note
    [Checkpoint layout]): returns (step, {name: ndarray}). ValueError when the
    magic, trailer, index crc or a tensor's crc32 is wrong."""
    import struct
    import zlib
    with open(path, "rb") as f:
        data = f.read()
    magic = b"GSCKPT01"
    if len(data) < 36 or data[:8] != magic or data[-8:] != magic:
        raise ValueError(f"{path}: bad magic or truncated")
    index_offset, index_size, index_crc = struct.unpack("<QQI", data[-28:-8])
    if index_offset + index_size != len(data) - 28:
        raise ValueError(f"{path}: trailer does not match the file size")
    raw_index = data[index_offset:index_offset + index_size]
    if zlib.crc32(raw_index) != index_crc:
        raise ValueError(f"{path}: index crc mismatch")
    index = checkpoint_pb2.CheckpointIndex.FromString(raw_index)
    tensors = {}
    for e in index.entry:
        blob = data[e.offset:e.offset + e.size]
        if len(blob) != e.size or zlib.crc32(blob) != e.crc32:
            raise ValueError(f"{path}: tensor {e.name!r} crc mismatch")
        shape = [d.size for d in e.shape.dim]
        tensors[e.name] = np.frombuffer(blob, dtype=_NUMPY_OF_DATATYPE[e.dtype]).reshape(shape)
    return index.step, tensors


def mlp_logits(weights, x):
    """digits_mlp's logits in float64 from checkpoint weights:
    relu(relu(x W1 + b1) W2 + b2) W3 + b3."""
    h = np.asarray(x, np.float64)
    for layer in ("dense1", "dense2", "dense3"):
        h = h @ weights[f"{layer}/kernel"].astype(np.float64) + weights[f"{layer}/bias"]
        if layer != "dense3":
            h = np.maximum(h, 0.0)
    return h


def strip_train_signature(version_dir):
    """Removes the `train` signature from <version_dir>/saved_model.pb."""
    path = os.path.join(version_dir, "saved_model.pb")
    with open(path, "rb") as f:
        model = saved_model_pb2.SavedModel.FromString(f.read())
    del model.signature_def["train"]
    with open(path, "wb") as f:
        f.write(model.SerializeToString())


def set_training(config_text, **fields):
    """`config_text` with its training { ... } block replaced by one holding
    `fields` (text-format values: set_training(t, batch_size=8,
    optimizer="{ sgd { learning_rate: 0.1 } }"))."""
    body = " ".join(f"{k}: {v}" if not str(v).startswith("{") else f"{k} {v}"
                    for k, v in fields.items())
    text = re.sub(r"(?ms)^training \{.*?^\}\n?", "", config_text)
    return text + f"training {{ {body} }}\n"
