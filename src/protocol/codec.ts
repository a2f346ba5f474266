/**
 * The wire format of the executor protocol: one JSON document per line (JSON lines), UTF-8.
 * Both sides use this codec so a malformed or oversized line is a protocol error, never a crash.
 */
import type { Readable } from 'node:stream';
import { FactoryError } from '../errors.js';
import { PROTOCOL_VERSION, type Message, type Request } from './messages.js';

/** MAX_LINE_BYTES is the longest line either side accepts (16 MiB); longer lines are dropped with an error. */
export const MAX_LINE_BYTES = 16 * 1024 * 1024;

/** ProtocolError is a malformed, oversized or incompatible protocol line. */
export class ProtocolError extends FactoryError {
  constructor(message: string, opts: { cause?: unknown } = {}) {
    super(message, { code: 'E_PROTOCOL', exitCode: 1, cause: opts.cause });
  }
}

/** encode renders a message as exactly one JSON line, terminated by `\n`. */
export function encode(msg: Request | Message): string {
  // JSON.stringify escapes control characters, so the line never contains a raw newline.
  return `${JSON.stringify(msg)}\n`;
}

/** LineSplitter cuts a byte stream into lines, tolerating partial chunks and refusing oversized lines. */
export class LineSplitter {
  private parts: Buffer[] = [];
  private size = 0;
  private discarding = false;

  constructor(
    private readonly onLine: (line: string) => void,
    private readonly onError: (err: ProtocolError) => void,
    private readonly maxBytes: number = MAX_LINE_BYTES,
  ) {}

  /** push feeds one chunk; complete lines are delivered synchronously through onLine. */
  push(chunk: Buffer | string): void {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    let start = 0;
    while (start <= buf.length) {
      const nl = buf.indexOf(0x0a, start);
      if (nl < 0) {
        const rest = buf.subarray(start);
        if (rest.length === 0) break;
        if (this.discarding) break;
        this.parts.push(rest);
        this.size += rest.length;
        if (this.size > this.maxBytes) {
          this.parts = [];
          this.size = 0;
          this.discarding = true;
          this.onError(new ProtocolError(`protocol line longer than ${this.maxBytes} bytes: dropped`));
        }
        break;
      }
      const piece = buf.subarray(start, nl);
      start = nl + 1;
      if (this.discarding) {
        this.discarding = false;
        continue;
      }
      const total = this.size + piece.length;
      const line = this.parts.length === 0 ? piece : Buffer.concat([...this.parts, piece], total);
      this.parts = [];
      this.size = 0;
      if (total > this.maxBytes) {
        this.onError(new ProtocolError(`protocol line longer than ${this.maxBytes} bytes: dropped`));
        continue;
      }
      let text = line.toString('utf8');
      if (text.endsWith('\r')) text = text.slice(0, -1);
      if (text.trim() === '') continue;
      this.onLine(text);
    }
  }

  /** end flushes a final unterminated line, if any. */
  end(): void {
    if (this.discarding || this.size === 0) {
      this.parts = [];
      this.size = 0;
      this.discarding = false;
      return;
    }
    this.push(Buffer.from('\n'));
  }
}

/** DecodeResult is either a decoded message or the protocol error that prevented it. */
export type DecodeResult<T> = { ok: true; value: T } | { ok: false; error: ProtocolError; id?: number };

/** decodeLine parses one line as a protocol object: JSON, an object with a `type`, and `v === PROTOCOL_VERSION`. */
export function decodeLine<T extends Request | Message>(line: string): DecodeResult<T> {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (err) {
    const preview = line.length > 80 ? `${line.slice(0, 80)}…` : line;
    return { ok: false, error: new ProtocolError(`malformed protocol line (invalid JSON): ${preview}`, { cause: err }) };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, error: new ProtocolError('malformed protocol line: not a JSON object') };
  }
  const obj = value as Record<string, unknown>;
  const id = typeof obj.id === 'number' ? obj.id : undefined;
  if (obj.v !== PROTOCOL_VERSION) {
    return {
      ok: false,
      id,
      error: new ProtocolError(`protocol version mismatch: got v=${JSON.stringify(obj.v)}, this side speaks v=${PROTOCOL_VERSION}`),
    };
  }
  if (typeof obj.type !== 'string') {
    return { ok: false, id, error: new ProtocolError('malformed protocol line: missing "type"') };
  }
  return { ok: true, value: obj as T };
}

/** readMessages splits a Readable into decoded protocol objects; bad lines go to onError, the stream keeps flowing. */
export function readMessages<T extends Request | Message>(
  input: Readable,
  handlers: { onMessage: (msg: T) => void; onError: (err: ProtocolError, id?: number) => void; onEnd?: () => void },
): LineSplitter {
  const splitter = new LineSplitter(
    (line) => {
      const r = decodeLine<T>(line);
      if (r.ok) handlers.onMessage(r.value);
      else handlers.onError(r.error, r.id);
    },
    (err) => handlers.onError(err),
  );
  input.on('data', (chunk: Buffer | string) => splitter.push(chunk));
  input.on('end', () => {
    splitter.end();
    handlers.onEnd?.();
  });
  return splitter;
}
