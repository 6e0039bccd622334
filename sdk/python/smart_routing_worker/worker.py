"""A smart-routing worker over the written protocol (PROTOCOL.md), on asyncio + websockets.

Hello -> Welcome -> heartbeats; RunTask -> exactly one TaskResult; LabelOrder -> LabelEvent;
Drain lasts one link, SIGTERM drains for good; reconnect with backoff + jitter.

Several dispatcher replicas (PROTOCOL.md "Several replicas"): one link per URL, each with its own
reconnect; Hello, label events and heartbeats on every link; the newest fencing token wins (an
older RunTask is answered stale_leader and not run, an older LabelOrder is ignored); a result goes
on the link its task came on, else the leader's link, else it is kept (bounded) until a replica
announces leadership. Host names are not expanded to several addresses here (the TypeScript
worker does that): list every replica's URL.
"""

import asyncio
import json
import logging
import random
import signal
import time
from collections import OrderedDict, deque

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
    "cancelled": pb.TASK_ERROR_CODE_CANCELLED,
    "stale_leader": pb.TASK_ERROR_CODE_STALE_LEADER,
}


class _Link:
    """One dispatcher link: its URL, its socket while open, what its replica said in Welcome."""

    def __init__(self, url):
        self.url = url
        self.ws = None
        self.draining = False
        self.role = pb.DISPATCHER_ROLE_UNSPECIFIED
        self.replica_id = ""

    @property
    def open(self):
        return self.ws is not None and self.ws.open

    async def send(self, msg):
        """True when the frame went out on an open socket."""
        ws = self.ws
        if ws is None or not ws.open:
            return False
        try:
            await ws.send(msg.SerializeToString())
            return True
        except websockets.ConnectionClosed:
            return False


def _listen_url(base):
    base = base.strip().rstrip("/")
    if base.startswith("http"):
        base = "ws" + base[4:]
    return base + "/worker-listen"


class TaskFailed(Exception):
    """Raise from a handler (or its validator) to fail a task with a protocol error code."""

    def __init__(self, code, message):
        if code not in ERROR_CODES:
            raise ValueError("unknown task error code: %s" % code)
        super().__init__(message)
        self.code = code


class Worker:
    """One worker. Register handlers with decorators, then call run().

    dispatcher_url: base URL (http(s):// or ws(s)://), or several (a list, or one comma-separated
    string) for several dispatcher replicas; worker_id; token: optional bearer token;
    label_capacity (default 2); task_slots (default 1); pending_results_max: results kept while
    no replica's link can take them (default 1000).
    """

    def __init__(self, dispatcher_url, worker_id, token=None, label_capacity=2, task_slots=1,
                 pending_results_max=1000):
        bases = dispatcher_url.split(",") if isinstance(dispatcher_url, str) else list(dispatcher_url)
        self.urls = list(OrderedDict.fromkeys(_listen_url(b) for b in bases if b.strip()))
        if not self.urls:
            raise ValueError("dispatcher_url names no URL")
        self.url = self.urls[0]
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
        self._running = OrderedDict()  # task ids running now (Heartbeat.running_task_ids)
        self._shutting_down = False
        self._link_draining = False  # a lone link's Drain (unit tests drive the worker without links)
        self._stop = None
        self._links = [_Link(u) for u in self.urls]
        self._newest_token = 0
        self._leader = None
        self._replicated = False
        self._pending = deque(maxlen=max(0, pending_results_max))
        self._stale_logged_at = 0.0

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

    def _state(self, link=None):
        draining = self._shutting_down or (link.draining if link is not None else self._link_draining)
        return pb.WORKER_STATE_DRAINING if draining else pb.WORKER_STATE_READY

    # ------------------------------------------------------------ replicas

    def _is_stale(self, token, link, what):
        """Fencing: records token; True when it is older than the newest seen (the order is refused)."""
        if token < self._newest_token:
            now = time.monotonic()
            if now - self._stale_logged_at >= 5.0:  # one warning per 5 s: a paused old leader may flood
                self._stale_logged_at = now
                log.warning("%s with fencing token %d, older than %d: refused", what, token,
                            self._newest_token)
            return True
        if token > self._newest_token:
            self._newest_token = token
            self._replicated = True
            if link is not None:
                self._leader = link
        return False

    async def _announce(self, link, token):
        """A replica says it leads with token: it does unless a newer one was seen."""
        self._replicated = True
        if token < self._newest_token:
            log.warning("leadership with fencing token %d, older than %d: ignored", token,
                        self._newest_token)
            return
        self._newest_token = token
        self._leader = link
        while self._pending:
            if not await link.send(self._pending[0]):
                return
            self._pending.popleft()

    async def _deliver(self, link, msg):
        """A task's result: on link, else on the leader's link, else kept until a leader announces."""
        if link is not None and await link.send(msg):
            return
        leader = self._leader
        if leader is not None and leader is not link and await leader.send(msg):
            return
        if not self._replicated or self._pending.maxlen == 0:
            log.warning("result of task %s dropped: its link is gone", msg.task_result.task_id)
            return
        if len(self._pending) == self._pending.maxlen:
            log.warning("too many results waiting for a leader: dropped task %s's",
                        self._pending[0].task_result.task_id)
        self._pending.append(msg)

    async def _broadcast(self, msg):
        for link in self._links:
            await link.send(msg)

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

    async def _run_task(self, send, rt, link=None, deliver=None):
        """send: label events; deliver(msg): the result (default send)."""
        result = pb.TaskResult(task_id=rt.task_id)
        try:
            if self._is_stale(rt.fencing_token, link, "task %s" % rt.task_id):
                raise TaskFailed("stale_leader", "fencing token %d is older than the newest this worker "
                                 "has seen" % rt.fencing_token)
            if self._state(link) == pb.WORKER_STATE_DRAINING:
                raise TaskFailed("draining", "worker is draining")
            if self._in_flight >= self.task_slots:
                raise TaskFailed("no_slot", "every task slot is busy")
            entry = self._handlers.get(rt.task_type)
            if entry is None:
                raise TaskFailed("unknown_task_type", "unknown task type: %s" % rt.task_type)
            fn, label_free, validate = entry
            self._in_flight += 1
            self._running[rt.task_id] = None
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
                self._running.pop(rt.task_id, None)
        except TaskFailed as err:
            result.error.CopyFrom(pb.TaskError(code=ERROR_CODES[err.code], message=str(err)))
        except Exception as err:  # a handler bug must still answer the task
            log.exception("task %s failed", rt.task_id)
            result.error.CopyFrom(pb.TaskError(code=pb.TASK_ERROR_CODE_INFERENCE_FAILED,
                                               message="%s: %s" % (type(err).__name__, err)))
        result.loaded_labels[:] = self.loaded_labels
        await (deliver or send)(pb.WorkerMessage(task_result=result))

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

    def _hello(self, link=None):
        label_free = [t for t, (_, free, _) in self._handlers.items() if free]
        return pb.WorkerMessage(hello=pb.Hello(
            protocol_version=PROTOCOL_VERSION, worker_id=self.worker_id,
            label_capacity=self.label_capacity, task_slots=self.task_slots,
            loaded_labels=self.loaded_labels, task_types=list(self._handlers),
            state=self._state(link), label_free_task_types=label_free))

    def _heartbeat(self, ping_id=0, link=None):
        return pb.WorkerMessage(heartbeat=pb.Heartbeat(
            in_flight=self._in_flight, state=self._state(link), loaded_labels=self.loaded_labels,
            ping_id=ping_id, running_task_ids=list(self._running)))

    async def _link(self, link, on_welcome):
        headers = {"Worker-Id": self.worker_id}
        if self.token:
            headers["Authorization"] = "Bearer " + self.token
        async with websockets.connect(link.url, extra_headers=headers, compression=None,
                                      max_size=None) as ws:
            link.draining = False
            link.role, link.replica_id = pb.DISPATCHER_ROLE_UNSPECIFIED, ""
            link.ws = ws

            async def send(msg):
                try:
                    await ws.send(msg.SerializeToString())
                except websockets.ConnectionClosed:
                    pass  # the dispatcher retries the task elsewhere

            async def deliver(msg):
                # The socket the task came on, not a later one of the same link.
                if ws.open:
                    try:
                        await ws.send(msg.SerializeToString())
                        return
                    except websockets.ConnectionClosed:
                        pass
                await self._deliver(None, msg)

            await send(self._hello(link))
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
            link.role, link.replica_id = welcome.role, welcome.replica_id
            if welcome.role in (pb.DISPATCHER_ROLE_LEADER, pb.DISPATCHER_ROLE_STANDBY) or welcome.fencing_token:
                self._replicated = True
            if welcome.role == pb.DISPATCHER_ROLE_LEADER:
                await self._announce(link, welcome.fencing_token)
            elif welcome.role == pb.DISPATCHER_ROLE_STANDBY and self._leader is link:
                self._leader = None  # that replica lost its lease
            on_welcome()
            interval = max(welcome.heartbeat_interval_ms, 10) / 1000.0
            log.info("registered at %s as %s", link.url, self.worker_id)

            async def beat():
                while True:
                    await asyncio.sleep(interval)
                    await send(self._heartbeat(link=link))

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
                        t = asyncio.ensure_future(self._run_task(self._broadcast, msg.run_task, link, deliver))
                    elif kind == "label_order":
                        if self._is_stale(msg.label_order.fencing_token, link,
                                          "label order for %s" % msg.label_order.label):
                            continue
                        t = asyncio.ensure_future(self._label_order(self._broadcast, msg.label_order))
                    elif kind == "leadership":
                        await self._announce(link, msg.leadership.fencing_token)
                        continue
                    elif kind == "ping":
                        await send(self._heartbeat(msg.ping.ping_id, link))
                        continue
                    elif kind == "drain":
                        link.draining = True
                        await send(self._heartbeat(link=link))
                        continue
                    else:
                        continue
                    tasks.add(t)
                    t.add_done_callback(tasks.discard)
            finally:
                beater.cancel()
                link.ws = None
                if tasks:
                    await asyncio.wait(tasks)

    async def _serve(self, link):
        """One link's life: connect, serve, reconnect with backoff + jitter until stop()."""
        delay = 0.25

        def reset():
            nonlocal delay
            delay = 0.25

        while not self._stop.is_set():
            run = asyncio.ensure_future(self._link(link, reset))
            stopper = asyncio.ensure_future(self._stop.wait())
            await asyncio.wait({run, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if self._stop.is_set():
                stopper.cancel()
                await self._drain_and_close(link, run)
                return
            stopper.cancel()
            try:
                run.result()
            except Exception as err:
                log.warning("link to %s lost: %s", link.url, err)
            wait = random.uniform(delay / 2, delay)
            delay = min(delay * 2, 10.0)
            try:
                await asyncio.wait_for(self._stop.wait(), timeout=wait)
            except asyncio.TimeoutError:
                pass

    async def run_async(self):
        """Connects to every dispatcher URL and serves until stop() (or SIGTERM)."""
        self._stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        try:
            loop.add_signal_handler(signal.SIGTERM, self.stop)
            loop.add_signal_handler(signal.SIGINT, self.stop)
        except (NotImplementedError, RuntimeError):
            pass
        await asyncio.gather(*(self._serve(link) for link in self._links))

    async def _drain_and_close(self, link, run):
        ws = link.ws
        if ws is not None and not run.done():
            try:
                await ws.send(self._heartbeat(link=link).SerializeToString())
                while self._in_flight > 0:
                    await asyncio.sleep(0.01)
                await ws.close(1000, "shutting down")
            except websockets.ConnectionClosed:
                pass
        run.cancel()
        try:
            await run
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
