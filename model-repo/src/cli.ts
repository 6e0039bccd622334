#!/usr/bin/env node
/**
 * smart-routing-make-models: writes the demo embedding models into a Triton model repository.
 *
 *   smart-routing-make-models --dir ./models --count 5 --size-mb 192
 *   smart-routing-make-models --dir ./models --count 6 --sizes-mb 64,192,384   (heterogeneous)
 */
import { Command, InvalidArgumentError } from 'commander';
import {
  DEFAULT_DEMO_COUNT,
  DEFAULT_DEMO_HIDDEN_SIZE,
  DEFAULT_DEMO_SEED,
  DEFAULT_DEMO_SIZE_MB,
  generateDemoModels,
} from './demo-models.js';

function integer(name: string, min: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min)
      throw new InvalidArgumentError(`${name} must be an integer >= ${min}.`);
    return n;
  };
}

function positive(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('size must be a number > 0.');
  return n;
}

const program = new Command()
  .name('smart-routing-make-models')
  .description(
    'Write demo embedding models label-1..label-N (ONNX + config.pbtxt + tokenizer) into a model repository.',
  )
  .option('--dir <path>', 'model repository folder', './models')
  .option('--count <n>', 'number of models', integer('count', 0), DEFAULT_DEMO_COUNT)
  .option(
    '--size-mb <mib>',
    'embedding table size per model in MiB (sets load time)',
    positive,
    DEFAULT_DEMO_SIZE_MB,
  )
  .option(
    '--sizes-mb <list>',
    'comma-separated sizes in MiB, model i gets the ((i-1) mod n)-th (heterogeneous; overrides --size-mb)',
    (value: string) => value.split(',').map((v) => positive(v.trim())),
  )
  .option('--hidden-size <n>', 'embedding width', integer('hidden size', 1), DEFAULT_DEMO_HIDDEN_SIZE)
  .option('--seed <n>', 'weights seed', integer('seed', 0), DEFAULT_DEMO_SEED)
  .option('--overwrite', 'replace models that already exist', false);

program.parse();
const opts = program.opts<{
  dir: string;
  count: number;
  sizeMb: number;
  sizesMb?: number[];
  hiddenSize: number;
  seed: number;
  overwrite: boolean;
}>();

try {
  await generateDemoModels({
    ...opts,
    onModel: (e) => {
      const what =
        e.status === 'written'
          ? `written (${(e.bytes / 2 ** 20).toFixed(1)} MiB, ${Math.round(e.ms)} ms)`
          : 'kept';
      console.error(`${e.name}: ${what}`);
    },
  });
  console.error(`models in ${opts.dir}`);
} catch (err) {
  console.error(`smart-routing-make-models: ${(err as Error).message}`);
  process.exitCode = 1;
}
