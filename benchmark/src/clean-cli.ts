#!/usr/bin/env node
/**
 * `npm run clean`: removes what the project generates: the demo models in the model repository
 * (folders named label-<n>, as smart-routing-make-models writes them; uploaded models are kept),
 * the benchmark's models (./.bench-models) and the run logs (./logs). Prints what it removed.
 */
import { readdir, rm, rmdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Command } from 'commander';

const opts = new Command('smart-routing-clean')
  .description('Remove generated demo models, benchmark models and run logs.')
  .option(
    '--models <dir>',
    'model repository holding the demo models',
    process.env.MODEL_REPOSITORY ?? './models',
  )
  .option('--bench-models <dir>', 'the benchmark model repository (removed whole)', './.bench-models')
  .option('--log-dir <dir>', 'the run logs (removed whole)', './logs')
  .parse()
  .opts<{ models: string; benchModels: string; logDir: string }>();

const removed: string[] = [];
const DEMO_MODEL = /^label-\d+$/;
try {
  const entries = await readdir(opts.models, { withFileTypes: true });
  for (const e of entries) {
    if (!e.isDirectory() || !DEMO_MODEL.test(e.name)) continue;
    await rm(join(opts.models, e.name), { recursive: true, force: true });
    removed.push(join(opts.models, e.name));
  }
  // The folder goes too once nothing else is in it.
  if ((await readdir(opts.models)).length === 0) await rmdir(opts.models);
} catch (err) {
  if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
}
for (const dir of [opts.benchModels, opts.logDir]) {
  try {
    await readdir(dir);
  } catch {
    continue;
  }
  await rm(dir, { recursive: true, force: true });
  removed.push(dir);
}
console.log(
  removed.length > 0 ? `removed: ${removed.map((p) => resolve(p)).join(', ')}` : 'nothing to remove',
);
