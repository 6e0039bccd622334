import { CollectorError } from './errors.js';

/** How an ingest body is framed. */
export type IngestFormat = 'json' | 'ndjson';

/**
 * Maps a content-type header to a body format, or undefined when unsupported.
 * `application/json` carries an array of records; NDJSON (one record per line) is accepted under its
 * usual names.
 */
export function ingestFormat(contentType: string | undefined): IngestFormat | undefined {
  const mime = (contentType ?? '').split(';')[0]?.trim().toLowerCase();
  if (mime === 'application/json') return 'json';
  if (mime === 'application/x-ndjson' || mime === 'application/jsonl' || mime === 'application/x-jsonlines') {
    return 'ndjson';
  }
  return undefined;
}

/*
 * Records are checked by hand rather than with a zod schema: the only rule is "a plain JSON object",
 * and a zod object parse would copy every record of every batch on the collector's hot path.
 */
function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function stamp(record: Record<string, unknown>, receivedAt: number): string {
  record.received_at = receivedAt;
  return JSON.stringify(record);
}

/**
 * Parses one ingest body into JSON lines (without newlines), each record stamped with `received_at`
 * (epoch ms, like pino's `time`). All or nothing: throws a {@link CollectorError} (`invalid_json` or
 * `invalid_record`, naming the offending index or line) if any record is bad.
 */
export function parseIngestBody(text: string, format: IngestFormat, receivedAt: number): string[] {
  if (format === 'json') {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw new CollectorError('invalid_json', (err as Error).message);
    }
    if (!Array.isArray(value)) throw new CollectorError('invalid_json', 'expected an array of records');
    const lines = new Array<string>(value.length);
    for (let i = 0; i < value.length; i++) {
      const record: unknown = value[i];
      if (!isRecord(record)) throw new CollectorError('invalid_record', `record ${i} is not an object`);
      lines[i] = stamp(record, receivedAt);
    }
    return lines;
  }
  const lines: string[] = [];
  const rows = text.split('\n');
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i] as string;
    // Blank lines (including the one after the final newline) are framing, not records.
    if (row.trim() === '') continue;
    let record: unknown;
    try {
      record = JSON.parse(row);
    } catch (err) {
      throw new CollectorError('invalid_json', `line ${i + 1}: ${(err as Error).message}`);
    }
    if (!isRecord(record)) throw new CollectorError('invalid_record', `line ${i + 1} is not an object`);
    lines.push(stamp(record, receivedAt));
  }
  return lines;
}
