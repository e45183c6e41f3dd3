// The httpRequest address policy: what a flow may reach, judged after name resolution.
import { describe, expect, it } from 'vitest';
import type { LookupAddress } from 'node:dns';
import {
  BlockedAddressError,
  blockedReason,
  checkedAddresses,
  httpPolicy,
  parseHttpAllow,
  type HttpPolicy,
} from '../../src/activities/http.js';

/** A resolver from a fixed table: tests never depend on the machine's DNS. */
function table(answers: Record<string, string[]>): HttpPolicy['resolve'] {
  return async (host) =>
    (answers[host] ?? []).map((address): LookupAddress => ({ address, family: address.includes(':') ? 6 : 4 }));
}
const deny = httpPolicy({ resolve: table({}) });

describe('addresses blocked by default', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.255.0.9', 'loopback'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['100.64.0.1', 'carrierGradeNat'],
    ['169.254.1.1', 'linkLocal'],
    ['0.0.0.0', 'unspecified'],
    ['224.0.0.1', 'multicast'],
    ['255.255.255.255', 'broadcast'],
    ['240.0.0.1', 'reserved'],
    ['::1', 'loopback'],
    ['::', 'unspecified'],
    ['fe80::1', 'linkLocal'],
    ['fc00::1', 'uniqueLocal'],
    ['fd12:3456::1', 'uniqueLocal'],
    ['ff02::1', 'multicast'],
    // IPv4-mapped IPv6 is judged as the IPv4 address it carries.
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:10.0.0.1', 'private'],
    ['::ffff:7f00:1', 'loopback'],
    // Transition ranges that embed an IPv4 address are not public unicast either.
    ['64:ff9b::7f00:1', 'rfc6052'],
    ['2002:7f00:1::', '6to4'],
  ])('%s is a %s address', (address, range) => {
    expect(blockedReason(address, deny)).toBe(`${address} is a ${range} address`);
  });

  it.each(['169.254.169.254', 'fd00:ec2::254', '::ffff:169.254.169.254', '100.100.100.200', '168.63.129.16'])(
    '%s is a metadata address',
    (address) => {
      expect(blockedReason(address, deny)).toBe(`${address} is a cloud metadata address`);
    },
  );

  it('public unicast addresses are reachable', () => {
    for (const a of ['93.184.215.14', '8.8.8.8', '172.32.0.1', '2606:4700::1111', '::ffff:8.8.8.8'])
      expect(blockedReason(a, deny), a).toBeUndefined();
  });
});

describe('URLs: the host as the WHATWG parser reads it, then every resolved address', () => {
  const check = (url: string, policy = deny) => checkedAddresses(new URL(url), policy);

  it.each([
    'http://127.0.0.1/',
    'http://2130706433/', // decimal
    'http://0177.0.0.1/', // octal
    'http://0x7f.1/', // hex, short form
    'http://127.1/',
    'http://[::1]/',
    'http://[::ffff:127.0.0.1]/',
    'http://[0:0:0:0:0:ffff:7f00:1]/',
    'http://0/',
    'http://169.254.169.254/latest/meta-data/',
    'http://[fd00:ec2::254]/',
    'http://metadata.google.internal/computeMetadata/v1/',
    'http://METADATA.google.internal./',
  ])('%s is refused', async (url) => {
    await expect(check(url)).rejects.toBeInstanceOf(BlockedAddressError);
  });

  it('refuses a name that resolves to a private address, and one with any private address among public ones', async () => {
    const policy = httpPolicy({
      resolve: table({
        'crm.example.com': ['10.0.0.5'],
        'mixed.example.com': ['93.184.215.14', '127.0.0.1'],
        'v6.example.com': ['::ffff:192.168.0.1'],
        'public.example.com': ['93.184.215.14', '2606:4700::1111'],
      }),
    });
    await expect(check('https://crm.example.com/x', policy)).rejects.toThrow(
      'crm.example.com resolves to 10.0.0.5 is a private address',
    );
    await expect(check('https://mixed.example.com/x', policy)).rejects.toThrow('127.0.0.1 is a loopback address');
    await expect(check('https://v6.example.com/x', policy)).rejects.toThrow('private');
    await expect(check('https://unknown.example.com/x', policy)).rejects.toThrow('has no address');
    expect(await check('https://public.example.com/x', policy)).toEqual([
      { address: '93.184.215.14', family: 4 },
      { address: '2606:4700::1111', family: 6 },
    ]);
  });

  it('the allowlist opens hosts and ranges for internal services, never the metadata service', async () => {
    const resolve = table({
      'crm.corp.example': ['10.0.0.5'],
      'api.corp.example': ['10.9.0.1'],
      'db.corp.example': ['192.168.3.3'],
      'sneaky.corp.example': ['169.254.169.254'],
    });
    const policy = httpPolicy({ allow: 'crm.corp.example, 192.168.3.0/24, 127.0.0.1, fd00::/8', resolve });
    expect(await check('http://crm.corp.example/', policy)).toEqual([{ address: '10.0.0.5', family: 4 }]);
    expect(await check('http://db.corp.example/', policy)).toEqual([{ address: '192.168.3.3', family: 4 }]);
    expect(await check('http://127.0.0.1:8080/', policy)).toHaveLength(1);
    // The mapped form of an allowed IPv4 address is the same address.
    expect(await check('http://[::ffff:127.0.0.1]/', policy)).toHaveLength(1);
    await expect(check('http://127.0.0.2/', policy)).rejects.toBeInstanceOf(BlockedAddressError);
    await expect(check('http://api.corp.example/', policy)).rejects.toBeInstanceOf(BlockedAddressError);
    // fd00::/8 is allowed, yet the AWS IPv6 metadata address inside it is not.
    await expect(check('http://[fd00:ec2::254]/', policy)).rejects.toThrow('metadata');
    expect(await check('http://[fd00::12]/', policy)).toHaveLength(1);

    const wildcard = httpPolicy({ allow: '*.corp.example,169.254.0.0/16', resolve });
    expect(await check('http://api.corp.example/', wildcard)).toHaveLength(1);
    await expect(check('http://sneaky.corp.example/', wildcard)).rejects.toThrow('cloud metadata address');
    await expect(check('http://169.254.169.254/', wildcard)).rejects.toThrow('cloud metadata address');
    await expect(
      check('http://metadata.google.internal/', httpPolicy({ allow: 'metadata.google.internal', resolve })),
    ).rejects.toThrow('metadata host');
  });

  it('DIALFLOW_HTTP_ALLOW: hosts, *.domains, addresses and CIDRs; anything else is named', () => {
    const p = parseHttpAllow(' crm.corp.example ,*.svc.cluster.local,10.20.0.0/16,::1,, ');
    expect(p.allowHosts).toEqual(['crm.corp.example', '*.svc.cluster.local']);
    expect(p.allowRanges.map(([a, bits]) => `${a.toString()}/${bits}`)).toEqual(['10.20.0.0/16', '::1/128']);
    expect(parseHttpAllow(undefined)).toEqual({ allowHosts: [], allowRanges: [] });
    expect(() => parseHttpAllow('crm.example.com,10.0.0.0/33')).toThrow('"10.0.0.0/33" is neither');
    expect(() => parseHttpAllow('http://crm.example.com/')).toThrow('DIALFLOW_HTTP_ALLOW');
  });
});
