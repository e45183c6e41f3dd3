// Options of the Infobip provider and of the webhook ingress. They mirror `config.infobip` and
// `config.webhooks` (environment DIALFLOW_INFOBIP_* / DIALFLOW_WEBHOOK_*), so the service roles can
// pass those objects as they are.

/** The subject segment of this provider: commands on `dialflow.telephony.infobip.commands`. */
export const INFOBIP_PROVIDER = 'infobip';

export interface InfobipOptions {
  /** The account's API base URL, e.g. https://xxxxx.api.infobip.com. */
  baseUrl?: string | undefined;
  apiKey?: string | undefined;
  /** At most this many API requests per second leave this process (the account's rate limit). */
  requestsPerSecond: number;
  /** Calls configuration the created calls belong to (its event subscription posts our webhooks). */
  callsConfigurationId?: string | undefined;
}

export interface WebhookOptions {
  /** Loopback unless configured otherwise: a reverse proxy terminates TLS in front of it. */
  host: string;
  port: number;
  user?: string | undefined;
  password?: string | undefined;
  /** Larger bodies are refused with 413 before they are read whole. */
  maxBodyBytes: number;
  /** A client must send its headers within this time (slow-loris guard). Default 10 s. */
  headersTimeoutMs?: number | undefined;
  /** …and the whole request within this time. Default 30 s. */
  requestTimeoutMs?: number | undefined;
  /** The API settings, to download recorded files (CALL_RECORDING_READY). */
  infobip?: InfobipOptions | undefined;
}

/** A required setting is missing: the service cannot start. */
export class InfobipConfigError extends Error {
  override readonly name = 'InfobipConfigError';
}

export function requireApi(options: InfobipOptions): { baseUrl: string; apiKey: string } {
  if (!options.baseUrl)
    throw new InfobipConfigError('the Infobip provider needs DIALFLOW_INFOBIP_BASE_URL (the account API base URL)');
  if (!options.apiKey) throw new InfobipConfigError('the Infobip provider needs DIALFLOW_INFOBIP_API_KEY');
  return { baseUrl: options.baseUrl, apiKey: options.apiKey };
}
