import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { startModelServer } from '@smart-routing/worker';
import { percentile } from './stats.js';

/**
 * Measures how long the model server takes to load a label (median of `rounds` load/unload
 * cycles, through its HTTP API like a worker), so presets can scale waits to keep the
 * original's load-to-interval ratio.
 */
export async function measureLoadTime(repository: string, label: string, rounds = 5): Promise<number> {
  const server = await startModelServer({ repository, logger: pino({ level: 'silent' }) });
  try {
    const times: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const started = performance.now();
      const res = await fetch(`${server.url}/v2/repository/models/${encodeURIComponent(label)}/load`, {
        method: 'POST',
      });
      if (!res.ok)
        throw new Error(`loading ${label} for calibration failed: ${res.status} ${await res.text()}`);
      times.push(performance.now() - started);
      await fetch(`${server.url}/v2/repository/models/${encodeURIComponent(label)}/unload`, {
        method: 'POST',
      });
      // Loads in a run are spaced out; give the server's spare session thread time to start, as there.
      await sleep(300);
    }
    return percentile(times, 50);
  } finally {
    await server.close();
  }
}
