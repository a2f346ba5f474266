/**
 * The libvirt XML the VM driver writes and reads: domain definitions (with the factory metadata that
 * names the task, for adoption) and isolated networks. Pure functions: no I/O, so they are unit-tested
 * without a daemon. Every value is XML-escaped; nothing from a plan reaches a shell.
 */

/** VM_METADATA_NS is the XML namespace of the `<factory:vm>` metadata element of every factory domain. */
export const VM_METADATA_NS = 'urn:factory:vm:1';

/** VmMetadata is what a domain's metadata says about the factory task it runs. */
export interface VmMetadata {
  task: string;
  plan: string;
  group: string;
  project: string;
  specHash: string;
  /** image is the id of the base image the VM's overlay was made from. */
  image: string;
  /** store is the image store (agent folder) that owns the VM; executors adopt only their own. */
  store: string;
  /** state is the id of the factory state that started the VM; absent for VMs from before states had ids. */
  state?: string;
}

/** DomainXmlInput is everything domainXml needs. */
export interface DomainXmlInput {
  name: string;
  vcpus: number;
  memMiB: number;
  /** disk is the VM's qcow2 overlay. */
  disk: string;
  /** kernel, initrd and cmdline select direct kernel boot; without kernel the VM boots from its disk. */
  kernel?: string;
  initrd?: string;
  cmdline?: string;
  /** network is the libvirt network the NIC joins (none: no NIC). */
  network?: string;
  /** volumes are shared raw disks attached with `<shareable/>`. */
  volumes: string[];
  /** consoleLog is where virtlogd writes the serial console. */
  consoleLog: string;
  metadata: VmMetadata;
}

/** xmlEscape escapes text for XML element content and attribute values. */
export function xmlEscape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

function xmlUnescape(text: string): string {
  return text
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&#(\d+);/g, (_, n: string) => String.fromCodePoint(Number(n)))
    .replace(/&amp;/g, '&');
}

/** diskTarget names the n-th virtio disk: vda, vdb, … vdz, vdaa, … */
export function diskTarget(n: number): string {
  let s = '';
  let i = n;
  do {
    s = String.fromCharCode(97 + (i % 26)) + s;
    i = Math.floor(i / 26) - 1;
  } while (i >= 0);
  return `vd${s}`;
}

/**
 * domainXml builds a `<domain type='qemu'>` (TCG: KVM cannot boot guests on every host) with ACPI, the
 * overlay as vda, shared volumes as vdb…, an optional NIC on the subnet's network, the serial console
 * logged to a file, and the factory metadata.
 */
export function domainXml(i: DomainXmlInput): string {
  const e = xmlEscape;
  const m = i.metadata;
  const os = i.kernel
    ? [
        `    <kernel>${e(i.kernel)}</kernel>`,
        ...(i.initrd ? [`    <initrd>${e(i.initrd)}</initrd>`] : []),
        ...(i.cmdline ? [`    <cmdline>${e(i.cmdline)}</cmdline>`] : []),
      ]
    : ["    <boot dev='hd'/>"];
  const volumes = i.volumes.map(
    (v, n) =>
      `    <disk type='file' device='disk'>\n      <driver name='qemu' type='raw' cache='none'/>\n      <source file='${e(v)}'/>\n      <target dev='${diskTarget(n + 1)}' bus='virtio'/>\n      <shareable/>\n    </disk>`,
  );
  const nic = i.network ? [`    <interface type='network'>\n      <source network='${e(i.network)}'/>\n      <model type='virtio'/>\n    </interface>`] : [];
  return [
    "<domain type='qemu'>",
    `  <name>${e(i.name)}</name>`,
    '  <metadata>',
    `    <factory:vm xmlns:factory='${VM_METADATA_NS}' task='${e(m.task)}' plan='${e(m.plan)}' group='${e(m.group)}' project='${e(m.project)}' spec-hash='${e(m.specHash)}' image='${e(m.image)}' store='${e(m.store)}'${m.state ? ` state='${e(m.state)}'` : ''}/>`,
    '  </metadata>',
    `  <memory unit='MiB'>${Math.max(1, Math.ceil(i.memMiB))}</memory>`,
    `  <vcpu>${Math.max(1, Math.ceil(i.vcpus))}</vcpu>`,
    '  <os>',
    "    <type arch='x86_64'>hvm</type>",
    ...os,
    '  </os>',
    '  <features><acpi/></features>',
    '  <on_poweroff>destroy</on_poweroff>',
    '  <on_reboot>restart</on_reboot>',
    '  <on_crash>preserve</on_crash>',
    '  <devices>',
    "    <disk type='file' device='disk'>",
    "      <driver name='qemu' type='qcow2'/>",
    `      <source file='${e(i.disk)}'/>`,
    "      <target dev='vda' bus='virtio'/>",
    '    </disk>',
    ...volumes,
    ...nic,
    "    <serial type='pty'>",
    `      <log file='${e(i.consoleLog)}' append='on'/>`,
    "      <target port='0'/>",
    '    </serial>',
    "    <console type='pty'><target type='serial' port='0'/></console>",
    "    <panic model='isa'/>",
    '  </devices>',
    '</domain>',
    '',
  ].join('\n');
}

/** parseVmMetadata reads the factory metadata out of a domain's XML; undefined when it has none. */
export function parseVmMetadata(xml: string): VmMetadata | undefined {
  const el = xml.match(/<(\w+):vm\b[^>]*xmlns:\1=["']urn:factory:vm:1["'][^>]*\/?>/)?.[0];
  if (!el) return undefined;
  const attr = (name: string): string | undefined => {
    const m = el.match(new RegExp(`\\s${name}=(?:'([^']*)'|"([^"]*)")`));
    return m ? xmlUnescape(m[1] ?? m[2] ?? '') : undefined;
  };
  const task = attr('task');
  const specHash = attr('spec-hash');
  if (!task || specHash === undefined) return undefined;
  return {
    task,
    plan: attr('plan') ?? '',
    group: attr('group') ?? '',
    project: attr('project') ?? '',
    specHash,
    image: attr('image') ?? '',
    store: attr('store') ?? '',
    ...(attr('state') ? { state: attr('state') } : {}),
  };
}

/** networkXml builds an isolated libvirt network: its own bridge, no `<forward>`, no IP — VMs on it reach only each other. */
export function networkXml(name: string, bridge: string): string {
  return `<network>\n  <name>${xmlEscape(name)}</name>\n  <bridge name='${xmlEscape(bridge)}' stp='off' delay='0'/>\n</network>\n`;
}

/** interfaceNetworks lists the networks a domain's NICs join, from its XML. */
export function interfaceNetworks(xml: string): string[] {
  const out: string[] = [];
  for (const m of xml.matchAll(/<interface\b[^>]*type=["']network["'][\s\S]*?<\/interface>/g)) {
    const net = m[0].match(/<source\b[^>]*network=(?:'([^']*)'|"([^"]*)")/);
    if (net) out.push(xmlUnescape(net[1] ?? net[2] ?? ''));
  }
  return out;
}

/** diskSources lists the files of a domain's disks, in order, from its XML. */
export function diskSources(xml: string): string[] {
  const out: string[] = [];
  for (const m of xml.matchAll(/<disk\b[\s\S]*?<\/disk>/g)) {
    const src = m[0].match(/<source\b[^>]*file=(?:'([^']*)'|"([^"]*)")/);
    if (src) out.push(xmlUnescape(src[1] ?? src[2] ?? ''));
  }
  return out;
}
