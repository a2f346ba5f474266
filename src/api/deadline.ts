/**
 * Deadlines: a client sends `x-factory-deadline` (epoch ms); a request whose deadline passed before
 * it runs is answered 408 and never runs. It is checked when the request arrives, again once its
 * body is read, and once more when a queued write gets its turn (write-queue.ts).
 */
import type { FastifyRequest } from 'fastify';
import { ApiError } from './errors.js';

/** DEADLINE_HEADER carries the client's deadline in epoch milliseconds. */
export const DEADLINE_HEADER = 'x-factory-deadline';

/** readDeadline sets req.deadline from the header (400 when it is not epoch milliseconds). */
export function readDeadline(req: FastifyRequest): void {
  const raw = req.headers[DEADLINE_HEADER];
  if (raw === undefined) return;
  const deadline = Number(raw);
  if (typeof raw !== 'string' || !/^\d{1,16}$/.test(raw) || !Number.isSafeInteger(deadline)) {
    throw new ApiError(400, 'E_BAD_REQUEST', `${DEADLINE_HEADER} must be epoch milliseconds`);
  }
  req.deadline = deadline;
}

/** checkDeadline throws E_DEADLINE (408) when the request's deadline has passed. */
export function checkDeadline(req: FastifyRequest): void {
  if (req.deadline !== undefined && Date.now() > req.deadline) {
    throw new ApiError(408, 'E_DEADLINE', `the request's deadline passed ${Date.now() - req.deadline} ms before it started; it was not run`);
  }
}
