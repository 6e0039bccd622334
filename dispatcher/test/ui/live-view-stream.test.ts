/** GET /ui and GET /ui/events over plain HTTP (the browser test drives the page itself). */
import { afterEach, describe, expect, it } from 'vitest';
import { Harness } from '../harness.js';

const h = new Harness();
afterEach(() => h.cleanup());

interface SseEvent {
  event: string;
  data: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** Reads SSE events from a fetch body until `until` matches one (which is returned with all before it). */
async function readUntil(
  body: ReadableStream<Uint8Array>,
  until: (e: SseEvent) => boolean,
): Promise<SseEvent[]> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  const seen: SseEvent[] = [];
  let buffer = '';
  try {
    for (;;) {
      const chunk = await reader.read();
      if (chunk.done) throw new Error(`stream ended after ${JSON.stringify(seen.map((e) => e.event))}`);
      buffer += decoder.decode(chunk.value, { stream: true });
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1] ?? 'message';
        const data = /^data: (.*)$/m.exec(block)?.[1];
        const e = { event, data: data === undefined ? undefined : JSON.parse(data) };
        seen.push(e);
        if (until(e)) return seen;
      }
    }
  } finally {
    reader.releaseLock();
  }
}

describe('GET /ui', () => {
  it('serves the page without a key, with a CSP that allows only its own script and origin', async () => {
    const d = await h.dispatcher({ apiKeys: ['k'] });
    const res = await fetch(`${d.url}/ui`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    const csp = res.headers.get('content-security-policy')!;
    expect(csp).toContain("default-src 'none'");
    expect(csp).toMatch(/script-src 'sha256-[\w+/=]+'/);
    expect(csp).toContain("connect-src 'self'");
    const html = await res.text();
    // Self-contained: no external script, style or font; the only URL is SVG's namespace name.
    expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+stylesheet/);
    expect(html.match(/https?:\/\/[^'"\s]*/g)).toEqual(['http://www.w3.org/2000/svg']);
  });

  it('answers other methods with a JSON 405', async () => {
    const d = await h.dispatcher();
    const res = await fetch(`${d.url}/ui`, { method: 'DELETE' });
    expect(res.status).toBe(405);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('method_not_allowed');
  });
});

describe('GET /ui/events', () => {
  it('needs the API key (Bearer or x-api-key) when API_KEYS is set', async () => {
    const d = await h.dispatcher({ apiKeys: ['k'] });
    const none = await fetch(`${d.url}/ui/events`);
    expect(none.status).toBe(401);
    expect(await none.json()).toEqual({
      error: { code: 'unauthorized', message: 'missing or invalid API key' },
    });
    const wrong = await fetch(`${d.url}/ui/events`, { headers: { authorization: 'Bearer nope' } });
    expect(wrong.status).toBe(401);
    await wrong.text();
    const ok = await fetch(`${d.url}/ui/events`, { headers: { 'x-api-key': 'k' } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('content-type')).toMatch(/^text\/event-stream/);
    await ok.body!.cancel();
  });

  it('sends the history, a snapshot, then fleet events and fresh snapshots as workers come and go', async () => {
    const d = await h.dispatcher();
    await h.worker({ url: d.url, id: 'early', labels: ['a'] });
    const res = await fetch(`${d.url}/ui/events`);
    const body = res.body!;
    const first = await readUntil(body, (e) => e.event === 'snapshot');
    expect(first[0]!.event).toBe('history');
    expect(first[0]!.data).toMatchObject([{ kind: 'joined', workerId: 'early', seq: 1 }]);
    const snap = first.at(-1)!.data;
    expect(snap.workers).toMatchObject([
      { id: 'early', labels: [{ label: 'a', status: 'held' }], state: 'ready' },
    ]);
    expect(snap.labels).toEqual(['a']);
    expect(snap.hitRate).toBeNull();

    const late = await h.worker({ url: d.url, id: 'late', labels: ['b'] });
    const joined = await readUntil(body, (e) => e.event === 'fleet');
    expect(joined.at(-1)!.data).toMatchObject({ kind: 'joined', workerId: 'late', seq: 2 });
    const both = await readUntil(body, (e) => e.event === 'snapshot' && e.data.workers.length === 2);
    expect(both.at(-1)!.data.labels).toEqual(['a', 'b']);

    late.terminate();
    const left = await readUntil(body, (e) => e.event === 'fleet' && e.data.kind === 'left');
    expect(left.at(-1)!.data.workerId).toBe('late');
    await readUntil(body, (e) => e.event === 'snapshot' && e.data.workers.length === 1);
    await body.cancel();
  });

  it('ends its streams when the dispatcher closes', async () => {
    const d = await h.dispatcher();
    const res = await fetch(`${d.url}/ui/events`);
    const body = res.body!;
    await readUntil(body, (e) => e.event === 'snapshot');
    await d.close();
    await expect(readUntil(body, () => false)).rejects.toThrow(/stream ended/);
  });
});
