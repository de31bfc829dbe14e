"""What the Client's calls return: small frozen dataclasses (and InferResult,
a dict) built from the response messages, so callers need no protobuf."""

import dataclasses
from dataclasses import dataclass
from typing import Optional, Tuple


def _copy_fields(cls, message, **overrides):
    """cls built from the same-named fields of `message`, with overrides."""
    values = {f.name: getattr(message, f.name) for f in dataclasses.fields(cls)
              if f.name not in overrides}
    return cls(**values, **overrides)


class InferResult(dict):
    """The outputs of an inference, {name: numpy array}, with the response's
    model_name, model_version (the version that computed them), id and
    parameters ({name: value}; gradserve sends "weights_generation", the
    weights that computed the outputs, and "batch_size", the batch they ran in)."""

    def __init__(self, outputs, model_name="", model_version="", id="", parameters=None):
        super().__init__(outputs)
        self.model_name = model_name
        self.model_version = model_version
        self.id = id
        self.parameters = dict(parameters or {})


@dataclass(frozen=True)
class ServerMetadata:
    name: str
    version: str
    extensions: Tuple[str, ...]  # protocol extensions, e.g. "model_repository"

    @classmethod
    def from_message(cls, m):
        return _copy_fields(cls, m, extensions=tuple(m.extensions))


@dataclass(frozen=True)
class TensorInfo:
    """An input or output of a model. shape: -1 marks a dimension of any size
    (the batch dimension among them)."""
    name: str
    datatype: str  # "FP32", "INT64", ...
    shape: Tuple[int, ...]

    @classmethod
    def from_message(cls, m):
        return cls(m.name, m.datatype, tuple(m.shape))


@dataclass(frozen=True)
class ModelMetadata:
    name: str
    versions: Tuple[str, ...]  # the versions available
    platform: str
    inputs: Tuple[TensorInfo, ...]
    outputs: Tuple[TensorInfo, ...]

    @classmethod
    def from_message(cls, m):
        return cls(m.name, tuple(m.versions), m.platform,
                   tuple(TensorInfo.from_message(t) for t in m.inputs),
                   tuple(TensorInfo.from_message(t) for t in m.outputs))


@dataclass(frozen=True)
class ModelState:
    """One model (version) of the repository index."""
    name: str
    version: str
    state: str   # "READY", "UNAVAILABLE", "LOADING", "UNLOADING"
    reason: str  # why it is not ready

    @classmethod
    def from_message(cls, m):
        return _copy_fields(cls, m)


@dataclass(frozen=True)
class TrainResult:
    """The step that used a Train call's examples."""
    model_name: str
    model_version: str
    id: str
    loss: float              # the step's mean loss
    step: int                # the model's global step after it
    weights_generation: int  # the weights generation it published
    examples_in_step: int    # examples of all requests in that step

    @classmethod
    def from_message(cls, m):
        return _copy_fields(cls, m)


@dataclass(frozen=True)
class CheckpointInfo:
    name: str        # file name within the checkpoint directory
    path: str
    step: int
    weights_generation: int
    time_unix_seconds: float  # when it was written

    @classmethod
    def from_message(cls, m):
        return _copy_fields(cls, m)


@dataclass(frozen=True)
class TrainingStatus:
    model_name: str
    model_version: str
    enabled: bool
    disabled_reason: str      # why not, when not enabled
    optimizer: str            # "sgd", "momentum", "adam" or "adamw"
    batch_size: int
    step: int
    weights_generation: int
    last_loss: float          # NaN before the first step
    examples_seen: int        # in applied steps since the server started
    steps_applied: int        # since the server started
    nonfinite_steps: int      # not applied: non-finite loss or gradients
    queue_depth: int          # train requests waiting
    last_checkpoint: Optional[CheckpointInfo]  # None before the first
    checkpoint_dir: str
    checkpoints: Tuple[CheckpointInfo, ...]    # on disk, newest first

    @classmethod
    def from_message(cls, m):
        last = (CheckpointInfo.from_message(m.last_checkpoint)
                if m.HasField("last_checkpoint") else None)
        return _copy_fields(cls, m, last_checkpoint=last, checkpoints=tuple(
            CheckpointInfo.from_message(c) for c in m.checkpoints))


@dataclass(frozen=True)
class ExportResult:
    model_name: str
    model_version: str
    exported_version: int  # the version written to the repository
    path: str
    step: int
    weights_generation: int  # the generation the exported weights are

    @classmethod
    def from_message(cls, m):
        return _copy_fields(cls, m)


@dataclass(frozen=True)
class RollbackResult:
    model_name: str
    model_version: str
    restored: CheckpointInfo
    step: int                # the step now (the checkpoint's)
    weights_generation: int  # a new generation: rolling back is an update

    @classmethod
    def from_message(cls, m):
        return _copy_fields(cls, m, restored=CheckpointInfo.from_message(m.restored))
