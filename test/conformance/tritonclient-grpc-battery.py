#!/usr/bin/env python3
"""A KServe v2 gRPC battery run with NVIDIA's unmodified Triton Python gRPC client
(tritonclient.grpc, github.com/triton-inference-server/client; vendored under
test/third_party/tritonclient, its service_pb2 / service_pb2_grpc / model_config_pb2 generated
from Triton's own .proto files by the caller, see test/e2e/kserve-front-grpc-client.test.ts).
Every inference is also made with tritonclient.http against --http-url, so the caller can check
that both protocols give the same answer. Prints one JSON object; a step the server refuses
records {"error": {"status", "message"}} instead of stopping the battery.

Usage:
  PYTHONPATH=<dir with the generated tritonclient> /usr/bin/python3 tritonclient-grpc-battery.py \
      --grpc-url 127.0.0.1:8081 --http-url 127.0.0.1:8080 --model label-1 --bytes-model strings
"""
import argparse
import json
import sys

import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

parser = argparse.ArgumentParser()
parser.add_argument("--grpc-url", required=True)
parser.add_argument("--http-url", required=True)
parser.add_argument("--model", required=True)
parser.add_argument("--bytes-model", required=True)
args = parser.parse_args()

grpc_client = grpcclient.InferenceServerClient(url=args.grpc_url)
http_client = httpclient.InferenceServerClient(url=args.http_url.split("://", 1)[-1].rstrip("/"))
out = {}


def step(name, fn):
    """Runs one step; the server's refusal is a result, not a crash."""
    try:
        out[name] = fn()
    except InferenceServerException as e:
        out[name] = {"error": {"status": e.status(), "message": e.message()}}
    return out[name]


def concrete(shape):
    return [d if d >= 0 else (2 if i == 0 else 4) for i, d in enumerate(shape)]


step("live", grpc_client.is_server_live)
step("ready", grpc_client.is_server_ready)
step("server_metadata", lambda: grpc_client.get_server_metadata(as_json=True))
step("model_ready", lambda: grpc_client.is_model_ready(args.model))
metadata = step("metadata", lambda: grpc_client.get_model_metadata(args.model, as_json=True))

if "inputs" in metadata:
    # Token ids and a mask: small integers stay valid for an embedding model.
    arrays = {
        t["name"]: ((np.arange(int(np.prod(concrete([int(d) for d in t["shape"]])))) + k) % 2 + 1)
        .astype(np.int64)
        .reshape(concrete([int(d) for d in t["shape"]]))
        for k, t in enumerate(metadata["inputs"])
    }
    names = [o["name"] for o in metadata["outputs"]]

    def via_grpc():
        inputs = []
        for name, a in arrays.items():
            i = grpcclient.InferInput(name, list(a.shape), "INT64")
            i.set_data_from_numpy(a)
            inputs.append(i)
        r = grpc_client.infer(args.model, inputs, outputs=[grpcclient.InferRequestedOutput(n) for n in names])
        response = r.get_response(as_json=True)
        return {
            "outputs": [{"name": o["name"], "datatype": o["datatype"], "shape": [int(d) for d in o["shape"]]} for o in response["outputs"]],
            "data": {n: r.as_numpy(n).astype(np.float64).ravel().tolist() for n in names},
        }

    def via_http():
        inputs = []
        for name, a in arrays.items():
            i = httpclient.InferInput(name, list(a.shape), "INT64")
            i.set_data_from_numpy(a, binary_data=True)
            inputs.append(i)
        r = http_client.infer(args.model, inputs, outputs=[httpclient.InferRequestedOutput(n, binary_data=True) for n in names])
        return {"data": {n: r.as_numpy(n).astype(np.float64).ravel().tolist() for n in names}}

    step("infer_grpc", via_grpc)
    step("infer_http", via_http)

    # An input of the wrong datatype: Triton answers INVALID_ARGUMENT.
    def wrong_datatype():
        inputs = []
        for k, (name, a) in enumerate(arrays.items()):
            dt = "FP32" if k == 0 else "INT64"
            i = grpcclient.InferInput(name, list(a.shape), dt)
            i.set_data_from_numpy(a.astype(np.float32) if k == 0 else a)
            inputs.append(i)
        return grpc_client.infer(args.model, inputs).get_response(as_json=True)

    step("wrong_datatype", wrong_datatype)

bmeta = step("bytes_metadata", lambda: grpc_client.get_model_metadata(args.bytes_model, as_json=True))
if "inputs" in bmeta:
    text = np.array([b"hello", b"", "\u00e9t\u00e9".encode("utf-8")], dtype=np.object_)
    bname, oname = bmeta["inputs"][0]["name"], bmeta["outputs"][0]["name"]

    def bytes_grpc():
        t = grpcclient.InferInput(bname, [3], "BYTES")
        t.set_data_from_numpy(text)
        r = grpc_client.infer(args.bytes_model, [t], outputs=[grpcclient.InferRequestedOutput(oname)])
        return [b.decode("utf-8") for b in r.as_numpy(oname).tolist()]

    def bytes_http():
        t = httpclient.InferInput(bname, [3], "BYTES")
        t.set_data_from_numpy(text, binary_data=True)
        r = http_client.infer(args.bytes_model, [t], outputs=[httpclient.InferRequestedOutput(oname, binary_data=True)])
        return [b.decode("utf-8") for b in r.as_numpy(oname).tolist()]

    step("bytes_grpc", bytes_grpc)
    step("bytes_http", bytes_http)

def unknown_model():
    x = grpcclient.InferInput("x", [1], "FP32")
    x.set_data_from_numpy(np.zeros([1], dtype=np.float32))
    return grpc_client.infer("no-such-model", [x]).get_response(as_json=True)


step("unknown_model", unknown_model)
step("unknown_model_ready", lambda: grpc_client.is_model_ready("no-such-model"))

grpc_client.close()
http_client.close()
json.dump(out, sys.stdout)
sys.stdout.write("\n")
