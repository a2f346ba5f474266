import { describe, expect, it } from 'vitest';
import type { PlacementView } from '../../src/jobs/agents.js';
import { placeRuns } from '../../src/jobs/place.js';
import type { JobRecord, RunRecord } from '../../src/jobs/types.js';
import { jobRecord } from './specs.js';
import type { AgentSnapshot } from '../../src/scheduler/types.js';

const agent = (name: string, cluster: string, cpus: number, attributes: Record<string, string> = {}): AgentSnapshot => ({
  name, idc: 'dc', cluster, state: 'ready', capacity: { cpus, mem: 2 ** 34, disk: 2 ** 40, gpus: 0, scalars: {} }, attributes, drivers: ['process', 'docker'],
});
const job = (name: string, project: string, cpus: number, over: Partial<JobRecord['spec']> = {}): JobRecord =>
  jobRecord(`p/${name}`, { schedule: '* * * * *', resources: { cpus, mem: 1, disk: 0, gpus: 0, scalars: {}, ports: [] }, stopGraceMs: 0, ...over }, { project });
const run = (j: JobRecord, i: number): RunRecord => ({ id: `${j.id}/${i}`, job: j.id, plan: 'p', project: j.project, slot: '', trigger: 'schedule', state: 'claimed', attempt: 1, claimedAt: '', attempts: [] });

describe('placeRuns: runs are placed by the scheduler like any task', () => {
  it('constraints, the plan placement and the capacity that tasks and runs going hold', () => {
    const view: PlacementView = {
      agents: [agent('a', 'c1', 4, { rack: 'r1' }), agent('b', 'c2', 4, { rack: 'r2' })],
      actual: [{ task: 'x/y/0', plan: 'x', group: 'y', project: 'default', agent: 'a', driver: 'process', specHash: '', state: 'running', resources: { cpus: 3.5, mem: 1, disk: 0, gpus: 0, scalars: {}, ports: [] } }],
    };
    const pinned = job('pinned', 'default', 1, { constraints: [{ attribute: 'rack', op: '==', value: 'r1', source: 'rack == r1' }] });
    const [p] = placeRuns(view, [{ run: run(pinned, 1), job: pinned }]);
    expect(p).toMatchObject({ reason: expect.stringMatching(/^no agent fits/) });
    const free = job('free', 'default', 1);
    expect(placeRuns(view, [{ run: run(free, 1), job: free }])).toEqual([{ run: 'p/free/1', agent: 'b' }]);
    const inC1 = placeRuns({ ...view, placement: { cluster: 'c1' } }, [{ run: run(free, 2), job: free }]);
    expect(inC1[0]).toMatchObject({ reason: expect.stringMatching(/no agent fits|cluster/) });
  });

  it('a project quota applies to runs', () => {
    const view: PlacementView = { agents: [agent('a', 'c1', 8)], actual: [], projects: { tight: { weight: 1, quota: { cpus: 1 } } } };
    const j = job('q', 'tight', 1);
    const out = placeRuns(view, [{ run: run(j, 1), job: j }, { run: run(j, 2), job: j }]);
    expect(out.filter((x) => x.agent).length).toBe(1);
    expect(out.find((x) => !x.agent)).toMatchObject({ reason: expect.stringMatching(/quota/) });
  });
});
