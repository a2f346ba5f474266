import { describe, expect, test } from 'vitest';
import { createHmac, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { checkKnownHostsText, keyTypeOf, knownHostsName, verifyHostKey } from '../../src/transport/known-hosts.js';

function blob(type: string, body: string): Buffer {
  const t = Buffer.from(type);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(t.length);
  return Buffer.concat([len, t, Buffer.from(body)]);
}

const keyA = blob('ssh-ed25519', 'key-a');
const keyB = blob('ssh-ed25519', 'key-b');

describe('known_hosts', () => {
  test('names, types, matches, hashed entries', () => {
    expect(knownHostsName('h', 22)).toBe('h');
    expect(knownHostsName('127.0.1.1', 2222)).toBe('[127.0.1.1]:2222');
    expect(keyTypeOf(keyA)).toBe('ssh-ed25519');
    const text = `[127.0.1.1]:2222 ssh-ed25519 ${keyA.toString('base64')}\n`;
    expect(checkKnownHostsText(text, '[127.0.1.1]:2222', keyA)).toEqual({ ok: true, added: false });
    expect(checkKnownHostsText(text, '[127.0.2.1]:2222', keyA)).toBeUndefined();
    const salt = randomBytes(20);
    const hash = createHmac('sha1', salt).update('[127.0.1.1]:2222').digest('base64');
    const hashed = `|1|${salt.toString('base64')}|${hash} ssh-ed25519 ${keyA.toString('base64')}\n`;
    expect(checkKnownHostsText(hashed, '[127.0.1.1]:2222', keyA)).toEqual({ ok: true, added: false });
  });

  test('a changed key is a hard error naming the host', () => {
    const text = `[127.0.1.1]:2222 ssh-ed25519 ${keyA.toString('base64')}\n`;
    const v = checkKnownHostsText(text, '[127.0.1.1]:2222', keyB);
    expect(v).toMatchObject({ ok: false, reason: 'changed' });
    expect(v && !v.ok && v.message).toContain('HOST KEY CHANGED for [127.0.1.1]:2222');
  });

  test('unknown hosts: strict refuses, accept-new records once', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kh-'));
    const file = path.join(dir, 'known_hosts');
    expect(verifyHostKey(file, 'h9', 2222, keyA, 'strict')).toMatchObject({ ok: false, reason: 'unknown' });
    expect(verifyHostKey(file, 'h9', 2222, keyA, 'accept-new')).toEqual({ ok: true, added: true });
    expect(verifyHostKey(file, 'h9', 2222, keyA, 'strict')).toEqual({ ok: true, added: false });
    expect(verifyHostKey(file, 'h9', 2222, keyB, 'accept-new')).toMatchObject({ ok: false, reason: 'changed' });
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
