/**
 * Transports carry the executor protocol: a byte pipe to an executor program on an agent. The local
 * transport runs it as a child process (or in process), the SSH transport over an exec channel.
 */
import type { Readable, Writable } from 'node:stream';

/** TransportExit is how the executor at the other end of a channel ended. */
export interface TransportExit {
  code: number | null;
  signal: string | null;
}

/** TransportChannel is one running executor: its stdio and its end. */
export interface TransportChannel {
  /** stdin carries requests to the executor. */
  stdin: Writable;
  /** stdout carries the executor's protocol messages. */
  stdout: Readable;
  /** stderr carries the executor's diagnostics (kept for error messages). */
  stderr: Readable;
  /** close ends the session (closes stdin, waits briefly, then terminates the executor); tasks keep running. */
  close(): Promise<void>;
  /** pid is the executor's process id when it runs on this machine (local transport only). */
  pid?: number;
  /** exited resolves when the executor ended, for whatever reason; it never rejects. */
  exited: Promise<TransportExit>;
}

/** Transport reaches one agent and starts an executor there. */
export interface Transport {
  /** agent is the agent's name, used in every error message. */
  readonly agent: string;
  /** open starts an executor and returns its channel. */
  open(): Promise<TransportChannel>;
}
