"""A smart-routing worker over the written protocol (PROTOCOL.md), on asyncio + websockets.

Hello -> Welcome -> heartbeats; RunTask -> exactly one TaskResult; LabelOrder -> LabelEvent;
Drain lasts one link, SIGTERM drains for good; reconnect with backoff + jitter.
"""

import asyncio
import json
import logging
import random
import signal
import time
from collections import OrderedDict

import websockets

from . import smart_routing_pb2 as pb

PROTOCOL_VERSION = 1
log = logging.getLogger("smart_routing_worker")

# PROTOCOL.md task error codes by name.
ERROR_CODES = {
    "bad_parameters": pb.TASK_ERROR_CODE_BAD_PARAMETERS,
    "unknown_task_type": pb.TASK_ERROR_CODE_UNKNOWN_TASK_TYPE,
    "label_load_failed": pb.TASK_ERROR_CODE_LABEL_LOAD_FAILED,
    "label_not_found": pb.TASK_ERROR_CODE_LABEL_NOT_FOUND,
    "inference_failed": pb.TASK_ERROR_CODE_INFERENCE_FAILED,
    "internal": pb.TASK_ERROR_CODE_INTERNAL,
    "draining": pb.TASK_ERROR_CODE_DRAINING,
    "no_slot": pb.TASK_ERROR_CODE_NO_SLOT,
    "model_server_unavailable": pb.TASK_ERROR_CODE_MODEL_SERVER_UNAVAILABLE,
}


class TaskFailed(Exception):
    """Raise from a handler (or its validator) to fail a task with a protocol error code."""

    def __init__(self, code, message):
        if code not in ERROR_CODES:
            raise ValueError("unknown task error code: %s" % code)
        super().__init__(message)
        self.code = code


class Worker:
    """One worker. Register handlers with decorators, then call run().

    dispatcher_url: base URL (http(s):// or ws(s)://); worker_id; token: optional bearer token;
    label_capacity (default 2); task_slots (default 1).
    """

    def __init__(self, dispatcher_url, worker_id, token=None, label_capacity=2, task_slots=1):
        base = dispatcher_url.rstrip("/")
        if base.startswith("http"):
            base = "ws" + base[4:]
        self.url = base + "/worker-listen"
        self.worker_id = worker_id
        self.token = token
        self.label_capacity = max(1, label_capacity)
        self.task_slots = max(1, task_slots)
        self._handlers = {}  # task_type -> (fn, label_free, validate)
        self._on_load = None
        self._on_unload = None
        self._loaded = OrderedDict()  # label -> None, most recently used first
        self._label_lock = asyncio.Lock()
        self._in_flight = 0
        self._shutting_down = False
        self._link_draining = False
        self._stop = None

    # ------------------------------------------------------------ registration

    def task(self, task_type, label_free=False, validate=None):
        """Decorator: fn(params: dict, label: str) -> JSON-serialisable result.

        validate(params) runs before any load; raise TaskFailed('bad_parameters', ...) there.
        """

        def register(fn):
            if task_type in self._handlers:
                raise ValueError("task type already registered: %s" % task_type)
            self._handlers[task_type] = (fn, label_free, validate)
            return fn

        return register

    def on_load(self, fn):
        """Decorator: fn(label) loads a label into your own model cache (raise to fail)."""
        self._on_load = fn
        return fn

    def on_unload(self, fn):
        """Decorator: fn(label) frees a label."""
        self._on_unload = fn
        return fn

    @property
    def loaded_labels(self):
        return list(self._loaded.keys())

    def _state(self):
        draining = self._shutting_down or self._link_draining
        return pb.WORKER_STATE_DRAINING if draining else pb.WORKER_STATE_READY

    # ------------------------------------------------------------ labels

    async def _call(self, fn, *args):
        if fn is None:
            return None
        if asyncio.iscoroutinefunction(fn):
            return await fn(*args)
        # Sync hooks run off the event loop so heartbeats keep flowing during a long load.
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    async def _unload(self, send, label):
        started = time.monotonic()
        await self._call(self._on_unload, label)
        self._loaded.pop(label, None)
        await send(self._label_event(pb.LABEL_EVENT_KIND_EVICTED, label, started, ""))

    async def _load(self, send, label):
        """Loads label (evicting LRU when full); returns the load time in ms; raises on failure."""
        while len(self._loaded) >= self.label_capacity:
            await self._unload(send, next(reversed(self._loaded)))
        started = time.monotonic()
        try:
            await self._call(self._on_load, label)
        except Exception as err:  # the user's hook failed: report it, fail the task
            await send(self._label_event(pb.LABEL_EVENT_KIND_LOAD_FAILED, label, started, str(err)))
            raise TaskFailed("label_load_failed", "%s: %s" % (label, err)) from err
        self._loaded[label] = None
        self._loaded.move_to_end(label, last=False)
        await send(self._label_event(pb.LABEL_EVENT_KIND_LOADED, label, started, ""))
        return (time.monotonic() - started) * 1000.0

    def _label_event(self, kind, label, started, message):
        ev = pb.LabelEvent(kind=kind, label=label, duration_ms=(time.monotonic() - started) * 1000.0,
                           message=message, loaded_labels=self.loaded_labels)
        return pb.WorkerMessage(label_event=ev)

    # ------------------------------------------------------------ tasks

    async def _run_task(self, send, rt):
        result = pb.TaskResult(task_id=rt.task_id)
        try:
            if self._state() == pb.WORKER_STATE_DRAINING:
                raise TaskFailed("draining", "worker is draining")
            if self._in_flight >= self.task_slots:
                raise TaskFailed("no_slot", "every task slot is busy")
            entry = self._handlers.get(rt.task_type)
            if entry is None:
                raise TaskFailed("unknown_task_type", "unknown task type: %s" % rt.task_type)
            fn, label_free, validate = entry
            self._in_flight += 1
            try:
                try:
                    params = json.loads(rt.parameters_json or "null")
                except ValueError as err:
                    raise TaskFailed("bad_parameters", "parameters_json: %s" % err) from err
                if validate is not None:
                    validate(params)
                if not label_free:
                    result.label = rt.label
                    async with self._label_lock:
                        if rt.evict_label and rt.evict_label != rt.label and rt.evict_label in self._loaded:
                            await self._unload(send, rt.evict_label)
                        if rt.label in self._loaded:
                            self._loaded.move_to_end(rt.label, last=False)
                        else:
                            result.load_ms = await self._load(send, rt.label)
                            result.label_miss = True
                started = time.monotonic()
                try:
                    value = await self._call(fn, params, "" if label_free else rt.label)
                finally:
                    result.run_ms = (time.monotonic() - started) * 1000.0
                result.result_json = json.dumps(value)
            finally:
                self._in_flight -= 1
        except TaskFailed as err:
            result.error.CopyFrom(pb.TaskError(code=ERROR_CODES[err.code], message=str(err)))
        except Exception as err:  # a handler bug must still answer the task
            log.exception("task %s failed", rt.task_id)
            result.error.CopyFrom(pb.TaskError(code=pb.TASK_ERROR_CODE_INFERENCE_FAILED,
                                               message="%s: %s" % (type(err).__name__, err)))
        result.loaded_labels[:] = self.loaded_labels
        await send(pb.WorkerMessage(task_result=result))

    async def _label_order(self, send, order):
        async with self._label_lock:
            try:
                if order.action == pb.LABEL_ORDER_ACTION_LOAD:
                    if order.label in self._loaded:
                        await send(self._label_event(pb.LABEL_EVENT_KIND_LOADED, order.label,
                                                     time.monotonic(), "already loaded"))
                    else:
                        await self._load(send, order.label)
                elif order.action == pb.LABEL_ORDER_ACTION_UNLOAD:
                    if order.label in self._loaded:
                        await self._unload(send, order.label)
                    else:
                        await send(self._label_event(pb.LABEL_EVENT_KIND_EVICTED, order.label,
                                                     time.monotonic(), "was not loaded"))
            except TaskFailed:
                pass  # the load_failed event is already sent

    # ------------------------------------------------------------ links

    def _hello(self):
        label_free = [t for t, (_, free, _) in self._handlers.items() if free]
        return pb.WorkerMessage(hello=pb.Hello(
            protocol_version=PROTOCOL_VERSION, worker_id=self.worker_id,
            label_capacity=self.label_capacity, task_slots=self.task_slots,
            loaded_labels=self.loaded_labels, task_types=list(self._handlers),
            state=self._state(), label_free_task_types=label_free))

    def _heartbeat(self, ping_id=0):
        return pb.WorkerMessage(heartbeat=pb.Heartbeat(
            in_flight=self._in_flight, state=self._state(), loaded_labels=self.loaded_labels,
            ping_id=ping_id))

    async def _link(self, on_welcome):
        headers = {"Worker-Id": self.worker_id}
        if self.token:
            headers["Authorization"] = "Bearer " + self.token
        async with websockets.connect(self.url, extra_headers=headers, compression=None,
                                      max_size=None) as ws:
            self._link_draining = False
            self._ws = ws

            async def send(msg):
                try:
                    await ws.send(msg.SerializeToString())
                except websockets.ConnectionClosed:
                    pass  # the dispatcher retries the task elsewhere

            await send(self._hello())
            welcome = None
            while welcome is None:
                msg = pb.DispatcherMessage.FromString(await ws.recv())
                if msg.WhichOneof("body") == "welcome":
                    welcome = msg.welcome
            if welcome.protocol_version != PROTOCOL_VERSION:
                raise RuntimeError("dispatcher speaks protocol %d" % welcome.protocol_version)
            if welcome.label_capacity:
                self.label_capacity = welcome.label_capacity
            if welcome.task_slots:
                self.task_slots = welcome.task_slots
            on_welcome()
            interval = max(welcome.heartbeat_interval_ms, 10) / 1000.0
            log.info("registered at %s as %s", self.url, self.worker_id)

            async def beat():
                while True:
                    await asyncio.sleep(interval)
                    await send(self._heartbeat())

            tasks = set()
            beater = asyncio.ensure_future(beat())
            try:
                while True:
                    try:
                        frame = await asyncio.wait_for(ws.recv(), timeout=max(3 * interval, 3.0))
                    except asyncio.TimeoutError:
                        log.warning("nothing heard for three heartbeats: reconnecting")
                        return
                    msg = pb.DispatcherMessage.FromString(frame)
                    kind = msg.WhichOneof("body")
                    if kind == "run_task":
                        t = asyncio.ensure_future(self._run_task(send, msg.run_task))
                    elif kind == "label_order":
                        t = asyncio.ensure_future(self._label_order(send, msg.label_order))
                    elif kind == "ping":
                        await send(self._heartbeat(msg.ping.ping_id))
                        continue
                    elif kind == "drain":
                        self._link_draining = True
                        await send(self._heartbeat())
                        continue
                    else:
                        continue
                    tasks.add(t)
                    t.add_done_callback(tasks.discard)
            finally:
                beater.cancel()
                if tasks:
                    await asyncio.wait(tasks)

    async def run_async(self):
        """Connects and serves until stop() (or SIGTERM); reconnects with backoff + jitter."""
        self._stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        try:
            loop.add_signal_handler(signal.SIGTERM, self.stop)
            loop.add_signal_handler(signal.SIGINT, self.stop)
        except (NotImplementedError, RuntimeError):
            pass
        delay = 0.25

        def reset():
            nonlocal delay
            delay = 0.25

        while not self._stop.is_set():
            link = asyncio.ensure_future(self._link(reset))
            stopper = asyncio.ensure_future(self._stop.wait())
            await asyncio.wait({link, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if self._stop.is_set():
                stopper.cancel()
                await self._drain_and_close(link)
                return
            stopper.cancel()
            try:
                link.result()
            except Exception as err:
                log.warning("link lost: %s", err)
            wait = random.uniform(delay / 2, delay)
            delay = min(delay * 2, 10.0)
            try:
                await asyncio.wait_for(self._stop.wait(), timeout=wait)
            except asyncio.TimeoutError:
                pass

    async def _drain_and_close(self, link):
        ws = getattr(self, "_ws", None)
        if ws is not None and not link.done():
            try:
                await ws.send(self._heartbeat().SerializeToString())
                while self._in_flight > 0:
                    await asyncio.sleep(0.01)
                await ws.close(1000, "shutting down")
            except websockets.ConnectionClosed:
                pass
        link.cancel()
        try:
            await link
        except BaseException:
            pass

    def stop(self):
        """Drains for good: reports draining, finishes running tasks, closes with 1000."""
        self._shutting_down = True
        if self._stop is not None:
            self._stop.set()

    def run(self):
        """Blocking run_async()."""
        asyncio.run(self.run_async())
