/** The libvirt driver's pure parts: domain and network XML, metadata round trip, power mapping, image ids. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { diskSources, diskTarget, domainXml, interfaceNetworks, networkXml, parseVmMetadata, xmlEscape, type DomainXmlInput } from '../../src/executors/drivers/libvirt/xml.js';
import { powerOf } from '../../src/executors/drivers/libvirt/index.js';
import { importVmImage, validateVmImageManifest, vmImageIdOf, VmImageStore } from '../../src/executors/drivers/libvirt/image-store.js';
import { VM_IMAGE_FORMAT } from '../../src/protocol/vm.js';

const input: DomainXmlInput = {
  name: 'fct-abc-p.g.0',
  vcpus: 1.5,
  memMiB: 100.2,
  disk: '/s/vms/p.g.0/disk.qcow2',
  kernel: '/s/images/x/kernel',
  initrd: '/s/images/x/initrd',
  cmdline: "console=ttyS0 x='<&>'",
  network: 'fct-abc-red',
  volumes: ['/s/volumes/a.raw', '/s/volumes/b.raw'],
  consoleLog: '/s/vms/p.g.0/console.log',
  metadata: { task: 'p/g/0', plan: 'p', group: 'g', project: "o'brien & co", specHash: 'h1', image: 'f'.repeat(64), store: '/s' },
};

describe('domainXml', () => {
  test('a qemu (TCG) domain with ACPI, direct kernel boot, overlay, shareable volumes, NIC and console log', () => {
    const xml = domainXml(input);
    expect(xml).toMatch(/^<domain type='qemu'>/);
    expect(xml).toContain('<vcpu>2</vcpu>');
    expect(xml).toContain("<memory unit='MiB'>101</memory>");
    expect(xml).toContain('<features><acpi/></features>');
    expect(xml).toContain('<kernel>/s/images/x/kernel</kernel>');
    expect(xml).toContain('<cmdline>console=ttyS0 x=&apos;&lt;&amp;&gt;&apos;</cmdline>');
    expect(diskSources(xml)).toEqual([input.disk, ...input.volumes]);
    expect(xml.match(/<shareable\/>/g)).toHaveLength(2);
    expect(xml).toContain("<target dev='vdc' bus='virtio'/>");
    expect(interfaceNetworks(xml)).toEqual(['fct-abc-red']);
    expect(xml).toContain("<log file='/s/vms/p.g.0/console.log' append='on'/>");
  });

  test('without a kernel it boots from the disk; without a subnet it has no NIC', () => {
    const { kernel: _k, initrd: _i, cmdline: _c, network: _n, ...rest } = input;
    const xml = domainXml({ ...rest, volumes: [] });
    expect(xml).toContain("<boot dev='hd'/>");
    expect(xml).not.toContain('<kernel>');
    expect(interfaceNetworks(xml)).toEqual([]);
  });

  test('metadata round-trips through the XML (also as libvirt rewrites it with double quotes)', () => {
    const xml = domainXml(input);
    expect(parseVmMetadata(xml)).toEqual(input.metadata);
    const libvirtStyle = `<domain><metadata>\n    <factory:vm xmlns:factory="urn:factory:vm:1" task="p/g/0" plan="p" group="g" project="o&apos;brien &amp; co" spec-hash="h1" image="i" store="/s"/>\n  </metadata></domain>`;
    expect(parseVmMetadata(libvirtStyle)).toMatchObject({ task: 'p/g/0', project: "o'brien & co", specHash: 'h1' });
    expect(parseVmMetadata('<domain><name>other</name></domain>')).toBeUndefined();
  });

  test('the state id that started the VM is kept in the metadata; a legacy domain has none', () => {
    const withState = { ...input.metadata, state: 'st-0123456789ab' };
    const xml = domainXml({ ...input, metadata: withState });
    expect(xml).toContain("state='st-0123456789ab'");
    expect(parseVmMetadata(xml)).toEqual(withState);
    expect(parseVmMetadata(domainXml(input))!.state).toBeUndefined();
  });

  test('names and values are escaped, never interpreted', () => {
    expect(xmlEscape(`<a b="c">'&`)).toBe('&lt;a b=&quot;c&quot;&gt;&apos;&amp;');
    expect(networkXml('fct-x-red', 'fvabc')).toBe("<network>\n  <name>fct-x-red</name>\n  <bridge name='fvabc' stp='off' delay='0'/>\n</network>\n");
    expect(networkXml('n', 'b')).not.toMatch(/<forward|<ip/);
  });

  test('disk targets count like libvirt: vda … vdz, vdaa', () => {
    expect([0, 1, 25, 26, 27].map(diskTarget)).toEqual(['vda', 'vdb', 'vdz', 'vdaa', 'vdab']);
  });

  test('power states: libvirt states map to running, paused, shut off, crashed', () => {
    expect([0, 1, 2, 3, 4, 5, 6, 7].map(powerOf)).toEqual(['running', 'running', 'running', 'paused', 'running', 'shut off', 'crashed', 'paused']);
  });
});

describe('VM image store', () => {
  const sha = (c: string) => c.repeat(64);

  test('the id is content-addressed: same files and cmdline, same id; any change, another id', () => {
    const a = vmImageIdOf({ files: { 'disk.qcow2': { sha256: sha('a'), size: 1 }, kernel: { sha256: sha('b'), size: 2 } }, cmdline: 'x' });
    const b = vmImageIdOf({ files: { kernel: { sha256: sha('b'), size: 2 }, 'disk.qcow2': { sha256: sha('a'), size: 1 } }, cmdline: 'x' });
    expect(a).toBe(b);
    expect(vmImageIdOf({ files: { 'disk.qcow2': { sha256: sha('a'), size: 1 }, kernel: { sha256: sha('b'), size: 2 } }, cmdline: 'y' })).not.toBe(a);
  });

  test('bad manifests are refused with the reason', () => {
    const ok = { format: VM_IMAGE_FORMAT, files: { 'disk.qcow2': { sha256: sha('a'), size: 1 } } };
    expect(validateVmImageManifest(ok)).toBe(ok);
    expect(() => validateVmImageManifest({ ...ok, files: {} })).toThrow(/disk.qcow2 is required/);
    expect(() => validateVmImageManifest({ ...ok, files: { ...ok.files, '../x': { sha256: sha('a'), size: 1 } } })).toThrow(/unexpected file/);
    expect(() => validateVmImageManifest({ ...ok, files: { ...ok.files, initrd: { sha256: sha('a'), size: 1 } } })).toThrow(/initrd needs kernel/);
    expect(() => validateVmImageManifest({ ...ok, format: 'x' })).toThrow(/format/);
  });

  test('uploads are verified by checksum before commit; names point at ids; re-import is a no-op', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vm-store-'));
    try {
      const store = new VmImageStore(dir);
      const disk = path.join(dir, 'src.qcow2');
      fs.writeFileSync(disk, 'disk-bytes');
      const made = await importVmImage(store, 'base', { files: { 'disk.qcow2': disk } });
      expect(store.has(made.id)).toBe(true);
      expect(store.resolve('base')?.id).toBe(made.id);
      expect(store.resolve(made.id)?.manifest.files['disk.qcow2']?.size).toBe(10);
      expect((fs.statSync(path.join(made.dir, 'disk.qcow2')).mode & 0o777).toString(8)).toBe('444');
      expect((await importVmImage(store, 'base2', { files: { 'disk.qcow2': disk } })).id).toBe(made.id);
      expect(store.list()).toEqual([expect.objectContaining({ id: made.id, names: ['base', 'base2'] })]);

      // a corrupted upload is refused and nothing is committed
      const manifest = { format: VM_IMAGE_FORMAT, files: { 'disk.qcow2': { sha256: sha('c'), size: 3 } } } as const;
      const id = vmImageIdOf(manifest);
      store.put(id, 'disk.qcow2', 0, Buffer.from('abc'));
      await expect(store.commit(id, 'bad', { ...manifest, files: { ...manifest.files } })).rejects.toThrow(/checksum mismatch/);
      expect(store.has(id)).toBe(false);
      expect(store.resolve('bad')).toBeUndefined();
      // chunks must arrive in order
      expect(() => store.put(id, 'disk.qcow2', 5, Buffer.from('x'))).toThrow(/chunk at 5/);
      expect(() => store.put(id, 'evil', 0, Buffer.from('x'))).toThrow(/not one of/);
      expect(() => store.put('../x', 'disk.qcow2', 0, Buffer.from('x'))).toThrow(/bad image id/);
      await expect(store.commit(made.id, '../n', store.resolve(made.id)!.manifest)).rejects.toThrow(/bad image name/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('VM groups to run specs', () => {
  test('examples/vm-lab.yaml: the run spec carries image, subnet and volumes; they are part of the spec hash', async () => {
    const { loadPlanFile } = await import('../../src/spec/index.js');
    const { runSpecOf, specHashOf } = await import('../../src/control/desired.js');
    const plan = await loadPlanFile('examples/vm-lab.yaml');
    const g = plan.groups[0]!;
    expect(g).toMatchObject({ kind: 'vm', driver: 'libvirt', image: 'tiny', subnet: 'lab-net', volumes: ['lab-shared'], count: 2 });
    const hash = specHashOf(plan, g);
    const spec = runSpecOf(
      { task: 'vm-lab/node/0', plan: 'vm-lab', group: 'node', project: 'demo', idc: 'local', cluster: 'local', agent: 'local', driver: 'libvirt', specHash: hash, resources: g.resources, reason: 'new' },
      plan,
      g,
    );
    expect(spec).toMatchObject({ driver: 'libvirt', image: 'tiny', vm: { subnet: 'lab-net', volumes: ['lab-shared'] }, stopGraceMs: 30_000 });
    expect(spec.resources).toMatchObject({ cpus: 1, mem: 256 * 1024 * 1024 });
    expect(specHashOf(plan, { ...g, subnet: 'other' })).not.toBe(hash);
    expect(specHashOf(plan, { ...g, volumes: [] })).not.toBe(hash);
  });
});
