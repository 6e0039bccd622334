#!/usr/bin/env node
/**
 * `npm start`: demo models (generated if missing), log collector, dispatcher and workers on
 * loopback, each in its own process. Ctrl-C / SIGTERM stops every child cleanly.
 */
import { resolve } from 'node:path';
import { Command } from 'commander';
import { generateDemoModels } from '@smart-routing/model-repo';
import { startStack } from './stack.js';

const program = new Command('smart-routing-start')
  .description(
    'Start a local smart-routing stack: log collector, dispatcher, workers with embedded model servers.',
  )
  .option('--port <n>', 'dispatcher port', process.env.PORT ?? '8080')
  .option('--collector-port <n>', 'log collector port', process.env.LOG_COLLECTOR_PORT ?? '8001')
  .option('--workers <n>', 'worker processes', process.env.NUM_WORKERS ?? '2')
  .option('--label-capacity <n>', 'labels per worker', process.env.WORKER_MAX_LABELS ?? '2')
  .option('--slots <n>', 'task slots per worker', process.env.WORKER_SLOTS ?? '1')
  .option(
    '--policy <name>',
    'routing policy: affinity | idle-first | random',
    process.env.ROUTING_POLICY ?? 'affinity',
  )
  .option('--models <dir>', 'model repository', process.env.MODEL_REPOSITORY ?? './models')
  .option('--labels <n>', 'demo models to generate when missing', '5')
  .option('--log-level <level>', 'log level of the services', process.env.LOG_LEVEL ?? 'info')
  .parse();

const opts = program.opts<{
  port: string;
  collectorPort: string;
  workers: string;
  labelCapacity: string;
  slots: string;
  policy: string;
  models: string;
  labels: string;
  logLevel: string;
}>();

const modelRepository = resolve(opts.models);
console.log(`model repository: ${modelRepository}`);
const made = await generateDemoModels({ dir: modelRepository, count: Number(opts.labels) });
console.log(`demo models ready: ${made.join(', ')}`);

const policy = process.env.RANDOM_DISPATCH === 'true' ? 'random' : opts.policy;
const stack = await startStack({
  modelRepository,
  workers: Number(opts.workers),
  labelCapacity: Number(opts.labelCapacity),
  slots: Number(opts.slots),
  policy,
  dispatcherPort: Number(opts.port),
  collectorPort: Number(opts.collectorPort),
  output: 'files',
  logLevel: opts.logLevel,
});

const example = `curl -s ${stack.dispatcherUrl}/run-task -H 'content-type: application/json' -d '{"task_id":"t1","task_type":"embed_texts","label":"label-1","parameters_json":"{\\"texts\\":[\\"hello world\\"]}"}'`;
console.log(
  `\nsmart-routing ready: dispatcher ${stack.dispatcherUrl} (policy ${policy}), ${stack.workerIds.length} workers, log collector ${stack.collectorUrl} -> ${stack.logFile} (each service's own log beside it)`,
);
console.log(
  `try:\n  ${example}\n  curl -s ${stack.dispatcherUrl}/labels\n  curl -s ${stack.dispatcherUrl}/metrics | grep smart_routing_label\nCtrl-C to stop.`,
);

let stopping = false;
const stop = (signal: string): void => {
  if (stopping) return;
  stopping = true;
  console.log(`\n${signal}: stopping workers, dispatcher, log collector...`);
  stack.close().then(
    () => {
      console.log('stopped.');
      process.exit(0);
    },
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
};
process.on('SIGINT', () => stop('SIGINT'));
process.on('SIGTERM', () => stop('SIGTERM'));
