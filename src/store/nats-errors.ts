// The NATS and JetStream errors dialflow expects. JetStream API errors are told apart by code (as
// the event bridge checks a missing consumer); a catch around a NATS call handles the errors it
// expects and lets everything else (a bug, a broken invariant) through.
import { JetStreamApiCodes, JetStreamApiError, JetStreamError } from '@nats-io/jetstream';
import { jserrors } from '@nats-io/jetstream/internal';
import { errors } from '@nats-io/transport-node';

/** A JetStream API error with one of `codes`. */
export function isJetStreamApiError(err: unknown, ...codes: number[]): err is JetStreamApiError {
  return err instanceof JetStreamApiError && codes.includes(err.code);
}

/**
 * A compare-and-set write lost: a KV `create` of a key that exists, or an `update` at a revision
 * that is no longer the key's latest (another writer came first).
 */
export function isWrongLastSequence(err: unknown): err is JetStreamApiError {
  return isJetStreamApiError(
    err,
    JetStreamApiCodes.StreamWrongLastSequence,
    JetStreamApiCodes.StreamWrongLastSequenceUnknown,
  );
}

export function isStreamNotFound(err: unknown): err is JetStreamApiError {
  return isJetStreamApiError(err, JetStreamApiCodes.StreamNotFound);
}

export function isConsumerNotFound(err: unknown): err is JetStreamApiError {
  return isJetStreamApiError(err, JetStreamApiCodes.ConsumerNotFound);
}

/**
 * NATS or JetStream did not do what was asked: no answer in time, nobody answering, the connection
 * away, or the server refusing (JetStream API errors, permissions). Trying again later may work.
 */
export function isNatsFailure(err: unknown): err is Error {
  return (
    err instanceof JetStreamApiError ||
    err instanceof JetStreamError ||
    err instanceof jserrors.JetStreamNotEnabled ||
    err instanceof errors.TimeoutError ||
    err instanceof errors.RequestError ||
    err instanceof errors.NoRespondersError ||
    err instanceof errors.ConnectionError ||
    err instanceof errors.ClosedConnectionError ||
    err instanceof errors.DrainingConnectionError ||
    err instanceof errors.PermissionViolationError
  );
}
