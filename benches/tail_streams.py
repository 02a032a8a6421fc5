"""Opens Tail streams against a glasslog server and never reads them (or reads them all).

    python3 benches/tail_streams.py HOST:PORT STREAMS START SECONDS stall|read

Used by benches/memory.sh to measure what stalled monitors cost the server. The gRPC stubs are
generated from proto/ into a temporary directory, as tests/interop/client.py does.
"""
import os
import sys
import tempfile
import threading
import time

import grpc
import grpc_tools
from grpc_tools import protoc

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def stubs():
    out = tempfile.mkdtemp()
    wkt = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    proto = os.path.join(ROOT, "proto", "glasslog", "v1", "log.proto")
    rc = protoc.main(["grpc_tools.protoc", f"-I{ROOT}/proto", f"-I{wkt}",
                      f"--python_out={out}", f"--grpc_python_out={out}", proto])
    if rc != 0:
        sys.exit(f"grpc_tools.protoc failed on {proto}")
    sys.path.insert(0, out)
    from glasslog.v1 import log_pb2, log_pb2_grpc
    return log_pb2, log_pb2_grpc


def main():
    addr, n, start, seconds, mode = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
    log_pb2, log_pb2_grpc = stubs()
    channels = [grpc.insecure_channel(addr) for _ in range(8)]
    streams = [log_pb2_grpc.TransparencyLogStub(channels[i % 8]).Tail(log_pb2.TailRequest(start=start))
               for i in range(n)]
    read = [0] * n

    def consume(i):
        try:
            for _ in streams[i]:
                read[i] += 1
                if mode == "stall":
                    break  # started; never read again
        except grpc.RpcError:
            pass

    for i in range(n):
        threading.Thread(target=consume, args=(i,), daemon=True).start()
    time.sleep(seconds)
    print(f"{n} streams, {sum(read)} events read")


if __name__ == "__main__":
    main()
