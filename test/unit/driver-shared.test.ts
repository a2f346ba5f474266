import { describe, expect, it } from 'vitest';
import { signalName, signalOfExitStatus } from '../../src/executors/drivers/shared/signals.js';

describe('driver signals', () => {
  it('names a signal from an exit status above 128 and leaves plain exit codes alone', () => {
    expect(signalOfExitStatus(137)).toBe('SIGKILL');
    expect(signalOfExitStatus(143)).toBe('SIGTERM');
    expect(signalOfExitStatus(128)).toBeUndefined();
    expect(signalOfExitStatus(3)).toBeUndefined();
    expect(signalOfExitStatus(0)).toBeUndefined();
    expect(signalOfExitStatus(193)).toBeUndefined();
    expect(signalName(200)).toBe('SIG200');
  });
});
