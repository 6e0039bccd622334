/**
 * Accepted async tasks not yet handed to the router: one FIFO lane per priority (0-9), served
 * highest priority first, oldest first within a priority. Add, take the next, put back at the
 * front and delete by id are O(1) (amortised; deletions are lazy, skipped when reached).
 */
import { MAX_PRIORITY } from '../routing/queues.js';
import type { TaskRecord } from '../task-store/task-store.js';

interface Entry {
  readonly id: string;
  readonly token: number;
}

interface Lane {
  entries: Entry[];
  head: number;
}

/** The async backlog (see the file header). */
export class Backlog {
  private readonly records = new Map<string, { record: TaskRecord; token: number }>();
  private readonly lanes: Lane[] = Array.from({ length: MAX_PRIORITY + 1 }, () => ({ entries: [], head: 0 }));
  private tokens = 0;

  /** Tasks waiting. */
  get size(): number {
    return this.records.size;
  }

  has(taskId: string): boolean {
    return this.records.has(taskId);
  }

  /** Adds at the back of its priority's lane (replacing a waiting task of the same id). */
  add(record: TaskRecord): void {
    const token = ++this.tokens;
    this.records.set(record.taskId, { record, token });
    this.lane(record).entries.push({ id: record.taskId, token });
  }

  /** Puts a task taken with {@link shift} back at the front of its lane. */
  returnToFront(record: TaskRecord): void {
    const token = ++this.tokens;
    this.records.set(record.taskId, { record, token });
    const lane = this.lane(record);
    if (lane.head > 0) lane.entries[--lane.head] = { id: record.taskId, token };
    else lane.entries.unshift({ id: record.taskId, token });
  }

  /** Removes a waiting task; false if it was not waiting. */
  delete(taskId: string): boolean {
    return this.records.delete(taskId);
  }

  /** Takes the next task: highest priority, then oldest. */
  shift(): TaskRecord | undefined {
    for (let p = MAX_PRIORITY; p >= 0; p--) {
      const lane = this.lanes[p]!;
      while (lane.head < lane.entries.length) {
        const entry = lane.entries[lane.head++]!;
        const live = this.records.get(entry.id);
        if (live === undefined || live.token !== entry.token) continue; // deleted or re-added
        this.records.delete(entry.id);
        this.compact(lane);
        return live.record;
      }
      this.compact(lane);
    }
    return undefined;
  }

  private lane(record: TaskRecord): Lane {
    const p = Math.min(MAX_PRIORITY, Math.max(0, Math.floor(record.priority) || 0));
    return this.lanes[p]!;
  }

  // Drops the consumed prefix once it is most of the array.
  private compact(lane: Lane): void {
    if (lane.head === lane.entries.length) {
      lane.entries = [];
      lane.head = 0;
    } else if (lane.head > 1024 && lane.head * 2 > lane.entries.length) {
      lane.entries = lane.entries.slice(lane.head);
      lane.head = 0;
    }
  }
}
