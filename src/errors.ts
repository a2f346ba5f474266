/**
 * Typed errors. Every expected failure is a FactoryError: the CLI's one catch turns it into a
 * message on stderr and an exit code, with no stack trace unless --debug.
 */

/** FactoryError is the base of every expected failure: a code, an exit code and an optional hint. */
export class FactoryError extends Error {
  /** code is a stable machine-readable identifier, e.g. `E_PLAN_INVALID`. */
  readonly code: string;
  /** exitCode is what the CLI exits with when this error reaches it. */
  readonly exitCode: number;
  /** hint tells the operator what to do about it, when we know. */
  readonly hint?: string;

  constructor(message: string, opts: { code?: string; exitCode?: number; hint?: string; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.code = opts.code ?? 'E_FACTORY';
    this.exitCode = opts.exitCode ?? 1;
    this.hint = opts.hint;
  }
}

/** SpecIssue is one problem found in a plan or inventory file, with its position. */
export interface SpecIssue {
  file: string;
  line: number;
  col: number;
  /** path is the dotted path inside the document, e.g. `processes[0].resources.mem`. */
  path: string;
  message: string;
}

/** SpecError reports one or more problems in plan or inventory files as `file:line:col: path: message`. */
export class SpecError extends FactoryError {
  readonly issues: SpecIssue[];

  constructor(issues: SpecIssue[]) {
    super(issues.map(formatSpecIssue).join('\n'), { code: 'E_SPEC_INVALID', exitCode: 1 });
    this.issues = issues;
  }
}

/** formatSpecIssue renders an issue the way compilers do, so editors can jump to it. */
export function formatSpecIssue(i: SpecIssue): string {
  return `${i.file}:${i.line}:${i.col}: ${i.path ? `${i.path}: ` : ''}${i.message}`;
}

/** StateError is a problem with the state directory or file (unwritable, corrupt, locked). */
export class StateError extends FactoryError {
  constructor(message: string, opts: { code?: string; hint?: string; cause?: unknown } = {}) {
    super(message, { code: opts.code ?? 'E_STATE', exitCode: 1, hint: opts.hint, cause: opts.cause });
  }
}

/** AgentError is a failure on or while reaching one agent; its message always names the agent. */
export class AgentError extends FactoryError {
  readonly agent: string;

  constructor(agent: string, message: string, opts: { code?: string; hint?: string; cause?: unknown } = {}) {
    super(`agent ${agent}: ${message}`, { code: opts.code ?? 'E_AGENT', exitCode: 1, hint: opts.hint, cause: opts.cause });
    this.agent = agent;
  }
}
