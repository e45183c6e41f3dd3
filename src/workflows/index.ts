export { callWorkflow, inboundCallWorkflow } from './call.js';
export type { CallWorkflowInput, InboundCallWorkflowInput } from './call.js';
export { campaignWorkflow } from './campaign.js';
export type { CampaignWorkflowInput } from './campaign.js';
export { baselineWorkflow } from './baseline.js';
