// The flow document: one zod schema is the source of truth for validation, the TypeScript types and
// the published JSON Schema (docs/flow.schema.json). Refinements carry a stable `code` in `params`
// that the validator reports as the issue code. Each element's schema and branch table live in its
// module, src/flow/elements/<type>.schema.ts; this file puts them together.
import { z } from 'zod';
import type { BranchTable } from './elements/branch-table.js';
import { elementIdSchema, variableName } from './elements/common.schema.js';
import { startIncomingCallBranches, startIncomingCallSchema } from './elements/startIncomingCall.schema.js';
import {
  callingSpeedSchema,
  deliveryWindowSchema,
  startOutgoingCallBranches,
  startOutgoingCallSchema,
} from './elements/startOutgoingCall.schema.js';
import { playBranches, playSchema } from './elements/play.schema.js';
import { collectBranches, collectSchema } from './elements/collect.schema.js';
import { forwardCallBranches, forwardCallSchema } from './elements/forwardCall.schema.js';
import { recordVoicemailBranches, recordVoicemailSchema } from './elements/recordVoicemail.schema.js';
import { hangUpBranches, hangUpSchema } from './elements/hangUp.schema.js';
import { pauseBranches, pauseSchema } from './elements/pause.schema.js';
import { sendSmsBranches, sendSmsSchema } from './elements/sendSms.schema.js';
import { updateProfileBranches, updateProfileSchema } from './elements/updateProfile.schema.js';
import { httpRequestBranches, httpRequestSchema } from './elements/httpRequest.schema.js';
import { conditionBranches, conditionSchema } from './elements/condition.schema.js';
import { setVariableBranches, setVariableSchema } from './elements/setVariable.schema.js';

export const MAX_ELEMENTS = 100;
export { elementIdSchema };
export { WEEKDAYS } from './weekdays.js';
export { IVR_TYPES, IN_SESSION_ACTIONS } from './elements/session.js';
export { startIncomingCallSchema, startOutgoingCallSchema, playSchema, collectSchema, forwardCallSchema };
export { recordVoicemailSchema, hangUpSchema, pauseSchema, sendSmsSchema, updateProfileSchema, httpRequestSchema };
export { conditionSchema, setVariableSchema, callingSpeedSchema, deliveryWindowSchema };
export {
  MAX_VALIDITY_HOURS,
  RECOMMENDED_MAX_RETRIES,
  retrySchema,
  trackingSchema,
  validityPeriodSchema,
} from './elements/startOutgoingCall.schema.js';
export { AUDIO_MAX_BYTES, TTS_MAX_CHARS, audioSchema, ttsSchema } from './elements/play.schema.js';

export const elementSchema = z.discriminatedUnion('type', [
  startIncomingCallSchema,
  startOutgoingCallSchema,
  playSchema,
  collectSchema,
  forwardCallSchema,
  recordVoicemailSchema,
  hangUpSchema,
  pauseSchema,
  sendSmsSchema,
  updateProfileSchema,
  httpRequestSchema,
  conditionSchema,
  setVariableSchema,
]);

export const variableSchema = z
  .object({
    type: z.enum(['string', 'number', 'boolean', 'object']).default('string'),
    default: z.unknown().optional(),
  })
  .strict();

export const flowSchema = z
  .object({
    $schema: z.string().optional(),
    id: z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/, 'flow ids are lowercase letters, digits and "-"'),
    version: z.number().int().min(1),
    name: z.string().max(200).optional(),
    description: z.string().max(5000).optional(),
    variables: z.record(variableName, variableSchema).default({}),
    /** Entry element of an outbound flow; inbound flows start at their startIncomingCall elements. */
    start: elementIdSchema.optional(),
    elements: z
      .array(elementSchema)
      .min(1, 'a flow has at least one element')
      .max(MAX_ELEMENTS, `a flow has at most ${MAX_ELEMENTS} elements`),
  })
  .strict();

export type Flow = z.infer<typeof flowSchema>;
export type FlowInput = z.input<typeof flowSchema>;
export type FlowElement = z.infer<typeof elementSchema>;
export type ElementType = FlowElement['type'];
export type ElementOf<T extends ElementType> = Extract<FlowElement, { type: T }>;
export type StartIncomingCall = ElementOf<'startIncomingCall'>;
export type StartOutgoingCall = ElementOf<'startOutgoingCall'>;
export type Play = ElementOf<'play'>;
export type Collect = ElementOf<'collect'>;
export type ForwardCall = ElementOf<'forwardCall'>;
export type RecordVoicemail = ElementOf<'recordVoicemail'>;
export type HangUp = ElementOf<'hangUp'>;
export type Pause = ElementOf<'pause'>;
export type SendSms = ElementOf<'sendSms'>;
export type UpdateProfile = ElementOf<'updateProfile'>;
export type HttpRequest = ElementOf<'httpRequest'>;
export type Condition = ElementOf<'condition'>;
export type SetVariable = ElementOf<'setVariable'>;
export type DeliveryWindow = z.infer<typeof deliveryWindowSchema>;
export type CallingSpeed = z.infer<typeof callingSpeedSchema>;

/**
 * Every element's branch table (src/flow/elements/<type>.schema.ts): the one description of its
 * branches that the schema's branch fields, the validator, `dialflow graph` and the docs read.
 */
export const BRANCH_TABLES = {
  startIncomingCall: startIncomingCallBranches,
  startOutgoingCall: startOutgoingCallBranches,
  play: playBranches,
  collect: collectBranches,
  forwardCall: forwardCallBranches,
  recordVoicemail: recordVoicemailBranches,
  hangUp: hangUpBranches,
  pause: pauseBranches,
  sendSms: sendSmsBranches,
  updateProfile: updateProfileBranches,
  httpRequest: httpRequestBranches,
  condition: conditionBranches,
  setVariable: setVariableBranches,
} as const satisfies Record<ElementType, BranchTable>;

/** JSON Schema of the flow document, published as docs/flow.schema.json. */
export function flowJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(flowSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
}
