// The agents' generated baresip config: the unauthenticated control port never leaves loopback.
import { describe, expect, it } from 'vitest';
import { baresipConfig } from '../../src/telephony/sip/baresip.js';

describe('baresip config', () => {
  it('binds SIP and RTP to the configured address, ctrl_tcp to loopback only', () => {
    const cfg = baresipConfig({
      host: '10.1.2.3',
      sipPort: 5070,
      rtpPorts: [20000, 20007],
      ctrlPort: 4444,
      silenceWav: '/tmp/s.wav',
    });
    expect(cfg).toContain('sip_listen 10.1.2.3:5070');
    expect(cfg).toContain('net_interface 10.1.2.3');
    expect(cfg).toContain('ctrl_tcp_listen 127.0.0.1:4444');
    expect(cfg).not.toMatch(/ctrl_tcp_listen 10\./);
  });
});
