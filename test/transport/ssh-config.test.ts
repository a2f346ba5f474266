import { describe, expect, test } from 'vitest';
import os from 'node:os';
import { hostMatches, resolveSshConfigText } from '../../src/transport/ssh-config.js';

const CONFIG = `
# global defaults come first in OpenSSH, but first value wins
Host web-*  !web-bad
  HostName 10.0.0.%h
  User deploy
  Port 2200
  IdentityFile ~/.ssh/web_key

Host db1
  HostName=127.0.3.1
  Port 2222
  StrictHostKeyChecking accept-new
  UserKnownHostsFile ~/.ssh/kh_db

Host *
  User fallback
  IdentityFile ~/.ssh/id_ed25519
  Port 22
`;

describe('ssh config aliases', () => {
  test('first obtained value wins, patterns and negation', () => {
    const e = resolveSshConfigText(CONFIG, 'db1');
    expect(e).toMatchObject({ hostName: '127.0.3.1', port: 2222, user: 'fallback', strictHostKeyChecking: 'accept-new' });
    expect(e.userKnownHostsFile).toBe(`${os.homedir()}/.ssh/kh_db`);
    expect(e.identityFiles).toEqual([`${os.homedir()}/.ssh/id_ed25519`]);
    const w = resolveSshConfigText(CONFIG, 'web-1');
    expect(w).toMatchObject({ user: 'deploy', port: 2200 });
    expect(w.identityFiles).toEqual([`${os.homedir()}/.ssh/web_key`, `${os.homedir()}/.ssh/id_ed25519`]);
    expect(resolveSshConfigText(CONFIG, 'web-bad')).toMatchObject({ user: 'fallback', port: 22 });
    expect(resolveSshConfigText(CONFIG, 'other').hostName).toBeUndefined();
  });

  test('hostMatches follows pattern-list rules', () => {
    expect(hostMatches(['*'], 'x')).toBe(true);
    expect(hostMatches(['h?'], 'h1')).toBe(true);
    expect(hostMatches(['h?'], 'h12')).toBe(false);
    expect(hostMatches(['*', '!h1'], 'h1')).toBe(false);
  });
});
