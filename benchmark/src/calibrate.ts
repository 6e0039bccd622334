import { join } from 'node:path';
import { startStack } from './stack.js';
import { percentile } from './stats.js';

/**
 * Measures how long a label load takes in a running stack like the benchmark's (worker processes,
 * their model servers, dispatcher and collector all on this machine), so presets can scale waits to
 * keep the original's load-to-interval ratio. Workers hold one label each and tasks cycle through
 * the labels one at a time, so every task is a miss; the median `load_ms` the replies report is the
 * answer. (A model server measured alone loads faster than under the benchmark's contention.)
 */
export async function measureLoadTime(options: {
  modelRepository: string;
  labels: number;
  workers: number;
  logDir: string;
  samples?: number;
}): Promise<number> {
  const stack = await startStack({
    modelRepository: options.modelRepository,
    workers: options.workers,
    labelCapacity: 1,
    slots: 1,
    policy: 'affinity',
    logDir: options.logDir,
    runId: `calibration-${Date.now()}`,
  });
  const loads: number[] = [];
  try {
    const samples = options.samples ?? 12;
    for (let i = 0; i < samples + options.workers; i++) {
      const res = await fetch(`${stack.dispatcherUrl}/run-task`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          task_id: `calibration-${i}-${Date.now()}`,
          task_type: 'embed_texts',
          label: `label-${(i % options.labels) + 1}`,
          parameters_json: '{"texts":["calibration"]}',
        }),
      });
      const body = (await res.json()) as {
        label_miss?: boolean;
        load_ms?: number;
        error?: { message: string };
      };
      if (!res.ok) throw new Error(`calibration task failed: ${res.status} ${body.error?.message ?? ''}`);
      // The first load on each worker also starts its model server's session thread: skip those.
      if (i >= options.workers && body.label_miss && typeof body.load_ms === 'number')
        loads.push(body.load_ms);
    }
  } finally {
    await stack.close();
  }
  if (loads.length === 0) throw new Error('calibration saw no label loads');
  return percentile(loads, 50);
}

/** Where calibration runs keep their logs. */
export const calibrationLogDir = (logDir: string): string => join(logDir, 'calibration');
