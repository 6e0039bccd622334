import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { startDispatcher } from '../src/dispatcher.js';

describe('/metrics', () => {
  it('reports the log shipper drop count when given one, and connected workers', async () => {
    let dropped = 3;
    const d = await startDispatcher({
      port: 0,
      host: '127.0.0.1',
      logger: pino({ level: 'silent' }),
      logRecordsDropped: () => dropped,
    });
    try {
      expect(await (await fetch(`${d.url}/metrics`)).text()).toMatch(
        /^smart_routing_log_records_dropped 3$/m,
      );
      dropped = 10;
      const text = await (await fetch(`${d.url}/metrics`)).text();
      expect(text).toMatch(/^smart_routing_log_records_dropped 10$/m);
      expect(text).toMatch(/^smart_routing_connected_workers 0$/m);
    } finally {
      await d.close();
    }
  });
});
