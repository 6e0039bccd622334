/**
 * The live view at /ui in a real browser: Debian's chromium driven by playwright-core, against a
 * real dispatcher with fake protobuf workers (real WebSockets, the real protocol). The workers
 * answer by hand (answer: false), so the test sees "loading" before it lets the load finish.
 *
 * UI_SCREENSHOT=<file> saves a screenshot of the page at the end (docs/ui.png is made that way).
 */
import { existsSync } from 'node:fs';
import { afterEach, beforeAll, afterAll, describe, expect, it } from 'vitest';
import { chromium, type Browser, type Page } from 'playwright-core';
import { Harness, post } from '../harness.js';
import type { FakeWorker } from '../fake-worker.js';

const CHROMIUM = '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium)
  console.warn(`live view browser test skipped: ${CHROMIUM} is missing (apt-get install chromium)`);

const KEY = 'ui-test-key';
const h = new Harness();
let browser: Browser | undefined;

afterEach(() => h.cleanup());
afterAll(async () => {
  await browser?.close();
});

/**
 * Answers a RunTask the fake worker got, as a worker that loaded the label for it. The fake's own
 * cache loads it too: its heartbeats report `cache.labels`, and a heartbeat without the label made
 * the dispatcher drop it and order it loaded again (regression: the page went held -> loading).
 */
function finishLoad(worker: FakeWorker, taskId: string, label: string): void {
  worker.cache.use(label);
  const loadedLabels = worker.cache.labels;
  worker.send({ labelEvent: { kind: 'loaded', label, durationMs: 420, loadedLabels } });
  worker.send({
    taskResult: {
      taskId,
      label,
      resultJson: '{"ok":true}',
      labelMiss: true,
      loadMs: 420,
      runMs: 3,
      loadedLabels,
    },
  });
}

describe.skipIf(!hasChromium)('GET /ui in chromium', () => {
  beforeAll(async () => {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
  });

  async function open(url: string): Promise<Page> {
    const page = await browser!.newPage({ viewport: { width: 1100, height: 900 } });
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    page.on('console', (msg) => {
      if (msg.type() === 'error') errors.push(msg.text());
    });
    (page as Page & { errors: string[] }).errors = errors;
    await page.goto(url);
    return page;
  }

  it('shows workers joining, a label loading then held, and a worker leaving, without a reload', async () => {
    const d = await h.dispatcher({ apiKeys: [KEY] });
    const page = await open(`${d.url}/ui#key=${KEY}`);
    await page.locator('#status', { hasText: 'live' }).waitFor();
    // The key left the address bar (kept in sessionStorage).
    expect(page.url()).toBe(`${d.url}/ui`);
    await page.getByText('No worker connected.').waitFor();

    const w1 = await h.worker({ url: d.url, id: 'worker-a', answer: false, labelCapacity: 2 });
    const w2 = await h.worker({ url: d.url, id: 'worker-b', answer: false, labelCapacity: 2 });
    await page.locator('tr[data-worker="worker-a"]').waitFor();
    await page.locator('tr[data-worker="worker-b"]').waitFor();
    await page.locator('#events li[data-kind="joined"][data-worker="worker-b"]').waitFor();

    const answer = post(
      d.url,
      '/run-task',
      { task_id: 'ui-1', task_type: 'echo', label: 'label-x', parameters_json: '{}' },
      { authorization: `Bearer ${KEY}` },
    );
    const got = await Promise.race([w1.waitForTasks(1).then(() => w1), w2.waitForTasks(1).then(() => w2)]);
    const holder = got.options.id;
    const other = got === w1 ? w2 : w1;
    await page
      .locator(`tr[data-worker="${holder}"] td[data-label="label-x"][data-status="loading"]`)
      .waitFor();
    await page.locator('[data-tile="in-flight"] b', { hasText: '1' }).waitFor();

    finishLoad(got, 'ui-1', 'label-x');
    expect((await answer).status).toBe(200);
    // Both the status and the class (its colour); a wait, not a read that races the next render.
    await page
      .locator(`tr[data-worker="${holder}"] td.held[data-label="label-x"][data-status="held"]`)
      .waitFor();
    await page.locator('#events li[data-kind="loaded"]', { hasText: 'loaded label-x in 420 ms' }).waitFor();
    await page.locator('[data-tile="hit-rate"] span', { hasText: '(0 / 1)' }).waitFor();
    // The other worker does not hold it.
    expect(
      await page
        .locator(`tr[data-worker="${other.options.id}"] td[data-label="label-x"]`)
        .getAttribute('data-status'),
    ).toBeNull();

    other.terminate();
    await page.locator(`tr[data-worker="${other.options.id}"]`).waitFor({ state: 'detached' });
    await page.locator(`#events li[data-kind="left"][data-worker="${other.options.id}"]`).waitFor();
    await page.locator('[data-tile="workers"] b', { hasText: '1' }).waitFor();

    if (process.env.UI_SCREENSHOT) await page.screenshot({ path: process.env.UI_SCREENSHOT, fullPage: true });
    expect((page as Page & { errors: string[] }).errors).toEqual([]);
    await page.close();
  });

  it('asks for the key when the dispatcher refuses the stream, and connects with the one typed in', async () => {
    const d = await h.dispatcher({ apiKeys: [KEY] });
    const page = await open(`${d.url}/ui`);
    await page.locator('#status', { hasText: 'needs an API key' }).waitFor();
    await page.locator('#key').fill(KEY);
    await page.locator('#keyform button').click();
    await page.locator('#status', { hasText: 'live' }).waitFor();
    expect(await page.locator('#keyform').isHidden()).toBe(true);
    await h.worker({ url: d.url, id: 'worker-late' });
    await page.locator('tr[data-worker="worker-late"]').waitFor();
    await page.close();
  });
});
