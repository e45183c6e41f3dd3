// `dialflow call FLOW --to NUMBER|SIP-URI [--recipient JSON] [--json]`: one real call through the
// running stack, with whatever provider it runs (simulator, SIP trunk, Infobip). Waits for the
// call to finish and prints the same report as `dialflow simulate`, read from the call's history.
import { randomBytes } from 'node:crypto';
import { WorkflowFailedError } from '@temporalio/client';
import { normaliseDestination, ONE_OFF_RECIPIENT_ID, splitPersona, startCall } from '../client/calls.js';
import { payloadCodec, type Config } from '../config/index.js';
import { decodeHistory } from '../codec/encryption.js';
import type { Recipient } from '../flow/interpreter.js';
import type { ContactCap } from '../activities/index.js';
import { withTimeZone } from '../flow/zone.js';
import { CliError } from './errors.js';
import { withNats, withTemporal } from './connections.js';
import { uploadFlowAudio } from '../store/assets.js';
import { callReport, parseJsonOption, type CallReport } from './simulate.js';
import { providerFor, requireValidFlow } from './validate.js';

/** Campaign id of one-off calls: workflow ids are `call:cli:{recipientId}`. */
export const CLI_CAMPAIGN = 'cli';

export interface CallOptions {
  to: string;
  recipient?: string;
  id?: string;
  json: boolean;
  timeoutSeconds: number;
  contactCap?: ContactCap;
}

export interface CallCommandReport extends CallReport {
  workflowId: string;
  elapsedSeconds: number;
}

/** An E.164 number (validated with libphonenumber) or a SIP URI; anything else is a usage error. */
export function parseDestination(to: string): string {
  const destination = normaliseDestination(to);
  if (destination === undefined)
    throw new CliError(
      `--to ${JSON.stringify(to)}: give an international number such as +14155550123, or a SIP URI such as sip:1001@127.0.0.1:5080`,
      2,
    );
  return destination;
}

export async function placeCall(file: string, o: CallOptions, config: Config): Promise<CallCommandReport> {
  const flow = requireValidFlow(file, providerFor(undefined));
  if (!flow.start)
    throw new CliError(
      `${file} is an inbound flow: \`dialflow call\` calls out (it needs a startOutgoingCall as its start)`,
      1,
    );
  const to = parseDestination(o.to);
  const extra = parseJsonOption('recipient', o.recipient) ?? {};
  if (typeof extra !== 'object' || Array.isArray(extra))
    throw new CliError('--recipient must be a JSON object, e.g. {"firstName":"Ana","timeZone":"Europe/Zagreb"}', 2);
  const id = o.id ?? `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
  if (!ONE_OFF_RECIPIENT_ID.test(id))
    throw new CliError(`--id ${JSON.stringify(id)}: letters, digits, ".", "-" and "_", at most 64`, 2);
  // A SIP URI has no country: without a timeZone a `recipient` window cannot be placed (notCalled says so).
  // A `persona` in --recipient is a hint for the simulator (as in a campaign's recipients file).
  const { recipient: given, hints } = splitPersona({ ...(extra as Partial<Recipient>), id, phone: to });
  const recipient: Recipient = withTimeZone(given);
  await withNats(config.nats, (nc) => uploadFlowAudio(nc, flow, file));
  const started = Date.now();
  return withTemporal(config, async (client) => {
    const handle = await startCall(client, {
      flow,
      recipient,
      campaignId: CLI_CAMPAIGN,
      taskQueue: config.temporal.taskQueue,
      ...(hints ? { hints } : {}),
      ...(o.contactCap ? { contactCap: o.contactCap } : {}),
    });
    process.stderr.write(`calling ${to} with ${flow.id} v${flow.version} (workflow ${handle.workflowId}) …\n`);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new CliError(
              `the call did not finish within ${o.timeoutSeconds} s; it goes on — see workflow ${handle.workflowId}`,
              1,
            ),
          ),
        o.timeoutSeconds * 1000,
      );
    });
    try {
      const result = await Promise.race([handle.result(), timedOut]);
      const history = await decodeHistory(await handle.fetchHistory(), payloadCodec(config));
      return {
        ...(await callReport(flow, result, history, recipient.timeZone ?? 'UTC')),
        workflowId: handle.workflowId,
        elapsedSeconds: Math.round((Date.now() - started) / 100) / 10,
      };
    } catch (err) {
      if (err instanceof WorkflowFailedError)
        throw new CliError(`the call workflow ${handle.workflowId} failed: ${err.cause?.message ?? err.message}`, 1, {
          cause: err,
        });
      throw err;
    } finally {
      clearTimeout(timer);
    }
  });
}
