import { describe, expect, test } from 'vitest';
import { assessProbe } from '../../src/control/doctor.js';

describe('agents doctor: probe assessment', () => {
  test('a bare host: node missing fails, docker/libvirt/qemu/kvm missing warn with fixes', () => {
    const c = assessProbe('node=missing\ndisk_kib=50000\ndisk_path=/root\ndocker=missing\nlibvirt=missing\nqemu=missing\nkvm=no\n');
    const by = Object.fromEntries(c.map((x) => [x.check, x]));
    expect(by.node).toMatchObject({ status: 'fail' });
    expect(by.node!.fix).toMatch(/apt-get install -y nodejs/);
    expect(by.disk).toMatchObject({ status: 'fail' });
    expect(by.docker!.fix).toBe('apt-get install -y docker.io');
    expect(by.libvirt).toMatchObject({ status: 'warn' });
    expect(by.qemu).toMatchObject({ status: 'warn' });
    expect(by.kvm).toMatchObject({ status: 'warn' });
  });

  test('a full host is ok; old node and silent daemons are reported', () => {
    const ok = assessProbe('node=v20.11.0\ndisk_kib=20000000\ndisk_path=/\ndocker=24.0.5\nlibvirt=9.0.0\nqemu=7.2.1\nkvm=yes\n');
    expect(ok.every((x) => x.status === 'ok')).toBe(true);
    const bad = assessProbe('node=v18.19.0\ndisk_kib=500000\ndocker=no-daemon\nlibvirt=\nqemu=7.2\nkvm=yes\n');
    const by = Object.fromEntries(bad.map((x) => [x.check, x]));
    expect(by.node).toMatchObject({ status: 'fail', detail: 'Node v18.19.0 is too old' });
    expect(by.disk).toMatchObject({ status: 'warn' });
    expect(by.docker!.fix).toMatch(/dockerd/);
    expect(by.libvirt!.fix).toMatch(/libvirtd -d/);
  });
});
