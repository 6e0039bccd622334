#!/usr/bin/env node
// Committed shim for the `smart-routing-worker` bin: npm links a bin only if its file exists when it installs,
// and dist/cli.js is built after `npm ci`. This file exists from the start and runs the built one.
import { existsSync } from 'node:fs';

const target = new URL('../dist/cli.js', import.meta.url);
if (!existsSync(target)) {
  process.stderr.write(
    'smart-routing-worker: not built yet; run `npm run build` in the repository root first\n',
  );
  process.exit(1);
}
await import(target.href);
