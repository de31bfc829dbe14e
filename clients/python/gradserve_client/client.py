"""Client: gradserve's gRPC API from Python (inference and online training)."""

from collections.abc import Mapping

import grpc

from . import results, tensors
from ._proto import grpc_service_pb2 as inference_pb2
from ._proto import grpc_service_pb2_grpc as inference_grpc
from ._proto import training_pb2, training_pb2_grpc
from .errors import GradserveError


class Client:
    """One gRPC channel to a gradserve server and its two services:
    inference.GRPCInferenceService (the Open Inference Protocol v2) and
    gradserve.v1.TrainingService.

        with Client("localhost:8001") as client:
            out = client.infer("digits_mlp", {"pixels": x})["probabilities"]
            client.train("digits_mlp", x, labels)

    Every call raises GradserveError (its .code a grpc.StatusCode name such
    as "NOT_FOUND") when the server answers with an error or cannot be
    reached. `version` arguments are version numbers as strings; "" lets the
    server pick (the highest READY version). A Client may be shared by
    threads; close() it (or use `with`) when done.

    url: "host:port" of the server's gRPC port. timeout: the deadline of each
    call in seconds (None: no deadline); each call may override it.
    credentials: grpc.ChannelCredentials for TLS (None: plaintext).
    channel_options: extra (key, value) gRPC channel options. Message sizes
    are unlimited on the client's side.
    """

    def __init__(self, url="localhost:8001", timeout=None, credentials=None, channel_options=()):
        options = [("grpc.max_send_message_length", -1),
                   ("grpc.max_receive_message_length", -1)] + list(channel_options)
        if credentials is None:
            self._channel = grpc.insecure_channel(url, options=options)
        else:
            self._channel = grpc.secure_channel(url, credentials, options=options)
        self._inference = inference_grpc.GRPCInferenceServiceStub(self._channel)
        self._training = training_pb2_grpc.TrainingServiceStub(self._channel)
        self._timeout = timeout
        self._feature_names = {}  # (model, version) -> the name of a lone input

    # -- lifecycle ---------------------------------------------------------

    def close(self):
        """Closes the channel; calls after this fail."""
        self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def _call(self, method, request, timeout):
        try:
            return method(request, timeout=self._timeout if timeout is None else timeout)
        except grpc.RpcError as e:
            raise GradserveError.from_rpc_error(e) from None

    # -- health and metadata -----------------------------------------------

    def live(self, timeout=None):
        """Whether the server process answers (False: it answered not live)."""
        return self._call(self._inference.ServerLive, inference_pb2.ServerLiveRequest(),
                          timeout).live

    def ready(self, model=None, version="", timeout=None):
        """Whether the server can take inference requests; with `model`,
        whether that model (version) is loaded and can serve."""
        if model is None:
            return self._call(self._inference.ServerReady, inference_pb2.ServerReadyRequest(),
                              timeout).ready
        request = inference_pb2.ModelReadyRequest(name=model, version=version)
        return self._call(self._inference.ModelReady, request, timeout).ready

    def server_metadata(self, timeout=None):
        """The server's name, version and protocol extensions (ServerMetadata)."""
        r = self._call(self._inference.ServerMetadata, inference_pb2.ServerMetadataRequest(),
                       timeout)
        return results.ServerMetadata.from_message(r)

    def metadata(self, model, version="", timeout=None):
        """A model's versions, inputs and outputs (ModelMetadata, whose
        inputs/outputs are TensorInfo(name, datatype, shape))."""
        request = inference_pb2.ModelMetadataRequest(name=model, version=version)
        r = self._call(self._inference.ModelMetadata, request, timeout)
        return results.ModelMetadata.from_message(r)

    # -- inference -----------------------------------------------------------

    def infer(self, model, inputs, outputs=None, version="", request_id="", timeout=None):
        """Runs the model on `inputs`, {name: array-like}, and returns its
        outputs as an InferResult: {name: numpy array}, plus .model_version
        (the version that computed them), .id and .parameters (the server's
        response parameters, e.g. "weights_generation").

        outputs: the names wanted (None: all of the model's outputs). The
        inputs travel in raw form (raw_input_contents); numpy dtypes map to
        datatypes as gradserve_client.tensors describes (float32 -> FP32,
        int64 -> INT64, ...), so pass the dtype the model declares: the
        server does not convert (INVALID_ARGUMENT).
        """
        request = inference_pb2.ModelInferRequest(model_name=model, model_version=version,
                                                  id=request_id)
        _add_inputs(request, inputs)
        for name in outputs or ():
            request.outputs.add(name=name)
        r = self._call(self._inference.ModelInfer, request, timeout)
        parameters = {k: getattr(p, p.WhichOneof("parameter_choice"))
                      for k, p in r.parameters.items() if p.WhichOneof("parameter_choice")}
        return results.InferResult(tensors.decode_outputs(r), r.model_name, r.model_version,
                                   r.id, parameters)

    # -- training --------------------------------------------------------------

    def train(self, model, features, labels=None, version="", labels_name="labels",
              request_id="", timeout=None):
        """Sends labelled examples to the model's trainer and returns once the
        step that used them was applied: a TrainResult (loss, step,
        weights_generation, examples_in_step).

        features: an array (sent under the name of the model's only input,
        from metadata()) or {name: array} (sent as they are: the train
        signature's inputs). labels: an array sent as input `labels_name`
        ("labels", as gradserve's example models name it; int64 class ids for
        a classifier), or None when `features` already holds the labels. All
        share the first (batch) dimension, at most the model's training
        batch_size. Errors: FAILED_PRECONDITION (training disabled),
        INVALID_ARGUMENT (bad inputs, labels out of range, non-finite values),
        RESOURCE_EXHAUSTED (train queue full).
        """
        if isinstance(features, Mapping):
            inputs = dict(features)
        else:
            inputs = {self._feature_name(model, version, timeout): features}
        if labels is not None:
            if labels_name in inputs:
                raise ValueError(f"input {labels_name!r} given both in features and as labels")
            inputs[labels_name] = labels
        request = training_pb2.ModelTrainRequest(model_name=model, model_version=version,
                                                 id=request_id)
        _add_inputs(request, inputs)
        r = self._call(self._training.ModelTrain, request, timeout)
        return results.TrainResult.from_message(r)

    def _feature_name(self, model, version, timeout):
        key = (model, version)
        if key not in self._feature_names:
            names = [t.name for t in self.metadata(model, version, timeout).inputs]
            if len(names) != 1:
                raise ValueError(f"model {model!r} has inputs {names}: pass features as "
                                 "a dict {name: array}")
            self._feature_names[key] = names[0]
        return self._feature_names[key]

    def training_status(self, model, version="", timeout=None):
        """The model's trainer: enabled, optimizer, step, queue, checkpoints
        (TrainingStatus)."""
        request = training_pb2.TrainingStatusRequest(model_name=model, model_version=version)
        r = self._call(self._training.TrainingStatus, request, timeout)
        return results.TrainingStatus.from_message(r)

    def checkpoint(self, model, version="", timeout=None):
        """Writes a checkpoint of the current weights and optimizer state;
        returns its CheckpointInfo."""
        request = training_pb2.ModelCheckpointRequest(model_name=model, model_version=version)
        r = self._call(self._training.ModelCheckpoint, request, timeout)
        return results.CheckpointInfo.from_message(r.checkpoint)

    def export(self, model, version="", export_version=0, timeout=None):
        """Writes the current weights as a new version of the model in the
        repository (export_version 0: one above the highest); ExportResult.
        ALREADY_EXISTS when that version exists."""
        request = training_pb2.ModelExportRequest(model_name=model, model_version=version,
                                                  export_version=export_version)
        r = self._call(self._training.ModelExport, request, timeout)
        return results.ExportResult.from_message(r)

    def rollback(self, model, checkpoint="", version="", timeout=None):
        """Restores a checkpoint (its name; "": the newest valid one);
        RollbackResult."""
        request = training_pb2.ModelRollbackRequest(model_name=model, model_version=version,
                                                    checkpoint=checkpoint)
        r = self._call(self._training.ModelRollback, request, timeout)
        return results.RollbackResult.from_message(r)

    # -- the model repository ------------------------------------------------

    def repository_index(self, ready_only=False, timeout=None):
        """The repository's models as ModelState(name, version, state, reason)."""
        request = inference_pb2.RepositoryIndexRequest(ready=ready_only)
        r = self._call(self._inference.RepositoryIndex, request, timeout)
        return [results.ModelState.from_message(m) for m in r.models]

    def load(self, model, timeout=None):
        """(Re)loads a model from the repository; returns once it is done."""
        request = inference_pb2.RepositoryModelLoadRequest(model_name=model)
        self._call(self._inference.RepositoryModelLoad, request, timeout)
        self._forget(model)

    def unload(self, model, timeout=None):
        """Unloads a model; returns once it is done."""
        request = inference_pb2.RepositoryModelUnloadRequest(model_name=model)
        self._call(self._inference.RepositoryModelUnload, request, timeout)
        self._forget(model)

    def _forget(self, model):
        for key in [k for k in self._feature_names if k[0] == model]:
            self._feature_names.pop(key, None)


def _add_inputs(request, inputs):
    """Appends {name: array-like} to a ModelInferRequest / ModelTrainRequest
    in raw form."""
    for name, value in inputs.items():
        datatype, shape, raw = tensors.encode(value)
        request.inputs.add(name=name, datatype=datatype, shape=shape)
        request.raw_input_contents.append(raw)
