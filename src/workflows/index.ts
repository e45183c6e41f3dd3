export { callWorkflow } from './call.js';
export type { CallWorkflowInput } from './call.js';
