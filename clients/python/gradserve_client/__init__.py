"""gradserve_client: a Python client of gradserve's gRPC API.

    from gradserve_client import Client, GradserveError

    with Client("localhost:8001") as client:
        client.ready()                                        # True
        client.metadata("digits_mlp").inputs                  # (TensorInfo(...),)
        out = client.infer("digits_mlp", {"pixels": x})       # {name: ndarray}
        client.train("digits_mlp", x, labels).loss            # one training step
        client.training_status("digits_mlp").step

Every failed call raises GradserveError; its .code names the gRPC status
("NOT_FOUND", "INVALID_ARGUMENT", "UNAVAILABLE", ...). See Client for the
calls, gradserve_client.tensors for how numpy dtypes map to the protocol's
datatypes, and gradserve_client._proto for the generated protobuf modules.
"""

from .client import Client
from .errors import GradserveError
from .results import (CheckpointInfo, ExportResult, InferResult, ModelMetadata, ModelState,
                      RollbackResult, ServerMetadata, TensorInfo, TrainingStatus, TrainResult)

__all__ = ["Client", "GradserveError", "CheckpointInfo", "ExportResult", "InferResult",
           "ModelMetadata", "ModelState", "RollbackResult", "ServerMetadata", "TensorInfo",
           "TrainingStatus", "TrainResult"]
__version__ = "0.1.0"
