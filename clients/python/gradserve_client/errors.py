"""The one exception a call to the server raises."""

import grpc


class GradserveError(Exception):
    """A call failed on the server or on the way to it.

    code: the gRPC status code's name, e.g. "NOT_FOUND" (unknown model or
    version), "INVALID_ARGUMENT" (bad inputs or labels), "UNAVAILABLE" (the
    server is down or the model not ready), "FAILED_PRECONDITION" (training
    disabled), "RESOURCE_EXHAUSTED" (queue full), "DEADLINE_EXCEEDED"; and
    "INTERNAL" when a response breaks the protocol (an output whose bytes do
    not match its shape), "UNIMPLEMENTED" for an output datatype this client
    cannot decode. message: the server's (or the client's) explanation.

    Mistakes the client sees before sending anything (an array of a dtype the
    protocol lacks, features it cannot name) are TypeError / ValueError.
    """

    def __init__(self, code, message):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    @property
    def status_code(self):
        """The code as a grpc.StatusCode."""
        return grpc.StatusCode[self.code]

    @classmethod
    def from_rpc_error(cls, error):
        """The GradserveError of a failed call (a grpc.RpcError)."""
        code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
        details = error.details() if hasattr(error, "details") else str(error)
        return cls(code.name, details or "")
