// The Infobip Calls API provider: the command side (provider.ts), the webhook ingress
// (webhooks.ts), the actions on a live call both share (actions.ts), the API client and the event
// mapping.
export {
  startInfobipProvider,
  commandSchema,
  infobipLanguage,
  UnsupportedCommandError,
  type InfobipProviderOptions,
  type RunningInfobipProvider,
} from './provider.js';
export { startWebhookServer, basicAuthMatches, WEBHOOK_PATH, type RunningWebhookServer } from './webhooks.js';
export {
  INFOBIP_ERROR_CODE_MAP,
  mapErrorCode,
  mapInfobipEvent,
  webhookEventId,
  InvalidWebhookError,
} from './events.js';
export { InfobipClient, InfobipRequestError, InfobipUnavailableError, TokenBucket } from './client.js';
export { InfobipCallMap, INFOBIP_CALLS_BUCKET } from './calls.js';
export { InfobipActions, typedDigits, type FollowUpToRun } from './actions.js';
export { INFOBIP_PROVIDER, InfobipConfigError, type InfobipOptions, type WebhookOptions } from './options.js';
