/**
 * LibvirtDriver.open against a real libvirtd leaves nothing behind that keeps Node running: the local
 * agent's executor runs inside the CLI, so a stray timer here kept every finished `factory` command
 * alive for 5 s (the connect timeout was never cleared).
 */
import { afterAll, describe, expect, test } from 'vitest';
import { detectLimits } from '../../src/executors/discovery.js';
import { LibvirtDriver } from '../../src/executors/drivers/libvirt/index.js';
import { acquireLibvirtd, testWorkDir } from '../harness/libvirtd.js';

const lv = await acquireLibvirtd();
const work = testWorkDir('libvirt-open-');

const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

describe.skipIf(!lv.ok)(`LibvirtDriver.open${lv.ok ? '' : ` (skipped: ${lv.reason})`}`, () => {
  afterAll(async () => {
    work.cleanup();
    if (lv.ok) await lv.release();
  });

  test('connects and leaves no timer running once connected', async () => {
    const before = timers();
    const driver = await LibvirtDriver.open({ workDir: work.dir, limits: detectLimits(), log: () => undefined });
    expect(driver, 'libvirt answered at qemu:///system').toBeDefined();
    expect(timers()).toBeLessThanOrEqual(before);
    await driver!.close();
  });
});
