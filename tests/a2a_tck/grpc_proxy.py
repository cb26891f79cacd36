"""A loopback gRPC proxy for the A2A compatibility kit, which sends no credentials: every call
goes on to the origin with `authorization: Bearer <BALANCER_BEARER>` added to its metadata,
bytes unchanged, unary and server-streaming alike. Runs in the kit's own virtual environment
(grpcio is the kit's dependency).

    python grpc_proxy.py LISTEN_PORT UPSTREAM_HOST:PORT
"""

import os
import signal
import sys
import threading
from concurrent import futures

import grpc

listen_port, upstream = int(sys.argv[1]), sys.argv[2]
bearer = os.environ["BALANCER_BEARER"]
channel = grpc.insecure_channel(upstream)
# The streaming methods of lf.a2a.v1.A2AService; every other method is unary.
STREAMING = {"SendStreamingMessage", "SubscribeToTask"}


def metadata(context):
    kept = [(k, v) for k, v in context.invocation_metadata() if k.lower() != "authorization"]
    return kept + [("authorization", f"Bearer {bearer}")]


def forward_trailers(context, error):
    context.set_trailing_metadata(error.trailing_metadata() or ())
    context.abort(error.code(), error.details() or "")


class Proxy(grpc.GenericRpcHandler):
    def service(self, details):
        method = details.method
        if method.rsplit("/", 1)[-1] in STREAMING:
            call = channel.unary_stream(method)

            def stream(request, context):
                try:
                    yield from call(request, metadata=metadata(context))
                except grpc.RpcError as e:
                    forward_trailers(context, e)

            return grpc.unary_stream_rpc_method_handler(stream)
        call = channel.unary_unary(method)

        def unary(request, context):
            try:
                return call(request, metadata=metadata(context))
            except grpc.RpcError as e:
                forward_trailers(context, e)

        return grpc.unary_unary_rpc_method_handler(unary)


server = grpc.server(futures.ThreadPoolExecutor(max_workers=16), handlers=[Proxy()])
server.add_insecure_port(f"127.0.0.1:{listen_port}")
server.start()
# A background command of a non-interactive shell starts with SIGINT ignored; handle both here,
# in the main thread, which a blocking wait inside grpc would keep from running handlers.
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
signal.signal(signal.SIGINT, lambda *_: stop.set())
while not stop.wait(0.5):
    pass
server.stop(0).wait(1)
# Handler threads may still be inside an upstream stream the kit left open; they are not daemon
# threads, so a plain exit would wait for them.
os._exit(0)
