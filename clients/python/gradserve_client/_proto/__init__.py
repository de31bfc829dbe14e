"""Protobuf and gRPC modules generated from gradserve's proto/*.proto when the
package is built (setup.py, Note [Generated modules]):

    grpc_service_pb2, grpc_service_pb2_grpc   proto/grpc_service.proto (package `inference`)
    model_config_pb2                           proto/model_config.proto (package `inference`)
    training_pb2, training_pb2_grpc            proto/training.proto (package `gradserve.v1`)

Their descriptors live in POOL, this package's own descriptor pool, not in
protobuf's default pool: the `inference` messages here are separate classes
from tritonclient's (which registers the same names from "grpc_service.proto"),
so both clients can be imported in one process. The flip side: a message of
one cannot be passed where the other's is expected (copy it over with
SerializeToString / FromString).
"""

from google.protobuf import descriptor_pool

POOL = descriptor_pool.DescriptorPool()
