/**
 * The egress policy of outbound requests (http steps, connectors, streams): the address a
 * request actually connects to is checked at connect time, inside the undici Agent, so a
 * host name that resolves (or re-resolves, DNS rebinding) to a refused address is caught,
 * and so is an IP literal (which never goes through DNS).
 *
 * Refused by default: unspecified (0.0.0.0/8, ::), link-local (169.254.0.0/16, fe80::/10,
 * the cloud metadata address 169.254.169.254 among them), other cloud metadata addresses
 * (100.100.100.200, fd00:ec2::254), multicast (224.0.0.0/4, ff00::/8) and broadcast.
 * Loopback (127.0.0.0/8, ::1) is allowed when the policy says so (`alloy dev` and `alloy
 * run`: the customer's local server) and refused otherwise (`alloy serve`). Addresses or
 * CIDR ranges in `allow` (the config's `egress.allow`) are allowed whatever the rest says.
 */
import dns from 'node:dns';
import { BlockList, isIP } from 'node:net';
import { Agent, buildConnector } from 'undici';
import { StepError } from '../errors.js';

export interface EgressPolicy {
  /** Allow loopback addresses (127.0.0.0/8, ::1). */
  loopback: boolean;
  /** IP addresses or CIDR ranges allowed despite the refusals (`egress.allow`). */
  allow?: readonly string[];
  /** Name resolution; default dns.lookup. Tests pass their own. */
  lookup?: typeof dns.lookup;
}

type Family = 'ipv4' | 'ipv6';

const REFUSED: [string, number, Family, string][] = [
  ['0.0.0.0', 8, 'ipv4', 'unspecified'],
  ['169.254.0.0', 16, 'ipv4', 'link-local (cloud metadata)'],
  ['100.100.100.200', 32, 'ipv4', 'cloud metadata'],
  ['224.0.0.0', 4, 'ipv4', 'multicast'],
  ['255.255.255.255', 32, 'ipv4', 'broadcast'],
  ['::', 128, 'ipv6', 'unspecified'],
  ['fe80::', 10, 'ipv6', 'link-local'],
  ['fd00:ec2::254', 128, 'ipv6', 'cloud metadata'],
  ['ff00::', 8, 'ipv6', 'multicast'],
];
const LOOPBACK: [string, number, Family][] = [
  ['127.0.0.0', 8, 'ipv4'],
  ['::1', 128, 'ipv6'],
];

function list(entries: [string, number, Family, ...unknown[]][]): BlockList {
  const b = new BlockList();
  for (const [net, prefix, family] of entries) b.addSubnet(net, prefix, family);
  return b;
}
const refused = REFUSED.map((entry) => ({ list: list([entry]), family: entry[2], why: entry[3] }));
const loopbackList = list(LOOPBACK);

/** The address as checked: brackets dropped, `::ffff:169.254.169.254` read as 169.254.169.254. */
function normalize(address: string): { address: string; family: Family } {
  const a = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  // IPv4-mapped (::ffff:a.b.c.d, which URLs write as ::ffff:a9fe:a9fe) and NAT64 (64:ff9b::/96) addresses reach the IPv4 address.
  const dotted = /^(?:::ffff:|64:ff9b::)(\d+\.\d+\.\d+\.\d+)$/i.exec(a);
  if (dotted) return { address: dotted[1], family: 'ipv4' };
  const hex = /^(?:::ffff:|64:ff9b::)([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(a);
  if (hex) {
    const hi = parseInt(hex[1], 16);
    const lo = parseInt(hex[2], 16);
    return { address: `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`, family: 'ipv4' };
  }
  return { address: a, family: isIP(a) === 6 ? 'ipv6' : 'ipv4' };
}

/** Parses `egress.allow` entries (IP or CIDR); throws E_CONFIG naming a bad one. */
export function allowList(entries: readonly string[] = []): BlockList {
  const b = new BlockList();
  for (const entry of entries) {
    const [ip, prefix, extra] = entry.trim().split('/');
    const { address, family } = normalize(ip);
    const bits = prefix === undefined ? (family === 'ipv4' ? 32 : 128) : Number(prefix);
    if (extra !== undefined || !isIP(address) || !Number.isInteger(bits) || bits < 0 || bits > (family === 'ipv4' ? 32 : 128)) {
      throw new StepError(`egress.allow: "${entry}" is not an IP address or CIDR range`, {
        code: 'E_CONFIG',
        retryable: false,
        hint: 'List addresses like 127.0.0.1, ::1 or 10.0.0.0/8 under egress.allow in alloy.config.yaml.',
      });
    }
    b.addSubnet(address, bits, family);
  }
  return b;
}

/** Why `address` is refused under `policy`, or undefined when it is allowed. */
export function egressRefusal(address: string, policy: Pick<EgressPolicy, 'loopback'>, allow: BlockList): string | undefined {
  const { address: a, family } = normalize(address);
  if (!isIP(a)) return 'not an IP address';
  if (allow.check(a, family)) return undefined;
  const hit = refused.find((r) => r.family === family && r.list.check(a, family));
  if (hit) return hit.why;
  if (!policy.loopback && loopbackList.check(a, family)) return 'loopback';
  return undefined;
}

export class EgressDeniedError extends StepError {
  constructor(host: string, address: string, why: string) {
    super(`connecting to ${host}${host === address ? '' : ` (${address})`} is refused by the egress policy: ${why} address`, {
      code: 'E_EGRESS_DENIED',
      retryable: false,
      hint:
        why === 'loopback'
          ? 'Loopback is refused by `alloy serve`; list the address under egress.allow in alloy.config.yaml if the integration must reach it.'
          : 'Requests may not reach link-local, cloud metadata, unspecified or multicast addresses; list the address under egress.allow in alloy.config.yaml if it is really meant.',
      details: { host, address, reason: why },
    });
  }
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | dns.LookupAddress[], family?: number) => void;

/**
 * An undici Agent whose connections are checked against `policy`: IP literals before
 * connecting, host names on every resolution (the addresses then connected to).
 */
export function egressAgent(policy: EgressPolicy, agentOptions: Omit<Agent.Options, 'connect'> = {}): Agent {
  const allow = allowList(policy.allow);
  const resolve = policy.lookup ?? dns.lookup;
  const lookup = (hostname: string, options: dns.LookupOptions, callback: LookupCallback) => {
    resolve(hostname, options, ((err: NodeJS.ErrnoException | null, address: string | dns.LookupAddress[], family?: number) => {
      if (err) return callback(err, address, family);
      const addresses = Array.isArray(address) ? address.map((a) => a.address) : [address];
      for (const a of addresses) {
        const why = egressRefusal(a, policy, allow);
        if (why) return callback(new EgressDeniedError(hostname, a, why) as unknown as NodeJS.ErrnoException, address, family);
      }
      callback(null, address, family);
    }) as never);
  };
  const connector = buildConnector({ lookup } as buildConnector.BuildOptions);
  return new Agent({
    ...agentOptions,
    connect: (options, callback) => {
      const host = options.hostname;
      const literal = normalize(host).address;
      if (isIP(literal)) {
        const why = egressRefusal(literal, policy, allow);
        if (why) return callback(new EgressDeniedError(host, literal, why), null);
      }
      return connector(options, callback);
    },
  });
}
