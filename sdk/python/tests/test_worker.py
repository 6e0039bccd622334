"""Unit tests of the Python worker SDK without a dispatcher: frames in, frames out.

Run from sdk/python/: /usr/bin/python3 -m unittest discover -s tests -t .
(test/sdk/python-unit.test.ts runs them from vitest; test/e2e/python-sdk.test.ts runs the SDK
against a live dispatcher.)
"""

import asyncio
import json
import unittest

from smart_routing_worker import TaskFailed, Worker
from smart_routing_worker import smart_routing_pb2 as pb
from smart_routing_worker.worker import ERROR_CODES, PROTOCOL_VERSION


class Wire:
    """Collects what the worker sends, decoded (as the dispatcher would see it)."""

    def __init__(self):
        self.frames = []

    async def send(self, msg):
        # Round-trip through bytes: what goes out must be a valid frame.
        self.frames.append(pb.WorkerMessage.FromString(msg.SerializeToString()))

    def bodies(self, kind):
        return [getattr(f, kind) for f in self.frames if f.WhichOneof("body") == kind]


def run_task(task_id, task_type, label="", params=None, evict=""):
    return pb.RunTask(task_id=task_id, task_type=task_type, label=label,
                      parameters_json=json.dumps(params) if params is not None else "",
                      evict_label=evict, attempt=1)


def make_worker(**kwargs):
    w = Worker("http://127.0.0.1:1", "unit-1", **kwargs)
    loads, unloads = [], []

    @w.on_load
    def load(label):
        if label == "broken":
            raise RuntimeError("no weights for broken")
        loads.append(label)

    @w.on_unload
    def unload(label):
        unloads.append(label)

    @w.task("upper", validate=lambda p: None if isinstance(p, dict) and isinstance(p.get("text"), str)
            else (_ for _ in ()).throw(TaskFailed("bad_parameters", "text: expected a string")))
    def upper(params, label):
        return {"label": label, "text": params["text"].upper()}

    @w.task("ping", label_free=True)
    async def ping(params, label):
        return {"pong": params, "label": label}

    @w.task("crash")
    def crash(params, label):
        raise ZeroDivisionError("division by zero")

    return w, loads, unloads


class WorkerUrlTest(unittest.TestCase):
    def test_http_base_becomes_the_websocket_endpoint(self):
        self.assertEqual(Worker("http://d:8080/", "a").url, "ws://d:8080/worker-listen")
        self.assertEqual(Worker("https://d", "a").url, "wss://d/worker-listen")
        self.assertEqual(Worker("ws://d:1", "a").url, "ws://d:1/worker-listen")

    def test_capacity_and_slots_are_at_least_one(self):
        w = Worker("ws://d", "a", label_capacity=0, task_slots=-3)
        self.assertEqual((w.label_capacity, w.task_slots), (1, 1))


class RegistrationTest(unittest.TestCase):
    def test_a_task_type_registers_once(self):
        w = Worker("ws://d", "a")
        w.task("x")(lambda p, l: None)
        with self.assertRaisesRegex(ValueError, "task type already registered: x"):
            w.task("x")(lambda p, l: None)

    def test_task_failed_knows_only_protocol_codes(self):
        self.assertEqual(TaskFailed("no_slot", "busy").code, "no_slot")
        with self.assertRaisesRegex(ValueError, "unknown task error code: nope"):
            TaskFailed("nope", "x")

    def test_every_error_code_name_matches_the_proto_enum(self):
        for name, value in ERROR_CODES.items():
            self.assertEqual(pb.TaskErrorCode.Name(value), "TASK_ERROR_CODE_" + name.upper())

    def test_hello_announces_types_label_free_ones_apart(self):
        w, _, _ = make_worker(label_capacity=3, task_slots=2)
        hello = w._hello().hello
        self.assertEqual(hello.protocol_version, PROTOCOL_VERSION)
        self.assertEqual(hello.worker_id, "unit-1")
        self.assertEqual((hello.label_capacity, hello.task_slots), (3, 2))
        self.assertEqual(list(hello.task_types), ["upper", "ping", "crash"])
        self.assertEqual(list(hello.label_free_task_types), ["ping"])
        self.assertEqual(hello.state, pb.WORKER_STATE_READY)


class RunTaskTest(unittest.TestCase):
    def run_all(self, worker, *tasks):
        wire = Wire()

        async def go():
            for t in tasks:
                await worker._run_task(wire.send, t)

        asyncio.run(go())
        return wire

    def test_a_miss_loads_then_a_hit_does_not(self):
        w, loads, _ = make_worker()
        wire = self.run_all(w, run_task("t1", "upper", "m1", {"text": "hi"}),
                            run_task("t2", "upper", "m1", {"text": "yo"}))
        first, second = wire.bodies("task_result")
        self.assertTrue(first.label_miss)
        self.assertGreaterEqual(first.load_ms, 0)
        self.assertEqual(json.loads(first.result_json), {"label": "m1", "text": "HI"})
        self.assertFalse(second.label_miss)
        self.assertEqual(second.load_ms, 0)
        self.assertEqual(list(second.loaded_labels), ["m1"])
        self.assertEqual(loads, ["m1"])
        events = wire.bodies("label_event")
        self.assertEqual([(e.kind, e.label) for e in events], [(pb.LABEL_EVENT_KIND_LOADED, "m1")])

    def test_a_full_worker_evicts_its_least_recently_used_label(self):
        w, loads, unloads = make_worker(label_capacity=2)
        wire = self.run_all(w, *[run_task("t%d" % i, "upper", l, {"text": "a"})
                                 for i, l in enumerate(["a", "b", "a", "c"])])
        self.assertEqual(unloads, ["b"])
        self.assertEqual(w.loaded_labels, ["c", "a"])
        kinds = [(e.kind, e.label) for e in wire.bodies("label_event")]
        self.assertIn((pb.LABEL_EVENT_KIND_EVICTED, "b"), kinds)

    def test_evict_label_is_carried_out_before_the_load(self):
        w, _, unloads = make_worker(label_capacity=2)
        self.run_all(w, run_task("t1", "upper", "a", {"text": "x"}),
                     run_task("t2", "upper", "b", {"text": "x"}),
                     run_task("t3", "upper", "c", {"text": "x"}, evict="a"))
        self.assertEqual(unloads, ["a"])
        self.assertEqual(w.loaded_labels, ["c", "b"])

    def test_a_label_free_task_loads_nothing(self):
        w, loads, _ = make_worker()
        wire = self.run_all(w, run_task("t1", "ping", "ignored", [1, 2]))
        (result,) = wire.bodies("task_result")
        self.assertEqual(json.loads(result.result_json), {"pong": [1, 2], "label": ""})
        self.assertFalse(result.label_miss)
        self.assertEqual(loads, [])
        self.assertEqual(wire.bodies("label_event"), [])

    def assert_error(self, result, code, text):
        self.assertEqual(result.WhichOneof("outcome"), "error")
        self.assertEqual(result.error.code, ERROR_CODES[code])
        self.assertIn(text, result.error.message)

    def test_bad_parameters_fail_before_any_load(self):
        w, loads, _ = make_worker()
        wire = self.run_all(w, run_task("t1", "upper", "m1", {"text": 3}))
        self.assert_error(wire.bodies("task_result")[0], "bad_parameters", "text: expected a string")
        self.assertEqual(loads, [])

    def test_parameters_that_are_not_json_are_bad_parameters(self):
        w, _, _ = make_worker()
        t = run_task("t1", "upper", "m1")
        t.parameters_json = "{nope"
        wire = self.run_all(w, t)
        self.assert_error(wire.bodies("task_result")[0], "bad_parameters", "parameters_json")

    def test_an_unknown_task_type_is_refused(self):
        w, _, _ = make_worker()
        wire = self.run_all(w, run_task("t1", "nope", "m1", {}))
        self.assert_error(wire.bodies("task_result")[0], "unknown_task_type", "nope")

    def test_a_failing_load_hook_reports_load_failed(self):
        w, _, _ = make_worker()
        wire = self.run_all(w, run_task("t1", "upper", "broken", {"text": "a"}))
        self.assert_error(wire.bodies("task_result")[0], "label_load_failed", "no weights for broken")
        (event,) = wire.bodies("label_event")
        self.assertEqual((event.kind, event.label), (pb.LABEL_EVENT_KIND_LOAD_FAILED, "broken"))
        self.assertIn("no weights", event.message)
        self.assertEqual(w.loaded_labels, [])

    def test_a_raising_handler_still_answers_with_inference_failed(self):
        w, _, _ = make_worker()
        with self.assertLogs("smart_routing_worker", level="ERROR") as logs:
            wire = self.run_all(w, run_task("t1", "crash", "m1", {}))
        self.assertIn("task t1 failed", logs.output[0])
        self.assert_error(wire.bodies("task_result")[0], "inference_failed", "ZeroDivisionError")

    def test_a_draining_worker_refuses_tasks(self):
        w, _, _ = make_worker()
        w._link_draining = True
        wire = self.run_all(w, run_task("t1", "upper", "m1", {"text": "a"}))
        self.assert_error(wire.bodies("task_result")[0], "draining", "draining")
        self.assertEqual(w._heartbeat().heartbeat.state, pb.WORKER_STATE_DRAINING)

    def test_more_tasks_than_slots_get_no_slot(self):
        w = Worker("ws://d", "a", task_slots=1)
        gate = None

        @w.task("slow", label_free=True)
        async def slow(params, label):
            await gate.wait()
            return 1

        wire = Wire()

        async def go():
            nonlocal gate
            gate = asyncio.Event()
            first = asyncio.ensure_future(w._run_task(wire.send, run_task("t1", "slow")))
            await asyncio.sleep(0)
            await w._run_task(wire.send, run_task("t2", "slow"))
            gate.set()
            await first

        asyncio.run(go())
        by_id = {r.task_id: r for r in wire.bodies("task_result")}
        self.assert_error(by_id["t2"], "no_slot", "busy")
        self.assertEqual(by_id["t1"].result_json, "1")


class LabelOrderTest(unittest.TestCase):
    def order(self, worker, action, label):
        wire = Wire()
        asyncio.run(worker._label_order(wire.send, pb.LabelOrder(action=action, label=label)))
        return wire.bodies("label_event")

    def test_load_and_unload_orders_report_label_events(self):
        w, loads, unloads = make_worker()
        (loaded,) = self.order(w, pb.LABEL_ORDER_ACTION_LOAD, "m1")
        self.assertEqual((loaded.kind, list(loaded.loaded_labels)), (pb.LABEL_EVENT_KIND_LOADED, ["m1"]))
        (again,) = self.order(w, pb.LABEL_ORDER_ACTION_LOAD, "m1")
        self.assertEqual(again.message, "already loaded")
        (evicted,) = self.order(w, pb.LABEL_ORDER_ACTION_UNLOAD, "m1")
        self.assertEqual((evicted.kind, list(evicted.loaded_labels)), (pb.LABEL_EVENT_KIND_EVICTED, []))
        (gone,) = self.order(w, pb.LABEL_ORDER_ACTION_UNLOAD, "m1")
        self.assertEqual(gone.message, "was not loaded")
        self.assertEqual((loads, unloads), (["m1"], ["m1"]))

    def test_a_failed_load_order_reports_load_failed_only(self):
        w, _, _ = make_worker()
        (failed,) = self.order(w, pb.LABEL_ORDER_ACTION_LOAD, "broken")
        self.assertEqual(failed.kind, pb.LABEL_EVENT_KIND_LOAD_FAILED)


class FakeWs:
    """A socket as a link sees it: open or not, and the frames sent on it."""

    def __init__(self, is_open=True):
        self.open = is_open
        self.frames = []

    async def send(self, data):
        self.frames.append(pb.WorkerMessage.FromString(data))

    def results(self):
        return [f.task_result.task_id for f in self.frames if f.WhichOneof("body") == "task_result"]


def two_replicas(**kwargs):
    """A worker with links to replicas a and b, both open."""
    w = Worker("ws://a:1, http://b:2", "ha-1", **kwargs)
    calls = []

    @w.task("count", label_free=True)
    def count(params, label):
        calls.append(params)
        return len(calls)

    a, b = w._links
    a.ws, b.ws = FakeWs(), FakeWs()
    return w, a, b, calls


def result_msg(task_id):
    return pb.WorkerMessage(task_result=pb.TaskResult(task_id=task_id))


class ReplicasTest(unittest.TestCase):
    """Several dispatcher replicas (PROTOCOL.md "Several replicas")."""

    def test_several_urls_give_one_link_each(self):
        w = Worker("ws://a:1, http://b:2,", "x")
        self.assertEqual(w.urls, ["ws://a:1/worker-listen", "ws://b:2/worker-listen"])
        self.assertEqual(Worker(["https://a", "https://a"], "x").urls, ["wss://a/worker-listen"])
        with self.assertRaisesRegex(ValueError, "names no URL"):
            Worker(" , ", "x")

    def test_a_task_with_an_old_token_is_answered_stale_leader_and_not_run(self):
        w, a, b, calls = two_replicas()

        async def go():
            await w._announce(a, 1)
            await w._announce(b, 2)  # b took over
            t = run_task("old", "count", params={})
            t.fencing_token = 1
            await w._run_task(w._broadcast, t, a, a.send)
            t2 = run_task("new", "count", params={})
            t2.fencing_token = 2
            await w._run_task(w._broadcast, t2, b, b.send)

        asyncio.run(go())
        (old,) = [f.task_result for f in a.ws.frames if f.WhichOneof("body") == "task_result"]
        self.assertEqual(old.error.code, pb.TASK_ERROR_CODE_STALE_LEADER)
        self.assertIn("fencing token 1 is older", old.error.message)
        self.assertEqual(calls, [{}])  # only the new leader's task ran
        self.assertEqual(b.ws.results(), ["new"])

    def test_old_label_orders_are_refused_and_newer_tokens_name_the_leader(self):
        w, a, b, _ = two_replicas()
        self.assertFalse(w._is_stale(3, b, "order"))
        self.assertIs(w._leader, b)
        with self.assertLogs("smart_routing_worker", level="WARNING"):
            self.assertTrue(w._is_stale(2, a, "label order for m1"))
        self.assertFalse(w._is_stale(3, a, "order"))
        self.assertIs(w._leader, b)

    def test_a_result_goes_to_the_leader_when_its_link_is_gone(self):
        w, a, b, _ = two_replicas()

        async def go():
            await w._announce(b, 2)
            a.ws.open = False
            await w._deliver(a, result_msg("t1"))

        asyncio.run(go())
        self.assertEqual((a.ws.results(), b.ws.results()), ([], ["t1"]))

    def test_results_wait_for_a_leader_bounded_and_are_flushed_on_leadership(self):
        w, a, b, _ = two_replicas(pending_results_max=1)

        async def go():
            await w._announce(a, 1)
            a.ws.open = False
            with self.assertLogs("smart_routing_worker", level="WARNING"):
                for t in ("t1", "t2"):
                    await w._deliver(a, result_msg(t))
            self.assertEqual(b.ws.results(), [])  # b is a standby until it announces
            await w._announce(b, 2)

        asyncio.run(go())
        self.assertEqual(b.ws.results(), ["t2"])  # t1, the oldest, was dropped
        self.assertEqual(len(w._pending), 0)

    def test_a_standalone_dispatcher_result_without_a_link_is_dropped(self):
        w = Worker("ws://a:1", "solo")
        (a,) = w._links
        a.ws = FakeWs(is_open=False)
        with self.assertLogs("smart_routing_worker", level="WARNING") as logs:
            asyncio.run(w._deliver(a, result_msg("t1")))
        self.assertIn("dropped", logs.output[0])
        self.assertEqual(len(w._pending), 0)

    def test_drain_is_per_link_and_heartbeats_list_running_tasks(self):
        w, a, b, _ = two_replicas()
        gate = None

        @w.task("slow", label_free=True)
        async def slow(params, label):
            await gate.wait()
            return 1

        a.draining = True

        async def go():
            nonlocal gate
            gate = asyncio.Event()
            await w._run_task(w._broadcast, run_task("t1", "slow"), a, a.send)
            running = asyncio.ensure_future(w._run_task(w._broadcast, run_task("t2", "slow"), b, b.send))
            await asyncio.sleep(0)
            self.assertEqual(list(w._heartbeat(link=b).heartbeat.running_task_ids), ["t2"])
            self.assertEqual(w._heartbeat(link=a).heartbeat.state, pb.WORKER_STATE_DRAINING)
            self.assertEqual(w._heartbeat(link=b).heartbeat.state, pb.WORKER_STATE_READY)
            gate.set()
            await running

        asyncio.run(go())
        (refused,) = [f.task_result for f in a.ws.frames if f.WhichOneof("body") == "task_result"]
        self.assertEqual(refused.error.code, pb.TASK_ERROR_CODE_DRAINING)
        self.assertEqual(b.ws.results(), ["t2"])


class GeneratedCodeTest(unittest.TestCase):
    def test_the_generated_module_knows_the_newest_fields(self):
        # Fields added to the .proto after the SDK was first generated (see the stale-pb2 check).
        self.assertIn("memory_budget_bytes", pb.Hello.DESCRIPTOR.fields_by_name)
        self.assertIn("footprint_bytes", pb.LabelEvent.DESCRIPTOR.fields_by_name)
        self.assertIn("infer_request", pb.RunTask.DESCRIPTOR.fields_by_name)
        self.assertIn("infer_response", pb.TaskResult.DESCRIPTOR.fields_by_name)


if __name__ == "__main__":
    unittest.main()
