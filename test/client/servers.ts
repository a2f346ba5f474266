/**
 * Loopback servers for the client tests: a self-signed certificate made by openssl in a temp
 * folder, HTTPS servers on 127.0.0.1 port 0, plain HTTP servers on unix sockets, and a port that
 * refuses connections.
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/** TestCert is a key and self-signed certificate for 127.0.0.1 with its SHA-256 fingerprint. */
export interface TestCert {
  dir: string;
  keyFile: string;
  certFile: string;
  key: string;
  cert: string;
  fingerprint: string;
}

/** makeCert runs openssl for a P-256 self-signed certificate with IP SAN 127.0.0.1. */
export function makeCert(dir = fs.mkdtempSync(path.join(os.tmpdir(), 'factory-cert-'))): TestCert {
  const keyFile = path.join(dir, 'key.pem');
  const certFile = path.join(dir, 'cert.pem');
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', keyFile, '-out', certFile],
    { stdio: 'ignore' },
  );
  const cert = fs.readFileSync(certFile, 'utf8');
  return { dir, keyFile, certFile, key: fs.readFileSync(keyFile, 'utf8'), cert, fingerprint: new X509Certificate(cert).fingerprint256 };
}

/** Running is a started server: its URL and a close that ends open connections too. */
export interface Running {
  url: string;
  server: net.Server;
  close: () => Promise<void>;
}

function track(server: net.Server): () => Promise<void> {
  const sockets = new Set<net.Socket>();
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('secureConnection', (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  return () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
}

/** httpsServer listens on 127.0.0.1:0 with cert. */
export async function httpsServer(cert: TestCert, handler: http.RequestListener): Promise<Running> {
  const server = https.createServer({ key: cert.key, cert: cert.cert }, handler);
  const close = track(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return { url: `https://127.0.0.1:${port}`, server, close };
}

/** unixServer listens with plain HTTP on a socket in dir. */
export async function unixServer(dir: string, handler: http.RequestListener, name = 'control.sock'): Promise<Running> {
  const server = http.createServer(handler);
  const close = track(server);
  const sock = path.join(dir, name);
  await new Promise<void>((r) => server.listen(sock, r));
  return { url: `unix:${sock}`, server, close };
}

/** silentServer accepts TCP connections on 127.0.0.1 and never sends a byte. */
export async function silentServer(): Promise<Running> {
  const server = net.createServer(() => undefined);
  const close = track(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return { url: `https://127.0.0.1:${port}`, server, close };
}

/** closedPort is a loopback port nothing listens on (bound, then closed). */
export async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}
