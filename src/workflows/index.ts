export { callWorkflow, inboundCallWorkflow } from './call.js';
export type { CallWorkflowInput, InboundCallWorkflowInput } from './call.js';
