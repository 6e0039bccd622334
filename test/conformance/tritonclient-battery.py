#!/usr/bin/env python3
"""A KServe v2 conformance battery run with NVIDIA's unmodified Triton Python HTTP client
(tritonclient.http, github.com/triton-inference-server/client; vendored under
test/third_party/tritonclient). Prints one JSON object with what the client saw, step by step; a
step the server refuses records {"error": {"status", "message"}} instead of stopping the battery.

Usage:
  PYTHONPATH=test/third_party/tritonclient /usr/bin/python3 tritonclient-battery.py \
      --url 127.0.0.1:8000 --model label-1 [--bytes-model strings] [--load] [--stats]

  --url          host:port of the server (the client's own form; an http:// prefix is dropped)
  --model        a model with fixed-size inputs: inputs are made from its metadata
  --bytes-model  a model whose first input is a BYTES vector (e.g. an Identity on strings)
  --load         explicit model control: read the repository index, load the models first and
                 unload the BYTES model at the end (Triton's model-repository extension)
  --stats        read the statistics extension after the inferences

Inputs are deterministic (small non-negative integers, or floats in [0, 1)), with -1 dims set to
2 (first) and 4 (others), and are printed, so the caller can compute its own reference.
"""
import argparse
import json
import sys

import numpy as np
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

parser = argparse.ArgumentParser()
parser.add_argument("--url", required=True)
parser.add_argument("--model", required=True)
parser.add_argument("--bytes-model")
parser.add_argument("--load", action="store_true")
parser.add_argument("--stats", action="store_true")
args = parser.parse_args()

url = args.url.split("://", 1)[-1].rstrip("/")
client = httpclient.InferenceServerClient(url=url, network_timeout=120.0)
out = {}


def step(name, fn):
    """Runs one step; the server's refusal is a result, not a crash."""
    try:
        out[name] = fn()
    except InferenceServerException as e:
        out[name] = {"error": {"status": e.status(), "message": e.message()}}
    return out[name]


NUMPY = {
    "BOOL": np.bool_,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
}


def make_array(datatype, shape, seed):
    n = int(np.prod(shape)) if shape else 1
    if datatype.startswith("FP"):
        values = (np.arange(n, dtype=np.float64) * 0.618 + seed * 0.1) % 1.0
    else:
        # Small values stay valid as token ids or masks.
        values = (np.arange(n) + seed) % 2 + 1
    return values.astype(NUMPY[datatype]).reshape(shape)


def concrete(shape):
    return [d if d >= 0 else (2 if i == 0 else 4) for i, d in enumerate(shape)]


def infer_inputs(arrays, binary, datatypes):
    inputs = []
    for name, array in arrays.items():
        i = httpclient.InferInput(name, list(array.shape), datatypes[name])
        i.set_data_from_numpy(array, binary_data=binary)
        inputs.append(i)
    return inputs


def outputs_of(result):
    response = result.get_response()
    seen = {}
    for o in response["outputs"]:
        array = result.as_numpy(o["name"])
        seen[o["name"]] = {
            "datatype": o["datatype"],
            "shape": list(array.shape),
            "data": array.astype(np.float64).ravel().tolist(),
        }
    return {"response": response, "outputs": seen}


step("live", client.is_server_live)
step("ready", client.is_server_ready)
step("server_metadata", client.get_server_metadata)
if args.load:
    step("index_before", client.get_model_repository_index)
    for m in [args.model] + ([args.bytes_model] if args.bytes_model else []):
        client.load_model(m)
step("model_ready", lambda: client.is_model_ready(args.model))
metadata = step("metadata", lambda: client.get_model_metadata(args.model))
step("config", lambda: client.get_model_config(args.model))

if "inputs" in metadata:
    datatypes = {t["name"]: t["datatype"] for t in metadata["inputs"]}
    arrays = {
        t["name"]: make_array(t["datatype"], concrete(t["shape"]), k) for k, t in enumerate(metadata["inputs"])
    }
    out["inputs"] = {
        name: {"datatype": datatypes[name], "shape": list(a.shape), "data": a.ravel().tolist()}
        for name, a in arrays.items()
    }
    # The client's default request: binary inputs, no outputs named (so binary_data_output).
    step("binary", lambda: outputs_of(client.infer(args.model, infer_inputs(arrays, True, datatypes))))
    # All JSON: JSON inputs, every output asked for as JSON.
    names = [t["name"] for t in metadata["outputs"]]
    step(
        "json",
        lambda: outputs_of(
            client.infer(
                args.model,
                infer_inputs(arrays, False, datatypes),
                outputs=[httpclient.InferRequestedOutput(n, binary_data=False) for n in names],
                request_id="json-1",
            )
        ),
    )
    # Errors: another datatype for the first input, an input left out.
    first = metadata["inputs"][0]
    other = "FP32" if first["datatype"] != "FP32" else "INT32"
    wrong = {**arrays, first["name"]: arrays[first["name"]].astype(NUMPY[other])}
    step(
        "wrong_datatype",
        lambda: client.infer(args.model, infer_inputs(wrong, True, {**datatypes, first["name"]: other})).get_response(),
    )
    if len(arrays) > 1:
        fewer = dict(list(arrays.items())[:-1])
        step("missing_input", lambda: client.infer(args.model, infer_inputs(fewer, True, datatypes)).get_response())

step("unknown_model", lambda: client.infer("no-such-model", [httpclient.InferInput("x", [1], "FP32")]).get_response())
step("unknown_model_metadata", lambda: client.get_model_metadata("no-such-model"))

if args.bytes_model:
    bmeta = step("bytes_metadata", lambda: client.get_model_metadata(args.bytes_model))
    if "inputs" in bmeta:
        text = np.array(["hello", "", "\u00e9t\u00e9"], dtype=np.object_)
        bname, oname = bmeta["inputs"][0]["name"], bmeta["outputs"][0]["name"]

        def echo(binary):
            t = httpclient.InferInput(bname, [3], "BYTES")
            t.set_data_from_numpy(text, binary_data=binary)
            r = client.infer(args.bytes_model, [t], outputs=[httpclient.InferRequestedOutput(oname, binary_data=binary)])
            return [b.decode("utf-8") if isinstance(b, bytes) else b for b in r.as_numpy(oname).tolist()]

        out["bytes"] = {}
        for mode in ("binary", "json"):
            try:
                out["bytes"][mode] = echo(mode == "binary")
            except InferenceServerException as e:
                out["bytes"][mode] = {"error": {"status": e.status(), "message": e.message()}}

if args.stats:
    step("stats", lambda: client.get_inference_statistics(args.model))
    step("all_stats", client.get_inference_statistics)
if args.load and args.bytes_model:
    client.unload_model(args.bytes_model)
    step("bytes_ready_after_unload", lambda: client.is_model_ready(args.bytes_model))
client.close()
json.dump(out, sys.stdout)
sys.stdout.write("\n")
