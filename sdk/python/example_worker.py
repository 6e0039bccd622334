"""Example worker: python3 example_worker.py <dispatcher-url> <worker-id> [token]."""

import sys

from smart_routing_worker import TaskFailed, Worker

worker = Worker(sys.argv[1], sys.argv[2], token=sys.argv[3] if len(sys.argv) > 3 else None)
models = {}  # your own model cache


@worker.on_load
def load(label):
    models[label] = {"name": label}


@worker.on_unload
def unload(label):
    models.pop(label, None)


def need_text(params):
    if not isinstance(params, dict) or not isinstance(params.get("text"), str):
        raise TaskFailed("bad_parameters", "text: expected a string")


@worker.task("py_upper", validate=need_text)
def upper(params, label):
    return {"label": models[label]["name"], "text": params["text"].upper()}


@worker.task("py_echo", label_free=True)
def echo(params, label):
    return params


@worker.task("py_fail", label_free=True)
def fail(params, label):
    raise RuntimeError("boom")


if __name__ == "__main__":
    worker.run()
