// The httpRequest element's I/O: a request to a URL a flow author (or a template variable) chose,
// made from inside the worker's network. By default it may reach only public unicast addresses:
// the check runs on the resolved addresses, the connection goes to a checked address (a second
// DNS answer cannot swap it), every redirect hop is checked again, and the body is counted while
// it streams so a huge or endless response cannot exhaust the worker's memory.
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import ipaddr from 'ipaddr.js';
import { z } from 'zod';

/** The URL (or one of its redirects) points where flows may not go. */
export class BlockedAddressError extends Error {
  override readonly name = 'BlockedAddressError';
}
/** The response body is larger than the limit. */
export class ResponseTooLargeError extends Error {
  override readonly name = 'ResponseTooLargeError';
}
export class TooManyRedirectsError extends Error {
  override readonly name = 'TooManyRedirectsError';
}
/** Not an http(s) URL, or a redirect without a usable Location. */
export class InvalidUrlError extends Error {
  override readonly name = 'InvalidUrlError';
}
/** The server closed the connection in the middle of the response body. */
export class ConnectionClosedError extends Error {
  override readonly name = 'ConnectionClosedError';
}

/** Errors that no retry can fix: the activity fails them at once, without retrying. */
export function isPermanentHttpError(
  err: unknown,
): err is BlockedAddressError | ResponseTooLargeError | TooManyRedirectsError | InvalidUrlError {
  return (
    err instanceof BlockedAddressError ||
    err instanceof ResponseTooLargeError ||
    err instanceof TooManyRedirectsError ||
    err instanceof InvalidUrlError
  );
}

/**
 * Failures of one exchange that another attempt may not have: the timeout or a cancellation
 * (AbortError, TimeoutError), the socket or DNS (ECONNREFUSED, ECONNRESET, ENOTFOUND …), TLS
 * (ERR_TLS_…, CERT_…), a response the HTTP parser refused (HPE_…), a body cut short.
 */
export function isTransientHttpError(err: unknown): err is Error {
  if (!(err instanceof Error)) return false;
  if (err instanceof ConnectionClosedError || err.name === 'AbortError' || err.name === 'TimeoutError') return true;
  const code = (err as NodeJS.ErrnoException).code;
  return (
    typeof code === 'string' &&
    /^(E[A-Z]+|ERR_TLS_\w+|ERR_SSL_\w+|CERT_\w+|UNABLE_TO_\w+|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|HPE_\w+)$/.test(
      code,
    )
  );
}

type Address = ipaddr.IPv4 | ipaddr.IPv6;

export interface HttpPolicy {
  /** Host names (exact, or `*.suffix`) that may resolve to otherwise blocked addresses: internal CRMs. */
  allowHosts: string[];
  /** Address ranges that are reachable although not public (e.g. an internal 10.20.0.0/16). */
  allowRanges: Array<[Address, number]>;
  maxRedirects: number;
  maxResponseBytes: number;
  /** Name resolution; the system resolver unless a test injects one. */
  resolve: (host: string) => Promise<LookupAddress[]>;
}

/**
 * Cloud instance metadata services hand out the worker's credentials. They stay blocked even when
 * the allowlist covers their range: no flow has a reason to read them.
 */
const METADATA_HOSTS = new Set([
  'metadata.google.internal',
  'metadata.goog',
  'metadata',
  'instance-data',
  'instance-data.ec2.internal',
]);
const METADATA_ADDRESSES: Address[] = [
  '169.254.169.254', // AWS, GCP, Azure, OpenStack, DigitalOcean
  'fd00:ec2::254', // AWS over IPv6
  '169.254.170.2', // AWS ECS task credentials
  '100.100.100.200', // Alibaba Cloud
  '168.63.129.16', // Azure wire server (a public address, so the range check alone misses it)
].map((a) => ipaddr.parse(a));

/** Redirect limit: enough for http→https plus a moved path, not enough to loop. */
export const DEFAULT_MAX_REDIRECTS = 5;
/** Response bodies feed flow variables: 256 KB is far beyond any useful lookup answer. */
export const DEFAULT_MAX_RESPONSE_BYTES = 256 * 1024;

function normalizeHost(host: string): string {
  // A trailing dot names the same host ("metadata.google.internal." is the metadata server).
  return host.toLowerCase().replace(/\.$/, '');
}

const allowEntry = z
  .string()
  .trim()
  .min(1)
  .transform((entry, ctx): { host: string } | { range: [Address, number] } | typeof z.NEVER => {
    if (ipaddr.isValidCIDR(entry)) return { range: ipaddr.parseCIDR(entry) };
    if (isIP(entry) !== 0) {
      const a = ipaddr.parse(entry);
      return { range: [a, a.kind() === 'ipv4' ? 32 : 128] };
    }
    if (/^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*\.?$/i.test(entry))
      return { host: normalizeHost(entry) };
    ctx.addIssue({
      code: 'custom',
      message: `"${entry}" is neither a host name (or *.domain), an IP address nor a CIDR range`,
    });
    return z.NEVER;
  });

/** `DIALFLOW_HTTP_ALLOW`: comma-separated host names, `*.domain` suffixes, IP addresses and CIDR ranges. */
export const httpAllowSchema = z
  .string()
  .default('')
  .transform((s) => s.split(',').filter((e) => e.trim() !== ''))
  .pipe(z.array(allowEntry));

export function parseHttpAllow(value: string | undefined): Pick<HttpPolicy, 'allowHosts' | 'allowRanges'> {
  const parsed = httpAllowSchema.safeParse(value);
  if (!parsed.success) throw new Error(`DIALFLOW_HTTP_ALLOW:\n${z.prettifyError(parsed.error)}`);
  const allowHosts: string[] = [];
  const allowRanges: Array<[Address, number]> = [];
  for (const e of parsed.data) {
    if ('host' in e) allowHosts.push(e.host);
    else allowRanges.push(e.range);
  }
  return { allowHosts, allowRanges };
}

const systemResolve = (host: string): Promise<LookupAddress[]> =>
  new Promise((resolve, reject) =>
    dnsLookup(host, { all: true, verbatim: true }, (err, addresses) => (err ? reject(err) : resolve(addresses))),
  );

export function httpPolicy(o: Partial<HttpPolicy> & { allow?: string } = {}): HttpPolicy {
  const allow = parseHttpAllow(o.allow);
  return {
    allowHosts: o.allowHosts ?? allow.allowHosts,
    allowRanges: o.allowRanges ?? allow.allowRanges,
    maxRedirects: o.maxRedirects ?? DEFAULT_MAX_REDIRECTS,
    maxResponseBytes: o.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES,
    resolve: o.resolve ?? systemResolve,
  };
}

/** The policy of this process, from `DIALFLOW_HTTP_ALLOW`. */
export function httpPolicyFromEnv(env: NodeJS.ProcessEnv = process.env): HttpPolicy {
  return httpPolicy({ ...(env.DIALFLOW_HTTP_ALLOW !== undefined ? { allow: env.DIALFLOW_HTTP_ALLOW } : {}) });
}

function hostAllowed(host: string, policy: HttpPolicy): boolean {
  return policy.allowHosts.some((h) => (h.startsWith('*.') ? host.endsWith(h.slice(1)) : host === h));
}

function inRange(a: Address, [net, bits]: [Address, number]): boolean {
  return a.kind() === net.kind() && a.match(net, bits);
}

/**
 * Why `address` may not be reached, or undefined when it may. IPv4-mapped IPv6 addresses
 * (`::ffff:127.0.0.1`) are judged as the IPv4 address they carry.
 */
export function blockedReason(address: string, policy: HttpPolicy, hostAllowlisted = false): string | undefined {
  if (!ipaddr.isValid(address)) return `${address} is not an IP address`;
  const raw = ipaddr.parse(address);
  const a =
    raw.kind() === 'ipv6' && (raw as ipaddr.IPv6).isIPv4MappedAddress() ? (raw as ipaddr.IPv6).toIPv4Address() : raw;
  if (METADATA_ADDRESSES.some((m) => m.kind() === a.kind() && m.toNormalizedString() === a.toNormalizedString()))
    return `${address} is a cloud metadata address`;
  if (hostAllowlisted || policy.allowRanges.some((r) => inRange(a, r) || inRange(raw, r))) return undefined;
  // Only public unicast is reachable by default: loopback, private, link-local, CGNAT, unique
  // local, multicast, unspecified, reserved and the IPv6 transition ranges that embed an IPv4
  // address (6to4, Teredo, NAT64) all have a range name other than `unicast`.
  const range = a.range();
  return range === 'unicast' ? undefined : `${address} is a ${range} address`;
}

/**
 * Resolve the URL's host and check every address it has (one bad answer among good ones is
 * enough to refuse: the connection could pick either). Returns the addresses to connect to.
 */
export async function checkedAddresses(url: URL, policy: HttpPolicy): Promise<LookupAddress[]> {
  // The WHATWG parser has already turned `2130706433`, `0x7f.1` and `0177.0.0.1` into 127.0.0.1.
  const host = normalizeHost(url.hostname.replace(/^\[|\]$/g, ''));
  if (METADATA_HOSTS.has(host)) throw new BlockedAddressError(`${host} is a cloud metadata host`);
  const family = isIP(host);
  const allowlisted = family === 0 && hostAllowed(host, policy);
  const addresses = family !== 0 ? [{ address: host, family }] : await policy.resolve(host);
  if (addresses.length === 0) throw new BlockedAddressError(`${host} has no address`);
  for (const { address } of addresses) {
    const reason = blockedReason(address, policy, allowlisted);
    if (reason)
      throw new BlockedAddressError(
        family !== 0
          ? `${reason}; not allowed for httpRequest`
          : `${host} resolves to ${reason}; not allowed for httpRequest`,
      );
  }
  return addresses;
}

/** A lookup that answers only with addresses checked beforehand: the socket cannot go elsewhere. */
function pinnedLookup(addresses: LookupAddress[]): LookupFunction {
  return (_hostname, options, callback) => {
    const first = addresses[0] as LookupAddress;
    // With autoSelectFamily (the default since Node 20) the socket asks for every address.
    if (options.all) (callback as unknown as (err: null, all: LookupAddress[]) => void)(null, addresses);
    else callback(null, first.address, first.family);
  };
}

export interface HttpCall {
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: string;
  signal: AbortSignal;
}

export interface HttpAnswer {
  status: number;
  headers: Record<string, string>;
  /** The body as text (UTF-8), at most `maxResponseBytes` long. */
  text: string;
}

// Dedicated pools: a kept-alive socket in them was opened to a checked address, never by other code.
const agents = { 'http:': new http.Agent({ keepAlive: true }), 'https:': new https.Agent({ keepAlive: true }) };

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

function parseUrl(s: string, base?: URL): URL {
  // Not quoted in the error: the URL is rendered from the flow and may carry what a caller typed.
  if (!URL.canParse(s, base?.href)) throw new InvalidUrlError(`not a valid URL (${s.length} characters)`);
  const url = new URL(s, base);
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new InvalidUrlError(`${url.protocol} URLs are not allowed; http or https only`);
  return url;
}

/**
 * One HTTP exchange under the policy: redirects are followed by hand (each hop checked, at most
 * `maxRedirects`), and the body is read up to `maxResponseBytes`, the connection cut beyond it.
 */
export async function guardedRequest(call: HttpCall, policy: HttpPolicy): Promise<HttpAnswer> {
  let url = parseUrl(call.url);
  let { method, body } = call;
  let headers = { ...call.headers };
  for (let hop = 0; ; hop++) {
    const addresses = await checkedAddresses(url, policy);
    const res = await send(url, method, headers, body, addresses, call.signal);
    const location = res.headers.location;
    if (!REDIRECTS.has(res.statusCode ?? 0) || location === undefined) return readAnswer(res, policy.maxResponseBytes);
    res.destroy();
    if (hop >= policy.maxRedirects)
      throw new TooManyRedirectsError(`more than ${policy.maxRedirects} redirects from ${new URL(call.url).host}`);
    const next = parseUrl(location, url);
    // As browsers do: 303, and 301/302 after a POST, continue as a GET without the body.
    if (res.statusCode === 303 || ((res.statusCode === 301 || res.statusCode === 302) && method === 'POST')) {
      method = method === 'HEAD' ? 'HEAD' : 'GET';
      body = undefined;
      headers = withoutHeaders(headers, ['content-type', 'content-length']);
    }
    // Credentials meant for one origin are not handed to another.
    if (next.origin !== url.origin)
      headers = withoutHeaders(headers, ['authorization', 'cookie', 'proxy-authorization']);
    url = next;
  }
}

function withoutHeaders(headers: Record<string, string>, names: string[]): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).filter(([k]) => !names.includes(k.toLowerCase())));
}

function send(
  url: URL,
  method: string,
  headers: Record<string, string>,
  body: string | undefined,
  addresses: LookupAddress[],
  signal: AbortSignal,
): Promise<http.IncomingMessage> {
  const transport = url.protocol === 'https:' ? https : http;
  // A compressed body would be inflated past the size limit after it was counted: ask for none.
  const sent = {
    ...withoutHeaders(headers, ['accept-encoding', 'host', 'content-length']),
    'accept-encoding': 'identity',
    ...(body !== undefined ? { 'content-length': String(Buffer.byteLength(body)) } : {}),
  };
  return new Promise((resolve, reject) => {
    const req = transport.request(
      {
        protocol: url.protocol,
        hostname: url.hostname.replace(/^\[|\]$/g, ''),
        port: url.port,
        path: `${url.pathname}${url.search}`,
        method,
        headers: sent,
        agent: agents[url.protocol as 'http:' | 'https:'],
        lookup: pinnedLookup(addresses),
        signal,
      },
      resolve,
    );
    req.on('error', reject);
    req.end(body);
  });
}

function readAnswer(res: http.IncomingMessage, limit: number): Promise<HttpAnswer> {
  const headers = Object.fromEntries(
    Object.entries(res.headers).flatMap(([k, v]) =>
      v === undefined ? [] : [[k, Array.isArray(v) ? v.join(', ') : v]],
    ),
  );
  const status = res.statusCode ?? 0;
  const declared = Number(res.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    res.destroy();
    return Promise.reject(new ResponseTooLargeError(`the response declares ${declared} bytes; the limit is ${limit}`));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        // Cut the connection: reading on to the end of an endless body would never finish.
        res.destroy(new ResponseTooLargeError(`the response is larger than the limit of ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    res.on('end', () => resolve({ status, headers, text: Buffer.concat(chunks).toString('utf8') }));
    res.on('error', reject);
    // A connection closed early without an error (the server gave up mid-body) is not a complete answer.
    res.on('close', () => {
      if (!res.complete) reject(new ConnectionClosedError('the connection closed before the end of the response'));
    });
  });
}
