#!/usr/bin/env python3
"""Checks gradserve's wire contract against the official Triton client.

proto/grpc_service.proto and proto/model_config.proto must match the
descriptors tritonclient ships (tritonclient.grpc.service_pb2 and
model_config_pb2, generated from Triton's grpc_service.proto and
model_config.proto, a superset of KServe's v2 protocol):

1. Every message, enum and field of ours that Triton also has agrees in name,
   number, type, label, message/enum type and oneof; every enum value agrees.
2. Every message is complete (each Triton field is ours too), except the
   Triton fields listed in OMITTED_TRITON_FIELDS (deliberately left out), and
   every enum has all of Triton's values.
3. The only names of ours Triton lacks are gradserve's own (GRADSERVE_OWN),
   and their field numbers are >= 1000 when they extend a Triton message.
4. Every RPC of ours is Triton's: same method, request and response types,
   no streaming.
5. A fully populated instance of each message serializes to bytes Triton's
   class parses without unknown fields and re-serializes identically (ours
   parses Triton's bytes back equal, too).

Ours are compiled with protoc --descriptor_set_out (no generated Python, so
protoc's version does not have to match the Python protobuf runtime) into a
separate descriptor pool. Exits 1 listing every mismatch.

  proto_compat_check.py [--protoc /usr/bin/protoc] [--source-dir REPO_ROOT]
"""

import argparse
import os
import subprocess
import sys
import tempfile

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import FieldDescriptor

from tritonclient.grpc import model_config_pb2 as triton_config
from tritonclient.grpc import service_pb2 as triton_service

OUR_FILES = ["proto/model_config.proto", "proto/grpc_service.proto"]

# Triton fields gradserve deliberately does not have (the features behind them
# are not implemented; a config.pbtxt using one fails to parse, naming it).
OMITTED_TRITON_FIELDS = {
    "inference.ModelConfig": {
        "runtime", "batch_input", "batch_output",
        "sequence_batching", "ensemble_scheduling", "cc_model_filenames",
        "metric_tags", "model_operations", "model_transaction_policy",
        "model_repository_agents", "response_cache", "model_metrics",
    },
    # optimization is implemented in part: cuda { graphs, graph_spec { batch_size } }.
    "inference.ModelOptimizationPolicy": {
        "graph", "priority", "execution_accelerators", "input_pinned_memory",
        "output_pinned_memory", "gather_kernel_buffer_threshold", "eager_batching",
    },
    "inference.ModelOptimizationPolicy.Cuda": {"busy_wait_events", "output_copy_stream"},
    "inference.ModelOptimizationPolicy.Cuda.GraphSpec": {"input", "graph_lower_bound"},
}

# gradserve's own additions (Note [Triton-compatible ModelConfig]).
GRADSERVE_OWN_FIELD_MIN = 1000
GRADSERVE_OWN_PREFIXES = ("inference.ModelTrainingConfig", "inference.ModelOptimizer")


def is_own(full_name):
    return any(full_name == p or full_name.startswith(p + ".") for p in GRADSERVE_OWN_PREFIXES)


def load_ours(protoc, source_dir):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "ours.pb")
        subprocess.run([protoc, "-I", source_dir, "--include_imports",
                        "--descriptor_set_out=" + out] + OUR_FILES,
                       check=True, cwd=source_dir)
        fds = descriptor_pb2.FileDescriptorSet()
        with open(out, "rb") as f:
            fds.ParseFromString(f.read())
    pool = descriptor_pool.DescriptorPool()
    for fdp in fds.file:
        pool.Add(fdp)
    return [pool.FindFileByName(name) for name in OUR_FILES]


def type_name(field):
    if field.message_type is not None:
        return field.message_type.full_name
    if field.enum_type is not None:
        return field.enum_type.full_name
    return ""


def is_repeated(field):
    flag = getattr(field, "is_repeated", None)  # protobuf >= 5.29; label() is deprecated
    if isinstance(flag, bool):
        return flag
    return field.label == FieldDescriptor.LABEL_REPEATED


def real_oneof(field):
    oneof = field.containing_oneof
    if oneof is None:
        return None
    # A proto3 `optional` field sits alone in a synthetic oneof named "_<field>".
    if len(oneof.fields) == 1 and oneof.name == "_" + field.name:
        return None
    return oneof.name


def all_messages(file_desc):
    def walk(msg):
        yield msg
        for nested in msg.nested_types:
            yield from walk(nested)
    for msg in file_desc.message_types_by_name.values():
        yield from walk(msg)


def all_enums(file_desc):
    yield from file_desc.enum_types_by_name.values()
    for msg in all_messages(file_desc):
        yield from msg.enum_types


class Checker:
    def __init__(self):
        self.errors = []
        self.compared_fields = 0
        self.compared_messages = 0

    def error(self, text):
        self.errors.append(text)

    def compare_message(self, ours, theirs):
        self.compared_messages += 1
        name = ours.full_name
        if ours.GetOptions().map_entry != theirs.GetOptions().map_entry:
            self.error(f"{name}: map entry in one file only")
        for field in ours.fields:
            other = theirs.fields_by_name.get(field.name)
            if other is None:
                if not is_own(name) and field.number < GRADSERVE_OWN_FIELD_MIN:
                    self.error(f"{name}.{field.name} = {field.number}: not in Triton's "
                               f"message (gradserve additions need numbers >= "
                               f"{GRADSERVE_OWN_FIELD_MIN})")
                if field.number in theirs.fields_by_number:
                    self.error(f"{name}.{field.name} = {field.number}: number taken by "
                               f"Triton's {theirs.fields_by_number[field.number].name}")
                continue
            self.compared_fields += 1
            checks = [
                ("number", field.number, other.number),
                ("type", field.type, other.type),
                ("repeated", is_repeated(field),
                 is_repeated(other)),
                ("type name", type_name(field), type_name(other)),
                ("oneof", real_oneof(field), real_oneof(other)),
            ]
            for what, mine, spec in checks:
                if mine != spec:
                    self.error(f"{name}.{field.name}: {what} {mine!r}, Triton has {spec!r}")
        omitted = OMITTED_TRITON_FIELDS.get(name, set())
        for other in theirs.fields:
            if other.name not in ours.fields_by_name and other.name not in omitted:
                self.error(f"{name}: missing Triton field {other.name} = {other.number}")
        for dropped in omitted:
            if dropped in ours.fields_by_name:
                self.error(f"{name}.{dropped}: listed as omitted but defined; "
                           f"update OMITTED_TRITON_FIELDS")
            elif dropped not in theirs.fields_by_name:
                self.error(f"{name}.{dropped}: listed as omitted but not Triton's")

    def compare_enum(self, ours, theirs):
        mine = {v.name: v.number for v in ours.values}
        spec = {v.name: v.number for v in theirs.values}
        if mine != spec:
            self.error(f"enum {ours.full_name}: {mine}, Triton has {spec}")

    def compare_services(self, ours, theirs):
        for service in ours.services_by_name.values():
            other = theirs.services_by_name.get(service.name)
            if other is None:
                self.error(f"service {service.full_name}: not Triton's")
                continue
            for method in service.methods:
                spec = other.methods_by_name.get(method.name)
                if spec is None:
                    self.error(f"rpc {method.full_name}: not Triton's")
                    continue
                for what, a, b in [
                        ("request", method.input_type.full_name, spec.input_type.full_name),
                        ("response", method.output_type.full_name, spec.output_type.full_name),
                        ("client streaming", method.client_streaming, spec.client_streaming),
                        ("server streaming", method.server_streaming, spec.server_streaming)]:
                    if a != b:
                        self.error(f"rpc {method.full_name}: {what} {a!r}, Triton has {b!r}")


# ------------------------------------------------------------- round trip

def sample_scalar(field, salt):
    t = field.type
    if t == FieldDescriptor.TYPE_BOOL:
        return True
    if t in (FieldDescriptor.TYPE_STRING,):
        return f"{field.name}-{salt}"
    if t == FieldDescriptor.TYPE_BYTES:
        return f"\x00{field.name}\xff{salt}".encode("latin-1")
    if t in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
        return 1.5 + salt
    if t == FieldDescriptor.TYPE_ENUM:
        values = field.enum_type.values
        return values[-1].number
    if t in (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_INT64,
             FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SINT64,
             FieldDescriptor.TYPE_SFIXED32, FieldDescriptor.TYPE_SFIXED64):
        return -(field.number + salt) if salt % 2 else field.number + salt
    return field.number + salt + 7  # unsigned


def populate(msg, depth=0):
    """Sets every field (one member per oneof, the last) to a sample value."""
    desc = msg.DESCRIPTOR
    for field in desc.fields:
        oneof = real_oneof(field)
        if oneof is not None and field is not field.containing_oneof.fields[-1]:
            continue
        repeated = is_repeated(field)
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            key_field = field.message_type.fields_by_name["key"]
            value_field = field.message_type.fields_by_name["value"]
            container = getattr(msg, field.name)
            for salt in (1, 2):
                key = sample_scalar(key_field, salt)
                if value_field.message_type is not None:
                    if depth < 4:
                        populate(container[key], depth + 1)
                else:
                    container[key] = sample_scalar(value_field, salt)
        elif field.message_type is not None:
            if depth >= 4:
                continue
            if repeated:
                for _ in range(2):
                    populate(getattr(msg, field.name).add(), depth + 1)
            else:
                sub = getattr(msg, field.name)
                sub.SetInParent()
                populate(sub, depth + 1)
        elif repeated:
            getattr(msg, field.name).extend(sample_scalar(field, s) for s in (1, 2, 3))
        else:
            setattr(msg, field.name, sample_scalar(field, 0))


def unknown_field_numbers(msg):
    """The numbers of the unknown fields in msg and its submessages."""
    numbers = []
    try:
        from google.protobuf import unknown_fields
        numbers += [f.field_number for f in unknown_fields.UnknownFieldSet(msg)]
    except ImportError:  # older runtimes
        numbers += [f.field_number for f in msg.UnknownFields()]
    for field, value in msg.ListFields():
        if field.message_type is None:
            continue
        if field.message_type.GetOptions().map_entry:
            value_field = field.message_type.fields_by_name["value"]
            items = value.values() if value_field.message_type is not None else []
        elif is_repeated(field):
            items = value
        else:
            items = [value]
        for item in items:
            numbers += unknown_field_numbers(item)
    return numbers


def round_trip(checker, ours_desc, triton_class):
    ours_class = message_factory.GetMessageClass(ours_desc)
    mine = ours_class()
    populate(mine)
    wire = mine.SerializeToString(deterministic=True)
    theirs = triton_class()
    theirs.ParseFromString(wire)
    name = ours_desc.full_name
    # Only gradserve's own additions may be unknown to Triton (and are kept).
    unknown = [n for n in unknown_field_numbers(theirs) if n < GRADSERVE_OWN_FIELD_MIN]
    if unknown:
        checker.error(f"{name}: Triton's class sees unknown fields {unknown} in our bytes")
    if theirs.SerializeToString(deterministic=True) != wire:
        checker.error(f"{name}: Triton's class re-serializes our bytes differently")
    back = ours_class()
    back.ParseFromString(theirs.SerializeToString())
    if back != mine:
        checker.error(f"{name}: our bytes do not survive Triton's class unchanged")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protoc", default="/usr/bin/protoc")
    parser.add_argument("--source-dir", default=os.path.abspath(
        os.path.join(os.path.dirname(__file__), "..", "..")))
    args = parser.parse_args()

    ours_config, ours_service = load_ours(args.protoc, args.source_dir)
    checker = Checker()
    pairs = [(ours_config, triton_config.DESCRIPTOR), (ours_service, triton_service.DESCRIPTOR)]
    for ours, theirs in pairs:
        if ours.package != theirs.package:
            checker.error(f"{ours.name}: package {ours.package}, Triton has {theirs.package}")
        triton_pool = theirs.pool
        for msg in all_messages(ours):
            try:
                other = triton_pool.FindMessageTypeByName(msg.full_name)
            except KeyError:
                if not is_own(msg.full_name):
                    checker.error(f"message {msg.full_name}: not Triton's")
                continue
            checker.compare_message(msg, other)
            if not msg.GetOptions().map_entry:
                round_trip(checker, msg, message_factory.GetMessageClass(other))
        for enum in all_enums(ours):
            try:
                other = triton_pool.FindEnumTypeByName(enum.full_name)
            except KeyError:
                if not is_own(enum.full_name):
                    checker.error(f"enum {enum.full_name}: not Triton's")
                continue
            checker.compare_enum(enum, other)
        checker.compare_services(ours, theirs)

    import tritonclient
    version = getattr(tritonclient, "__version__", None)
    if version is None:
        from importlib import metadata
        version = metadata.version("tritonclient")
    print(f"proto_compat_check: tritonclient {version}: compared "
          f"{checker.compared_messages} messages, {checker.compared_fields} fields")
    if checker.errors:
        for text in checker.errors:
            print("MISMATCH " + text)
        print(f"proto_compat_check: {len(checker.errors)} mismatch(es)")
        return 1
    print("proto_compat_check: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
