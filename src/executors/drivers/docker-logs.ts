/**
 * The engine's multiplexed log format (containers without a TTY): frames of an 8-byte header —
 * stream (1 stdout, 2 stderr), three zero bytes, a big-endian uint32 length — and the payload.
 */
import { StringDecoder } from 'node:string_decoder';

/** DockerLogDemuxer splits multiplexed log bytes into stdout and stderr text, across chunk boundaries. */
export class DockerLogDemuxer {
  private pending: Buffer = Buffer.alloc(0);
  private readonly decoders = { stdout: new StringDecoder('utf8'), stderr: new StringDecoder('utf8') };

  constructor(private readonly onData: (stream: 'stdout' | 'stderr', text: string) => void) {}

  /** push feeds raw bytes; complete frames are delivered synchronously. */
  push(chunk: Buffer): void {
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    let off = 0;
    while (this.pending.length - off >= 8) {
      const kind = this.pending[off];
      const size = this.pending.readUInt32BE(off + 4);
      if (this.pending.length - off - 8 < size) break;
      const payload = this.pending.subarray(off + 8, off + 8 + size);
      off += 8 + size;
      const stream = kind === 2 ? 'stderr' : 'stdout';
      const text = this.decoders[stream].write(payload);
      if (text) this.onData(stream, text);
    }
    this.pending = this.pending.subarray(off);
  }

  /** end flushes partial UTF-8 sequences. */
  end(): void {
    for (const stream of ['stdout', 'stderr'] as const) {
      const rest = this.decoders[stream].end();
      if (rest) this.onData(stream, rest);
    }
  }
}
