/**
 * Outbound connections a manifest's whitelist refused, as findings: on a provider such a refusal
 * shows only in the provider's log, and the requestor sees a job that cannot connect. Each says
 * what the manifest would need.
 */
import type { Finding } from './finding.js';

/** What the outbound filter reports (src/network/outbound-filter.ts `Refusal`), as read here. */
export interface RefusedFlow {
  protocol: 'tcp' | 'udp' | 'other';
  ip: string;
  port: number;
  neededUrl?: string;
  message: string;
}

export function outboundRefusedFindings(refusals: readonly RefusedFlow[]): Finding[] {
  return refusals.map((r) => ({
    code: 'outbound-refused' as const,
    severity: 'error' as const,
    message: r.message,
    fix: r.neededUrl !== undefined
      ? `add ${r.neededUrl} to compManifest.net.inet.out.urls (its scheme in .protocols), or connect only to URLs the manifest lists`
      : 'a whitelist allows TCP to its URLs only (and DNS to the resolvers in /etc/resolv.conf): use TCP to a listed URL, or ask for unrestricted outbound access (compManifest.net.inet.out.unrestricted.urls: true)',
    details: { protocol: r.protocol, ip: r.ip, port: r.port, ...(r.neededUrl !== undefined ? { neededUrl: r.neededUrl } : {}) },
  }));
}
