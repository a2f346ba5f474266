/**
 * The zod schemas of plans and inventories. They validate the raw YAML (after toJS) and normalize
 * units; src/spec/load.ts and src/spec/inventory.ts map their issues to file:line:col and build the
 * model (src/spec/model.ts). scripts/gen-schema.ts renders them to JSON Schema for editors.
 */
import * as z from 'zod';
import { DRIVER_NAMES } from '../protocol/drivers.js';
import { parseConstraint } from './constraints.js';
import { DURATION_PATTERN, formatDuration, MEM_PATTERN, parseDuration, parseSize, SpecValueError } from './units.js';
import { checkZone, parseSchedule } from '../jobs/schedule.js';
import { DEFAULT_RESTART_BACKOFF } from './plan-build.js';

/** NAME_RE is what names (plans, groups, projects, IDCs, clusters, agents, subnets, volumes) look like. */
export const NAME_RE = /^[a-z0-9][a-z0-9-]*$/;
/** NAME_MAX is the longest name accepted (a DNS label). */
export const NAME_MAX = 63;
/** ENV_NAME_RE is what an environment variable name looks like. */
export const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** SCALAR_NAME_RE is what a custom scalar resource name (e.g. `ssd`) looks like. */
export const SCALAR_NAME_RE = /^[a-z][a-z0-9_-]*$/;
/** ATTRIBUTE_KEY_RE is what an inventory attribute key looks like. */
export const ATTRIBUTE_KEY_RE = /^[A-Za-z_][A-Za-z0-9_.-]*$/;
/** MAX_COUNT is the largest `count` of a group. */
export const MAX_COUNT = 10_000;
/** MAX_TASK_CPUS is the most cpus one task (or VM shape) may ask for. */
export const MAX_TASK_CPUS = 4096;
/** MAX_AGENT_CPUS is the most cpus an inventory may declare for one agent. */
export const MAX_AGENT_CPUS = 1_000_000;

/** UNKNOWN_KEYS_MARK prefixes the message of an unrecognized_keys issue; the known keys follow, \u0001-separated. */
export const UNKNOWN_KEYS_MARK = '\u0000known:';

/** SHELL_COMMAND_MESSAGE is the error for a command written as a plain string. */
export const SHELL_COMMAND_MESSAGE =
  'command must be a list (argv); it is never run through a shell — use ["sh","-c","..."] explicitly';

/** GROUP_RESOURCE_KEYS are the built-in resource names of a group; other keys are custom scalars. */
export const GROUP_RESOURCE_KEYS = ['cpus', 'mem', 'disk', 'gpus', 'ports'] as const;
/** AGENT_RESOURCE_KEYS are the built-in resource names of an agent or a quota. */
export const AGENT_RESOURCE_KEYS = ['cpus', 'mem', 'disk', 'gpus'] as const;

/** strictObject is z.strictObject whose unknown-key issue carries the known keys (for did-you-mean). */
function strictObject<T extends z.core.$ZodLooseShape>(shape: T) {
  const known = Object.keys(shape);
  return z.strictObject(shape, {
    error: (iss) => (iss.code === 'unrecognized_keys' ? UNKNOWN_KEYS_MARK + known.join('\u0001') : undefined),
  });
}

function valueError(e: unknown): string {
  return e instanceof SpecValueError ? e.detail : e instanceof Error ? e.message : String(e);
}

/** parsedWith makes a value parser (units, constraints) a zod transform: what it throws becomes the value's issue. */
function parsedWith<I, O>(parse: (v: I) => O): (v: I, ctx: z.core.$RefinementCtx<I>) => O {
  return (v, ctx) => {
    try {
      return parse(v);
    } catch (e) {
      ctx.issues.push({ code: 'custom', message: valueError(e), input: v });
      return z.NEVER;
    }
  };
}

/** checkedWith makes a value check (a schedule, a time zone) a zod refinement: what it throws becomes the value's issue. */
function checkedWith<I>(check: (v: I) => unknown): (v: I, ctx: z.core.$RefinementCtx<I>) => void {
  return (v, ctx) => {
    try {
      check(v);
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: valueError(e), input: v });
    }
  };
}

/** nameSchema is a validated name: lowercase letters, digits and '-', at most 63 characters. */
export const nameSchema = z
  .string()
  .max(NAME_MAX, { error: (iss) => `name '${String(iss.input)}' is longer than ${NAME_MAX} characters` })
  .regex(NAME_RE, {
    error: (iss) =>
      `invalid name '${String(iss.input)}': use lowercase letters, digits and '-', starting with a letter or digit`,
  })
  .meta({
    id: 'Name',
    description: `lowercase letters, digits and '-', starting with a letter or digit; at most ${NAME_MAX} characters`,
  });

function sizeSchema(opts: { allowZero?: boolean } = {}) {
  return z
    .union([z.number(), z.string().meta({ pattern: MEM_PATTERN })], {
      error: (iss) => (iss.input === undefined ? undefined : 'expected a size such as 512Mi, 2Gi or a number of bytes'),
    })
    .transform(parsedWith((v) => parseSize(v, undefined, opts)))
    .meta({ description: 'bytes, or a size with a unit: Ki, Mi, Gi, Ti, Pi (binary) or K, M, G, T, P (decimal)' });
}

/** durationSchema is a duration (`10s`, `500ms`, `1h30m`, or a number of seconds) normalized to milliseconds. */
export const durationSchema = z
  .union([z.number(), z.string().meta({ pattern: DURATION_PATTERN })], {
    error: (iss) => (iss.input === undefined ? undefined : 'expected a duration such as 10s, 500ms or 2m'),
  })
  .transform(parsedWith(parseDuration))
  .meta({ id: 'Duration', description: 'a duration: 500ms, 10s, 2m, 1h, 1h30m, or a plain number of seconds' });

const cpusSchema = (max: number) =>
  z.number().positive().max(max).meta({ description: 'cores; fractions allowed (0.5 = half a core)' });
const gpusSchema = z.number().int().min(0).max(1024);
const portSchema = z.number().int().min(1).max(65535);

/** scalarSchema is a custom resource amount: a number or a size string; zero allowed. */
const scalarSchema = sizeSchema({ allowZero: true });

/** argvSchema is a command as an argv list; never a shell string. */
export const argvSchema = z
  .array(z.string().min(1, { error: 'empty argument in command' }).refine((a) => !a.includes('\u0000'), { error: 'a NUL byte in a command argument (no program can receive it)' }), {
    error: (iss) => (iss.code === 'invalid_type' && typeof iss.input === 'string' ? SHELL_COMMAND_MESSAGE : undefined),
  })
  .min(1, { error: 'command must not be empty' })
  .meta({ id: 'Argv', description: 'argv: a list of strings, never run through a shell; use ["sh","-c","..."] for one' });

const constraintSchema = z
  .string()
  .transform(parsedWith(parseConstraint))
  .meta({ id: 'Constraint', description: 'attr == v, !=, <, <=, >, >=, attr in (a, b), attr not in (a, b), attr ~ regex' });

const portsSchema = z.array(portSchema).superRefine((ports, ctx) => {
  const seen = new Set<number>();
  ports.forEach((p, i) => {
    if (seen.has(p)) ctx.addIssue({ code: 'custom', message: `duplicate port ${p}`, path: [i], input: p });
    seen.add(p);
  });
});

/** groupResourcesSchema is what one task asks for: cpus, mem, disk, gpus, ports and custom scalars. */
export const groupResourcesSchema = z
  .object({
    cpus: cpusSchema(MAX_TASK_CPUS).optional(),
    mem: sizeSchema().optional(),
    disk: sizeSchema().optional(),
    gpus: gpusSchema.optional(),
    ports: portsSchema.optional(),
  })
  .catchall(scalarSchema)
  .meta({ id: 'TaskResources', description: 'what one task asks for; other keys are custom scalar resources (e.g. ssd: 100Gi)' });

/** agentResourcesSchema is an agent's declared capacity (or a project quota): cpus, mem, disk, gpus, custom scalars. */
export const agentResourcesSchema = z
  .object({
    cpus: cpusSchema(MAX_AGENT_CPUS).optional(),
    mem: sizeSchema().optional(),
    disk: sizeSchema({ allowZero: true }).optional(),
    gpus: gpusSchema.optional(),
  })
  .catchall(scalarSchema)
  .meta({ id: 'AgentResources', description: 'declared capacity (or a quota); other keys are custom scalar resources' });

const envSchema = z.record(
  z.string().regex(ENV_NAME_RE, {
    error: (iss) => `invalid environment variable name '${String(iss.input)}' (use [A-Za-z_][A-Za-z0-9_]*)`,
  }),
  z.union([z.string(), z.number(), z.boolean()], { error: 'expected a string value' }).transform(String),
);

const healthSchema = strictObject({
  http: z.string().startsWith('/', { error: "http must be a path starting with '/', e.g. /healthz" }).optional(),
  tcp: z.boolean().optional(),
  command: argvSchema.optional(),
  port: portSchema.optional(),
  interval: durationSchema.optional().meta({ description: 'default 10s' }),
}).superRefine((h, ctx) => {
  const kinds = [h.http !== undefined, h.tcp === true, h.command !== undefined].filter(Boolean).length;
  if (kinds !== 1) ctx.addIssue({ code: 'custom', message: 'health needs exactly one of http, tcp: true or command', input: h });
  if ((h.http !== undefined || h.tcp === true) && h.port === undefined) {
    ctx.addIssue({ code: 'custom', message: 'health http and tcp checks need a port', input: h });
  }
});

/** MAX_BACKOFF_FACTOR is the largest `restartBackoff.factor` accepted (more is a typo: max is reached at the second step). */
export const MAX_BACKOFF_FACTOR = 100;

/** restartBackoffSchema is a group's `restartBackoff`: the delays between restarts of a task that keeps dying. */
const restartBackoffSchema = strictObject({
  initial: durationSchema.optional().meta({ description: 'the wait before the second restart of a loop (the first is at once); default 1s; 0 turns the backoff off' }),
  factor: z
    .number()
    .min(1, { error: (iss) => `factor must be at least 1: each wait is the last one times factor (got ${String(iss.input)})` })
    .max(MAX_BACKOFF_FACTOR)
    .optional()
    .meta({ description: 'each next wait is the last one times this; default 2' }),
  max: durationSchema.optional().meta({ description: 'the longest wait; default 5m' }),
}).superRefine((b, ctx) => {
  const initial = b.initial ?? DEFAULT_RESTART_BACKOFF.initialMs;
  const max = b.max ?? DEFAULT_RESTART_BACKOFF.maxMs;
  if (typeof initial !== 'number' || typeof max !== 'number' || max >= initial) return;
  const said = (ms: number, given: boolean) => `${formatDuration(ms)}${given ? '' : ', the default'}`;
  ctx.addIssue({
    code: 'custom',
    message: `max (${said(max, b.max !== undefined)}) must not be less than initial (${said(initial, b.initial !== undefined)})`,
    path: [b.max !== undefined ? 'max' : 'initial'],
    input: b,
  });
});

/**
 * updateSchema is an `update` block: how a changed group is rolled out (a deployment, src/deploy).
 * Per group, as the plan's default (top-level `update`) and as the inventory's (`settings.update`).
 */
export const updateSchema = strictObject({
  maxParallel: z.number().int().min(1).max(MAX_COUNT).optional().meta({ description: 'tasks replaced at once; default 1' }),
  maxSurge: z.number().int().min(0).max(MAX_COUNT).optional().meta({ description: 'extra tasks allowed while replacing (above count); with 1 or more capacity never dips below count; default 0' }),
  minHealthyTime: durationSchema.optional().meta({ description: 'a new task must stay healthy this long to count; default 10s' }),
  healthyDeadline: durationSchema.optional().meta({ description: 'a new task not healthy for minHealthyTime by then counts failed; default 5m' }),
  progressDeadline: durationSchema.optional().meta({ description: 'the deployment fails when no new task became healthy for this long (0: no deadline); default 10m' }),
  autoRevert: z.boolean().optional().meta({ description: 'a failed deployment returns the group to the spec it replaced; default false' }),
  canary: z.number().int().min(0).max(MAX_COUNT).optional().meta({ description: 'start this many new tasks beside the old ones first and wait for `factory deploy promote`; default 0' }),
  autoPromote: z.boolean().optional().meta({ description: 'promote the canaries once they are healthy; default false' }),
}).meta({ id: 'Update', description: 'how a changed group is rolled out: a deployment replaces its tasks in batches, each new task health-gated' });

const groupCommon = {
  name: nameSchema,
  count: z.number().int().min(1).max(MAX_COUNT).default(1),
  everyAgent: z.boolean().default(false).meta({ description: 'run one task on every matching agent (count is ignored)' }),
  maxPerAgent: z.number().int().min(1).max(MAX_COUNT).optional(),
  resources: groupResourcesSchema.optional(),
  constraints: z.array(constraintSchema).default([]),
  strategy: z.enum(['binpack', 'spread']).default('binpack'),
  env: envSchema.default({}),
  workingDir: z.string().min(1).optional(),
  stopGrace: durationSchema.optional().meta({ description: 'wait this long after SIGTERM before SIGKILL; default 10s' }),
  restart: z.enum(['always', 'on-failure', 'never']).default('always'),
  restartBackoff: restartBackoffSchema.optional().meta({ description: 'spacing of the restarts of a task that keeps dying: {initial: 1s, factor: 2, max: 5m} by default' }),
  health: healthSchema.optional(),
  update: updateSchema.optional(),
};

/** processGroupSchema is one entry of `processes`. Default resources: cpus 0.1, mem 64Mi. */
export const processGroupSchema = strictObject({
  ...groupCommon,
  command: argvSchema,
});

/** containerGroupSchema is one entry of `containers`. Default resources: cpus 0.1, mem 64Mi. */
export const containerGroupSchema = strictObject({
  ...groupCommon,
  image: z.string().min(1),
  command: argvSchema.optional(),
});

const vmShapeSchema = strictObject({
  cpus: cpusSchema(MAX_TASK_CPUS),
  mem: sizeSchema(),
  disk: sizeSchema().optional(),
  gpus: gpusSchema.optional(),
});

/** vmGroupSchema is one entry of `vms`: either count + resources, or total + shapes (a resource plan). */
export const vmGroupSchema = strictObject({
  ...groupCommon,
  image: z.string().min(1),
  total: strictObject({ cpus: z.number().positive().max(10_000_000) }).optional(),
  shapes: z.array(vmShapeSchema).min(1).optional(),
  subnet: nameSchema.optional(),
  volumes: z.array(nameSchema).optional(),
});

/**
 * jobScheduleSchema is a job's schedule: cron (5 fields, 6 with seconds, or a macro) or an ISO 8601
 * repeating interval; read by src/jobs/schedule.ts (croner, luxon), whose message says what is wrong.
 */
const jobScheduleSchema = z
  .string()
  .superRefine(checkedWith(parseSchedule))
  .meta({ description: 'cron ("0 2 * * *"; 6 fields with seconds first; @hourly, @daily…) or an ISO 8601 repeating interval (R/2026-12-01T02:00:00Z/PT6H, R5/…/P1D)' });

const timeZoneSchema = z
  .string()
  .superRefine(checkedWith(checkZone))
  .meta({ description: 'IANA time zone the schedule is read in; default UTC' });

/** jobSchema is one entry of `jobs` (run by the control host: factory control serve). */
export const jobSchema = strictObject({
  name: nameSchema,
  schedule: jobScheduleSchema.optional(),
  timeZone: timeZoneSchema.optional(),
  after: z.array(nameSchema).min(1).optional().meta({ description: 'run once each of these jobs (same plan) has succeeded since this job last ran; instead of a schedule' }),
  command: argvSchema.optional(),
  image: z.string().min(1).optional().meta({ description: 'run the command in a container of this image (docker driver)' }),
  resources: groupResourcesSchema.optional(),
  constraints: z.array(constraintSchema).default([]),
  env: envSchema.default({}),
  workingDir: z.string().min(1).optional(),
  timeout: durationSchema.optional().meta({ description: 'a run still going after this is stopped and counts as failed' }),
  concurrency: z.enum(['allow', 'forbid', 'replace']).optional().meta({ description: 'a slot while the last run still runs: run both (allow, default), skip it (forbid), stop the old run (replace)' }),
  startingDeadline: durationSchema.optional().meta({ description: 'a slot not started within this is recorded missed, not run late' }),
  retries: z.number().int().min(0).max(100).optional(),
  backoff: durationSchema.optional().meta({ description: 'wait before the first retry, doubled for each next one; default 10s' }),
  backoffMax: durationSchema.optional().meta({ description: 'the longest wait between retries; default 5m' }),
  history: strictObject({ succeeded: z.number().int().min(0).max(1000).optional(), failed: z.number().int().min(0).max(1000).optional() }).optional().meta({ description: 'runs kept with their output; default 3 succeeded, 5 failed' }),
  suspend: z.boolean().optional(),
  catchUp: z.enum(['none', 'latest', 'all']).optional().meta({ description: 'slots missed while no control host ran: none (default), the latest, or all (up to catchUpMax)' }),
  catchUpMax: z.number().int().min(1).max(1000).optional(),
  stopGrace: durationSchema.optional(),
});

const section = <T extends z.ZodType>(item: T) => z.array(item).nullish();

/** planSchema is a whole plan file. */
export const planSchema = strictObject({
  name: nameSchema,
  project: nameSchema.default('default'),
  description: z.string().optional(),
  placement: strictObject({
    idcs: z.array(nameSchema).min(1).optional(),
    cluster: nameSchema.optional(),
  }).optional(),
  update: updateSchema.optional().meta({ description: "the default update block of this plan's groups" }),
  processes: section(processGroupSchema),
  containers: section(containerGroupSchema),
  vms: section(vmGroupSchema),
  jobs: section(jobSchema),
});

const hostKeyPolicySchema = z.enum(['strict', 'accept-new']).meta({
  description: 'strict: unknown hosts are refused; accept-new: unknown hosts are recorded in known_hosts (a changed key is always refused)',
});

const sshSchema = strictObject({
  host: z.string().min(1).meta({ description: 'address, DNS name or ~/.ssh/config Host alias' }),
  port: portSchema.optional().meta({ description: 'default: ~/.ssh/config, else 22' }),
  user: z.string().min(1).optional(),
  identityFile: z.string().min(1).optional(),
  nodePath: z.string().min(1).optional().meta({ description: 'the Node binary on the agent (default: node on the login PATH)' }),
  knownHostsFile: z.string().min(1).optional(),
  hostKeyPolicy: hostKeyPolicySchema.optional(),
});

/** settingsSchema tunes how factory reaches agents: timeouts, heartbeats, fan-out and host keys. */
export const settingsSchema = strictObject({
  connectTimeout: durationSchema.optional().meta({ description: 'connect + handshake + bootstrap bound per agent; default 10s' }),
  callTimeout: durationSchema.optional().meta({ description: 'default bound of each executor call; default 15s' }),
  heartbeat: durationSchema.optional().meta({ description: 'executor heartbeat period; default 5s' }),
  lostAfter: z.number().int().min(1).max(1000).optional().meta({ description: 'missed heartbeats before an agent is lost; default 3' }),
  concurrency: z.number().int().min(1).max(1024).optional().meta({ description: 'agents contacted in parallel; default 32' }),
  knownHostsFile: z.string().min(1).optional(),
  hostKeyPolicy: hostKeyPolicySchema.optional(),
  update: updateSchema.optional().meta({ description: 'the default update block of every group applied with this inventory (a plan or group says otherwise)' }),
});

/** agentSchema is one agent of the inventory; it needs `ssh` or `local: true`. */
export const agentSchema = strictObject({
  name: nameSchema,
  ssh: sshSchema.optional(),
  local: z.literal(true, { error: 'local must be true (or left out)' }).optional(),
  resources: agentResourcesSchema.optional(),
  attributes: z
    .record(
      z.string().regex(ATTRIBUTE_KEY_RE, {
        error: (iss) => `invalid attribute name '${String(iss.input)}' (use [A-Za-z_][A-Za-z0-9_.-]*)`,
      }),
      z.union([z.string(), z.number(), z.boolean()], { error: 'attribute values must be strings, numbers or booleans' }).transform(String),
    )
    .optional(),
  drivers: z.array(z.enum(DRIVER_NAMES)).optional(),
  workDir: z.string().min(1).optional(),
});

/** projectSchema is one tenant: DRF weight, quota and cluster pinning. */
export const projectSchema = strictObject({
  weight: z.number().positive().max(1_000_000).default(1),
  quota: agentResourcesSchema.optional(),
  clusters: z.array(nameSchema).optional(),
});

/** inventorySchema is a whole inventory file. */
export const inventorySchema = strictObject({
  idcs: z
    .array(
      strictObject({
        name: nameSchema,
        clusters: z.array(
          strictObject({
            name: nameSchema,
            agents: z.array(agentSchema),
          }),
        ),
      }),
    )
    .min(1),
  projects: z.record(nameSchema, projectSchema).nullish(),
  settings: settingsSchema.optional(),
});

/** RawPlan is a plan as the zod schema outputs it (units normalized, before the model is built). */
export type RawPlan = z.output<typeof planSchema>;
/** RawInventory is an inventory as the zod schema outputs it. */
export type RawInventory = z.output<typeof inventorySchema>;

function jsonSchema(schema: z.ZodType, id: string, title: string): Record<string, unknown> {
  const out = z.toJSONSchema(schema, { io: 'input', target: 'draft-2020-12' }) as Record<string, unknown>;
  return { $schema: out.$schema, $id: id, title, ...out };
}

/** planJsonSchema renders the plan schema as JSON Schema (what schema/plan.schema.json holds). */
export function planJsonSchema(): Record<string, unknown> {
  return jsonSchema(planSchema, 'https://factory.dev/schema/plan.schema.json', 'factory plan');
}

/** inventoryJsonSchema renders the inventory schema as JSON Schema (what schema/inventory.schema.json holds). */
export function inventoryJsonSchema(): Record<string, unknown> {
  return jsonSchema(inventorySchema, 'https://factory.dev/schema/inventory.schema.json', 'factory inventory');
}
