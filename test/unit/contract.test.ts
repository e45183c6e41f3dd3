import { describe, expect, it } from 'vitest';
import { callIdFor, workflowIdOfCallId } from '../../src/telephony/contract.js';

describe('call id routing', () => {
  it('outbound call ids and their forward legs belong to the workflow before the last ~', () => {
    expect(workflowIdOfCallId(callIdFor('call:c1:r~7', 3))).toBe('call:c1:r~7');
    expect(workflowIdOfCallId('call:c1:r1~2.f1')).toBe('call:c1:r1');
  });
  it('provider-assigned inbound ids (and their forward legs) belong to inbound:{callId}', () => {
    expect(workflowIdOfCallId('sim-in-abc-1')).toBe('inbound:sim-in-abc-1');
    expect(workflowIdOfCallId('sim-in-abc-1.f2')).toBe('inbound:sim-in-abc-1');
  });
  it('ids that name no workflow are unroutable', () => {
    expect(workflowIdOfCallId('~1')).toBeUndefined();
    expect(workflowIdOfCallId('')).toBeUndefined();
  });
});
