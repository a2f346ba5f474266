/**
 * migrateV1 turns a version 1 state document (one JSON file rewritten whole, events without
 * revisions) into a version 2 snapshot: the same records, the events numbered from 1, and a new
 * state id. The file backend keeps the old file beside it as state.json.v1.
 */
import type { EventRecord, EventTopic } from './backend.js';
import { EventLog, type EventRetention } from './event-log.js';
import type { SnapshotDoc } from './tables.js';
import type { AgentRecord, PlanRecord, TaskRecord } from './types.js';

/** V1_BACKUP is the name the version 1 file is kept under after migration. */
export const V1_BACKUP = 'state.json.v1';

/** V1Document is the version 1 state file. */
export interface V1Document {
  version: 1;
  agents: Record<string, AgentRecord>;
  tasks: Record<string, TaskRecord>;
  plans: Record<string, PlanRecord>;
  events: { at: string; kind: string; task?: string; agent?: string; message: string }[];
}

/** topicOfKind maps an event kind (task-started, agent-lost, plan-applied, job-run-started, deployment-failed…) to its topic. */
export function topicOfKind(kind: string): EventTopic {
  const head = kind.split('-')[0];
  if (head === 'task' || head === 'agent' || head === 'plan' || head === 'vm' || head === 'job' || head === 'deployment') return head;
  return 'state';
}

/** migrateV1 returns the version 2 snapshot of a version 1 document. */
export function migrateV1(v1: V1Document, id: string, retention?: EventRetention): SnapshotDoc {
  const events: EventRecord[] = v1.events.map((e, i) => ({ ...e, topic: topicOfKind(e.kind), rev: i + 1 }));
  const log = new EventLog(retention);
  log.load(events, events.length, 0);
  return {
    version: 2,
    id,
    rev: events.length,
    droppedThrough: log.droppedThrough,
    agents: v1.agents,
    tasks: v1.tasks,
    plans: v1.plans,
    tokens: {},
    events: log.all(),
  };
}
