// Core v2 (new calls) and the frozen core v1 types, kept while calls started before the upgrade drain.
export { outboundCall, inboundCall } from './call.js';
export { callWorkflow, inboundCallWorkflow } from './legacy/call-v1.js';
export type { CallWorkflowInput, InboundCallWorkflowInput } from './call.js';
export { campaignWorkflow } from './campaign.js';
export type { CampaignWorkflowInput } from './campaign.js';
