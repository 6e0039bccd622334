#!/usr/bin/env node
/**
 * The throughput baseline: a bare Express 5 route that parses JSON and replies, in its own
 * process like the dispatcher. Prints `{"url": ...}` on stdout when listening.
 */
import express from 'express';

const app = express();
app.use(express.json());
app.post('/run-task', (req, res) => {
  res.json({
    task_id: (req.body as { task_id?: string }).task_id,
    status: 'completed',
    result: { echo: true },
  });
});
const server = app.listen(0, '127.0.0.1', () => {
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${port}` })}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
