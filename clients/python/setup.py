"""Builds gradserve_client, generating its protobuf/gRPC modules on the way.

Note [Generated modules]: grpcio-tools (a build requirement) compiles
proto/model_config.proto, proto/grpc_service.proto and proto/training.proto
into gradserve_client/_proto/. The files keep the names they have in the
repository ("proto/grpc_service.proto"), and three edits make the output work
as a subpackage:
  - `from proto import x_pb2` becomes `from . import x_pb2`;
  - the descriptors go into the package's own pool (_proto.POOL) instead of
    protobuf's default pool, so the `inference` messages do not clash with
    another copy of them in the same process (tritonclient registers its own,
    as "grpc_service.proto");
  - the classes' __module__ is the real module path.
Each edit must apply, so a grpcio-tools whose output changed fails the build
rather than producing a package that breaks at import.

The runtime requirements are those of the generated code: protobuf as the
grpcio-tools used declares it (its gencode version is the lowest runtime that
may load the modules) and grpcio no older than grpcio-tools (the generated
stubs check it). Build with --no-build-isolation to generate against the
grpcio-tools already installed (e.g. an older one for protobuf 5 or 6).

Where the .proto files come from: $GRADSERVE_PROTO_ROOT (a folder holding
proto/), else the repository two levels up (a checkout), else ./proto (an
sdist, where the sdist command copies them).
"""

import importlib.metadata
import os
import re
import shutil
import sys
import tempfile

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

HERE = os.path.dirname(os.path.abspath(__file__))
PROTOS = ("proto/model_config.proto", "proto/grpc_service.proto", "proto/training.proto")
PACKAGE = "gradserve_client._proto"


def proto_root():
    """The folder that holds proto/*.proto (see the module docstring)."""
    candidates = [os.environ.get("GRADSERVE_PROTO_ROOT"),
                  os.path.normpath(os.path.join(HERE, "..", "..")), HERE]
    for root in filter(None, candidates):
        if all(os.path.isfile(os.path.join(root, p)) for p in PROTOS):
            return root
    sys.exit(f"gradserve_client: {', '.join(PROTOS)} not found under any of "
             f"{[c for c in candidates if c]}; set GRADSERVE_PROTO_ROOT")


def _edit(text, pattern, replacement, path, count_at_least=1):
    new, n = re.subn(pattern, replacement, text)
    if n < count_at_least:
        sys.exit(f"gradserve_client: unexpected grpcio-tools output in {path}: "
                 f"no match for {pattern!r} (see setup.py, Note [Generated modules])")
    return new


def fix_generated(name, text):
    """The edits of Note [Generated modules] to one generated file."""
    imports = re.findall(r"^from proto import ", text, re.MULTILINE)
    text = re.sub(r"^from proto import (\w+) as", r"from . import \1 as", text, flags=re.MULTILINE)
    if name.endswith("_pb2.py"):
        text = _edit(text, r"_descriptor_pool\.Default\(\)\.AddSerializedFile\(",
                     "_GRADSERVE_POOL.AddSerializedFile(", name)
        text = _edit(text, r"(# @@protoc_insertion_point\(imports\)\n)",
                     r"\1from . import POOL as _GRADSERVE_POOL\n", name)
        text = _edit(text, r"BuildTopDescriptorsAndMessages\(DESCRIPTOR, 'proto\.",
                     f"BuildTopDescriptorsAndMessages(DESCRIPTOR, '{PACKAGE}.", name)
    elif not imports:
        sys.exit(f"gradserve_client: {name} imports no generated module (unexpected)")
    return text


def generate(out_dir):
    """Compiles PROTOS into out_dir (the _proto package's folder)."""
    import grpc_tools
    from grpc_tools import protoc

    root = proto_root()
    well_known = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    with tempfile.TemporaryDirectory(prefix="gradserve-protoc-") as tmp:
        args = ["grpc_tools.protoc", f"-I{root}", f"-I{well_known}",
                f"--python_out={tmp}", f"--grpc_python_out={tmp}", *PROTOS]
        if protoc.main(args) != 0:
            sys.exit(f"gradserve_client: protoc failed on {PROTOS} under {root}")
        generated = os.path.join(tmp, "proto")
        os.makedirs(out_dir, exist_ok=True)
        for name in sorted(os.listdir(generated)):
            if name == "model_config_pb2_grpc.py":  # no services: an empty module
                continue
            with open(os.path.join(generated, name)) as f:
                text = fix_generated(name, f.read())
            with open(os.path.join(out_dir, name), "w") as f:
                f.write(text)


class BuildPyWithProtos(build_py):
    """build_py, then the generated modules into the built package (or, for
    an editable install, into the source tree, where .gitignore skips them)."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            out = os.path.join(HERE, *PACKAGE.split("."))
        else:
            out = os.path.join(self.build_lib, *PACKAGE.split("."))
        generate(out)


class SdistWithProtos(sdist):
    """sdist that carries the .proto files (as ./proto/), so the sdist builds
    away from the repository."""

    def make_release_tree(self, base_dir, files):
        super().make_release_tree(base_dir, files)
        root = proto_root()
        for p in PROTOS:
            os.makedirs(os.path.join(base_dir, os.path.dirname(p)), exist_ok=True)
            shutil.copyfile(os.path.join(root, p), os.path.join(base_dir, p))


def runtime_requirements():
    """numpy, and the grpcio/protobuf that this build's generated code needs."""
    try:
        tools = importlib.metadata.version("grpcio-tools")
    except importlib.metadata.PackageNotFoundError:
        sys.exit("gradserve_client: building needs grpcio-tools (pip installs it, "
                 "unless --no-build-isolation: then pip install grpcio-tools first)")
    protobuf = [r for r in importlib.metadata.requires("grpcio-tools") or ()
                if re.match(r"protobuf\b", r)]
    return ["numpy>=1.21", f"grpcio>={tools}"] + (protobuf or ["protobuf"])


setup(install_requires=runtime_requirements(),
      cmdclass={"build_py": BuildPyWithProtos, "sdist": SdistWithProtos})
