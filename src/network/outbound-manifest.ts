/**
 * The outbound whitelist of a computation manifest (Golem's payload manifest schema:
 * `compManifest.net.inet.out.urls` and `.protocols`, or `.unrestricted.urls: true`), and the
 * (protocol, IP, port) tuples a provider allows from it: every URL's host resolved once, when
 * the VM starts, its port the URL's or its scheme's (http, ws 80; https, wss 443). Reference §9.
 * A file may hold the manifest as JSON or base64 of JSON (as a demand carries it).
 */
import { lookup } from 'node:dns/promises';
import { readFile } from 'node:fs/promises';
import { GvmiTestError } from '../errors.js';

const DEFAULT_PORTS: Record<string, number> = { http: 80, https: 443, ws: 80, wss: 443 };

export interface OutboundWhitelist {
  /** Any destination (`unrestricted.urls: true`). */
  unrestricted: boolean;
  urls: string[];
  protocols: string[];
}

export interface AllowedTuple {
  protocol: 'tcp';
  ip: string;
  port: number;
  /** The manifest URL it comes from. */
  url: string;
}

function bad(message: string, hint?: string): GvmiTestError {
  return new GvmiTestError('deploy.bad-manifest', message, hint ? { hint } : {});
}

function asObject(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? value as Record<string, unknown> : undefined;
}

/** The whitelist of a manifest's text (JSON, or base64 of JSON). */
export function parseManifest(text: string, source = 'the manifest'): OutboundWhitelist {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    try {
      json = JSON.parse(Buffer.from(text.trim(), 'base64').toString('utf8'));
    } catch {
      throw bad(`${source} is neither JSON nor base64 of JSON`);
    }
  }
  const out = asObject(asObject(asObject(asObject(asObject(json)?.['compManifest'])?.['net'])?.['inet'])?.['out']);
  if (!out) {
    throw bad(`${source} asks for no outbound access (no compManifest.net.inet.out)`, 'a provider gives such a VM no eth1; add compManifest.net.inet.out.urls');
  }
  const unrestricted = asObject(out['unrestricted'])?.['urls'] === true;
  const urls = out['urls'] ?? [];
  const protocols = out['protocols'] ?? ['http', 'https'];
  if (!Array.isArray(urls) || !urls.every((u) => typeof u === 'string')) throw bad(`${source}: compManifest.net.inet.out.urls is not a list of URLs`);
  if (!Array.isArray(protocols) || !protocols.every((p) => typeof p === 'string')) throw bad(`${source}: compManifest.net.inet.out.protocols is not a list of names`);
  return { unrestricted, urls: urls as string[], protocols: (protocols as string[]).map((p) => p.toLowerCase()) };
}

export async function readManifest(path: string): Promise<OutboundWhitelist> {
  const text = await readFile(path, 'utf8').catch((error: NodeJS.ErrnoException) => {
    throw bad(`cannot read the manifest ${path}: ${error.code ?? error.message}`);
  });
  return parseManifest(text, path);
}

/** One URL's (protocol, port) and host, refusing schemes the manifest does not list. */
export function urlTarget(url: string, protocols: readonly string[]): { host: string; port: number } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw bad(`${JSON.stringify(url)} in the manifest is not a URL`);
  }
  const scheme = parsed.protocol.replace(/:$/, '');
  if (!protocols.includes(scheme)) throw bad(`${url}: its scheme ${scheme} is not in the manifest's protocols (${protocols.join(', ')})`);
  const port = parsed.port ? Number(parsed.port) : DEFAULT_PORTS[scheme];
  if (port === undefined) throw bad(`${url}: no port, and ${scheme} has no default port`);
  return { host: parsed.hostname.replace(/^\[|\]$/g, ''), port };
}

/** Every URL resolved once (IPv4 addresses: the provider's outbound interface is IPv4). */
export async function resolveWhitelist(whitelist: OutboundWhitelist): Promise<AllowedTuple[]> {
  const tuples: AllowedTuple[] = [];
  for (const url of whitelist.urls) {
    const { host, port } = urlTarget(url, whitelist.protocols);
    const addresses = await lookup(host, { all: true, family: 4 }).catch((error: NodeJS.ErrnoException) => {
      throw bad(`${url}: ${host} does not resolve on this host (${error.code ?? error.message})`, 'a provider resolves each URL once at start; without an address the URL allows nothing');
    });
    for (const { address } of addresses) tuples.push({ protocol: 'tcp', ip: address, port, url });
  }
  return tuples;
}
