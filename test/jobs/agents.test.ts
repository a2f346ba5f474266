import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect, it } from 'vitest';
import { JobAgents } from '../../src/jobs/agents.js';
import { FileBackend } from '../../src/state/file-backend.js';

it('a closed JobAgents opens no session: a run stopped in the background after the host stopped would start an executor nobody closes', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'factory-job-agents-'));
  const state = Object.assign(await FileBackend.open(dir), { dir });
  const agents = new JobAgents(state);
  try {
    await agents.close();
    await expect(agents.executor('p', 'local')).rejects.toMatchObject({ code: 'E_AGENT_CLOSED' });
  } finally {
    await agents.close();
    await state.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
