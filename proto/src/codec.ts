import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import type {
  DispatcherMessage,
  DispatcherMessageInput,
  WorkerMessage,
  WorkerMessageInput,
} from './messages.js';

/** Thrown when bytes are not a valid frame; the receiver logs it and closes with 1002. */
export class ProtocolError extends Error {
  override name = 'ProtocolError';
}

/** Path of the `.proto` file this codec is built from. */
export const PROTO_PATH = fileURLToPath(new URL('../proto/smart_routing.proto', import.meta.url));

const root = protobuf.loadSync(PROTO_PATH);
const workerType = root.lookupType('smartrouting.v1.WorkerMessage');
const dispatcherType = root.lookupType('smartrouting.v1.DispatcherMessage');

// Enum fields (unique names across the contract) and the prefix their proto values carry.
const ENUM_PREFIX: Record<string, string> = {
  state: 'WORKER_STATE_',
  code: 'TASK_ERROR_CODE_',
  kind: 'LABEL_EVENT_KIND_',
  action: 'LABEL_ORDER_ACTION_',
  role: 'DISPATCHER_ROLE_',
};
const ENUM_VALUES: Record<string, Record<string, number>> = {
  state: root.lookupEnum('smartrouting.v1.WorkerState').values,
  code: root.lookupEnum('smartrouting.v1.TaskErrorCode').values,
  kind: root.lookupEnum('smartrouting.v1.LabelEventKind').values,
  action: root.lookupEnum('smartrouting.v1.LabelOrderAction').values,
  role: root.lookupEnum('smartrouting.v1.DispatcherRole').values,
};

const TO_OBJECT: protobuf.IConversionOptions = {
  longs: Number,
  enums: String,
  defaults: true,
  arrays: true,
  oneofs: true,
};

function shortenEnums(value: Record<string, unknown>): void {
  for (const [key, v] of Object.entries(value)) {
    const prefix = ENUM_PREFIX[key];
    if (prefix !== undefined) {
      // A number means a value newer than this codec: treat it as unspecified.
      value[key] =
        typeof v === 'string' && v.startsWith(prefix) ? v.slice(prefix.length).toLowerCase() : 'unspecified';
    } else if (v !== null && typeof v === 'object' && !Array.isArray(v) && !ArrayBuffer.isView(v)) {
      shortenEnums(v as Record<string, unknown>);
    }
  }
}

function expandEnums(value: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    const prefix = ENUM_PREFIX[key];
    if (v === undefined) continue;
    if (prefix !== undefined && typeof v === 'string') {
      const num = ENUM_VALUES[key]?.[prefix + v.toUpperCase()];
      if (num === undefined) throw new TypeError(`invalid ${key}: ${JSON.stringify(v)}`);
      out[key] = num;
    } else if (v !== null && typeof v === 'object' && !Array.isArray(v) && !ArrayBuffer.isView(v))
      out[key] = expandEnums(v as Record<string, unknown>);
    else out[key] = v;
  }
  return out;
}

function encode(type: protobuf.Type, message: object): Uint8Array {
  const plain = expandEnums(message as Record<string, unknown>);
  const err = type.verify(plain);
  if (err) throw new TypeError(`invalid ${type.name}: ${err}`);
  return type.encode(type.fromObject(plain)).finish();
}

function decode<T>(type: protobuf.Type, bytes: Uint8Array): T {
  let obj: Record<string, unknown>;
  try {
    obj = type.toObject(type.decode(bytes), TO_OBJECT);
  } catch (err) {
    throw new ProtocolError(`malformed ${type.name}: ${(err as Error).message}`);
  }
  const body = obj.body;
  if (typeof body !== 'string') throw new ProtocolError(`empty ${type.name}: no known body`);
  const inner = obj[body] as Record<string, unknown>;
  // `oneofs` also fills the other members of the `outcome` oneof with defaults; keep only the set one.
  if (body === 'taskResult') {
    const outcome = inner.outcome;
    if (outcome !== 'resultJson' && outcome !== 'error' && outcome !== 'inferResponse')
      throw new ProtocolError('taskResult has neither resultJson, error nor inferResponse');
    for (const key of ['resultJson', 'error', 'inferResponse']) if (key !== outcome) delete inner[key];
    delete inner.outcome;
  }
  shortenEnums(inner);
  return { body, [body]: inner } as T;
}

/** Encodes a worker -> dispatcher frame. Throws TypeError on a caller's mistake. */
export function encodeWorkerMessage(message: WorkerMessageInput): Uint8Array {
  return encode(workerType, message);
}

/** Decodes a worker -> dispatcher frame. Throws ProtocolError on bad bytes. */
export function decodeWorkerMessage(bytes: Uint8Array): WorkerMessage {
  return decode<WorkerMessage>(workerType, bytes);
}

/** Encodes a dispatcher -> worker frame. Throws TypeError on a caller's mistake. */
export function encodeDispatcherMessage(message: DispatcherMessageInput): Uint8Array {
  return encode(dispatcherType, message);
}

/** Decodes a dispatcher -> worker frame. Throws ProtocolError on bad bytes. */
export function decodeDispatcherMessage(bytes: Uint8Array): DispatcherMessage {
  return decode<DispatcherMessage>(dispatcherType, bytes);
}
