// Strict zod translations of the official Infobip Calls API request models, used by the fake Infobip
// server (test/fake-infobip/server.ts) to reject what the real API rejects: unknown fields, wrong
// types, missing required fields and unknown enum values all answer 400.
//
// Source of truth: infobip/infobip-api-java-client 6.4.0 (src/main/java/com/infobip/model/*.java and
// src/main/java/com/infobip/api/CallsApi.java, generated from Infobip's OpenAPI spec). Each schema
// names the Java model it mirrors. "The field is required." in the Java docs → required here; every
// other field is optional. Java Integer/Long → integer, Double → number, Map<String, String> → a record
// of strings, enums → z.enum with the Java values, @JsonSubTypes on "type" → discriminated union.
// Where we go beyond the model (ranges written only in the field descriptions), the comment says so.
import { z } from 'zod';
import { CALLS_LANGUAGES, CALL_VOICES } from './enums.js';

const int32 = z.int32();
const nonNegInt = z.int32().min(0);
const long = z.int();
/** Map<String, String> (customData everywhere; a number or boolean value is a 400). */
const stringMap = z.record(z.string(), z.string());

// ---- enums -----------------------------------------------------------------------------------------

/** com.infobip.model.CallsErrorCode (hang-up request). */
export const CallsErrorCode = z.enum([
  'NORMAL_HANGUP',
  'MACHINE_DETECTED',
  'NO_ANSWER',
  'BUSY',
  'CANCELLED',
  'REJECTED',
  'FORBIDDEN',
  'DESTINATION_NOT_FOUND',
  'DESTINATION_UNAVAILABLE',
  'INVALID_DESTINATION',
  'INVALID_REQUEST',
  'REQUEST_TIMEOUT',
  'SERVICE_UNAVAILABLE',
]);
export type CallsErrorCode = z.infer<typeof CallsErrorCode>;
/** com.infobip.model.CallsRecordingType */
export const CallsRecordingType = z.enum(['AUDIO', 'AUDIO_AND_VIDEO']);
/** com.infobip.model.CallsRecordingChannels */
export const CallsRecordingChannels = z.enum(['MONO', 'STEREO']);
/** com.infobip.model.CallsLanguage (see enums.ts about "no"). */
export const CallsLanguage = z.enum(CALLS_LANGUAGES);
/** com.infobip.model.CallsGender */
export const CallsGender = z.enum(['FEMALE', 'MALE']);
/** com.infobip.model.CallVoice */
export const CallVoice = z.enum(CALL_VOICES);
/** com.infobip.model.CallState */
export const CallState = z.enum([
  'CALLING',
  'RINGING',
  'PRE_ESTABLISHED',
  'ESTABLISHED',
  'FINISHED',
  'FAILED',
  'CANCELLED',
  'NO_ANSWER',
  'BUSY',
]);
export type CallState = z.infer<typeof CallState>;
/** com.infobip.model.CallDirection */
export const CallDirection = z.enum(['INBOUND', 'OUTBOUND']);
export type CallDirection = z.infer<typeof CallDirection>;
/** com.infobip.model.CallsHangupSource */
export const CallsHangupSource = z.enum(['ENDPOINT', 'API', 'PLATFORM']);
export type CallsHangupSource = z.infer<typeof CallsHangupSource>;
/** com.infobip.model.CallsDialogHangupSource */
export const CallsDialogHangupSource = z.enum(['API', 'PARENT_ENDPOINT', 'CHILD_ENDPOINT', 'PLATFORM']);
/** com.infobip.model.CallsActionStatus */
export const CallsActionStatus = z.enum(['PENDING', 'IN_PROGRESS', 'COMPLETED', 'FAILED']);
/** com.infobip.model.CallsDetectionResult */
export const CallsDetectionResult = z.enum(['HUMAN', 'MACHINE']);
/** com.infobip.model.CallsFileFormat */
export const CallsFileFormat = z.enum(['MP3', 'WAV', 'MP4']);
/** com.infobip.model.CallsRecordingFileLocation */
export const CallsRecordingFileLocation = z.enum(['SFTP', 'HOSTED']);
/** com.infobip.model.CallsRecordingStatus */
export const CallsRecordingStatus = z.enum(['SUCCESSFUL', 'PARTIALLY_FAILED', 'FAILED']);
/** com.infobip.model.CallsDialogState */
export const CallsDialogState = z.enum([
  'CREATED',
  'PRE_ESTABLISHED',
  'ESTABLISHED',
  'FINISHED',
  'FAILED',
  'TRANSFERRING',
]);
/** com.infobip.model.CallsActionType (ERROR event) */
export const CallsActionType = z.enum([
  'SEND_RINGING',
  'PLAY',
  'SAY',
  'SEND_DTMF',
  'CAPTURE_DTMF',
  'CAPTURE_SPEECH',
  'CALL_TRANSCRIPTION',
  'CREATE_BULK',
]);

// ---- shared request parts --------------------------------------------------------------------------

/** com.infobip.model.Platform */
export const Platform = z.strictObject({ entityId: z.string().optional(), applicationId: z.string().optional() });

/**
 * Beyond the model (a plain String there): the description says E.164. We accept E.164 with or without
 * the leading '+' (Infobip's own examples omit it, e.g. "41792030000").
 */
const e164 = z.string().regex(/^\+?[1-9]\d{4,14}$/, 'must be a phone number in E.164 format');

/** com.infobip.model.CallsPhoneEndpoint (CallEndpoint subtype PHONE) */
export const CallsPhoneEndpoint = z.strictObject({ type: z.literal('PHONE'), phoneNumber: e164 });
/** com.infobip.model.CallsSipEndpoint (SIP) */
export const CallsSipEndpoint = z.strictObject({
  type: z.literal('SIP'),
  username: z.string(),
  sipTrunkId: z.string(),
  customHeaders: stringMap.optional(),
});
/** com.infobip.model.CallsWebRtcEndpoint (WEBRTC) */
export const CallsWebRtcEndpoint = z.strictObject({
  type: z.literal('WEBRTC'),
  identity: z.string(),
  displayName: z.string().optional(),
});
/** com.infobip.model.CallsViberEndpoint (VIBER) */
export const CallsViberEndpoint = z.strictObject({ type: z.literal('VIBER'), phoneNumber: e164 });
/** com.infobip.model.CallsWhatsAppEndpoint (WHATSAPP) */
export const CallsWhatsAppEndpoint = z.strictObject({ type: z.literal('WHATSAPP'), phoneNumber: e164 });
/** com.infobip.model.CallsWebsocketEndpoint (WEBSOCKET) */
export const CallsWebsocketEndpoint = z.strictObject({
  type: z.literal('WEBSOCKET'),
  websocketEndpointConfigId: z.string(),
  identifier: z.string().optional(),
});
/** com.infobip.model.CallEndpoint (abstract; @JsonSubTypes on "type") */
export const CallEndpoint = z.discriminatedUnion('type', [
  CallsPhoneEndpoint,
  CallsSipEndpoint,
  CallsWebRtcEndpoint,
  CallsViberEndpoint,
  CallsWhatsAppEndpoint,
  CallsWebsocketEndpoint,
]);
export type CallEndpoint = z.infer<typeof CallEndpoint>;

/** com.infobip.model.CallRecordingRequest (whole-call recording on create / answer / connect) */
export const CallRecordingRequest = z.strictObject({
  recordingType: CallsRecordingType,
  customData: stringMap.optional(),
  filePrefix: z.string().optional(),
  channels: CallsRecordingChannels.optional(),
});

/** com.infobip.model.CallsMachineDetectionRequest */
export const CallsMachineDetectionRequest = z.strictObject({
  enabled: z.boolean(),
  messageDetectionTimeout: nonNegInt.optional(),
  detectionTime: z.number().positive().optional(),
});

/** com.infobip.model.CallsVoicePreferences */
export const CallsVoicePreferences = z.strictObject({
  voiceGender: CallsGender.optional(),
  voiceName: CallVoice.optional(),
});

/** Beyond the model type (Double): the description says "Must be within [0.5 - 2.0]". */
const speechRate = z.number().min(0.5).max(2);

/** com.infobip.model.CallsDtmfTermination (CallsTermination subtype DTMF; the only one) */
export const CallsDtmfTermination = z.strictObject({
  type: z.literal('DTMF'),
  terminator: z
    .string()
    .regex(/^[0-9*#]*$/, 'must be DTMF digits')
    .optional(),
});
/** com.infobip.model.CallsTermination */
export const CallsTermination = z.discriminatedUnion('type', [CallsDtmfTermination]);

/** com.infobip.model.CallsFilePlayContent (CallsPlayContent subtype FILE) */
export const CallsFilePlayContent = z.strictObject({ type: z.literal('FILE'), fileId: z.string() });
/** com.infobip.model.CallsUrlPlayContent (URL) — "Only wav and mp3 files are supported": not checked. */
export const CallsUrlPlayContent = z.strictObject({ type: z.literal('URL'), fileUrl: z.url() });
/** com.infobip.model.CallsRecordingPlayContent (RECORDING) */
export const CallsRecordingPlayContent = z.strictObject({ type: z.literal('RECORDING'), fileId: z.string() });
/** com.infobip.model.CallsTextPlayContent (TEXT) */
export const CallsTextPlayContent = z.strictObject({
  type: z.literal('TEXT'),
  text: z.string(),
  language: CallsLanguage,
  speechRate: speechRate.optional(),
  preferences: CallsVoicePreferences.optional(),
});
/** com.infobip.model.CallsTtyPlayContent (TTY) */
export const CallsTtyPlayContent = z.strictObject({ type: z.literal('TTY'), text: z.string() });
/** com.infobip.model.CallsPlayContent (abstract; @JsonSubTypes on "type") */
export const CallsPlayContent = z.discriminatedUnion('type', [
  CallsFilePlayContent,
  CallsUrlPlayContent,
  CallsRecordingPlayContent,
  CallsTextPlayContent,
  CallsTtyPlayContent,
]);
export type CallsPlayContent = z.infer<typeof CallsPlayContent>;

// ---- request bodies (one per endpoint the fake serves) ----------------------------------------------

/**
 * POST /calls/1/calls — com.infobip.model.CallRequest. Note: `callsConfigurationId` is REQUIRED by the
 * model ("The field is required."), although the reference table lists it among the others.
 */
export const CallRequest = z.strictObject({
  endpoint: CallEndpoint,
  from: z.string().optional(),
  fromDisplayName: z.string().optional(),
  connectTimeout: nonNegInt.optional(),
  recording: CallRecordingRequest.optional(),
  machineDetection: CallsMachineDetectionRequest.optional(),
  maxDuration: nonNegInt.optional(),
  customData: stringMap.optional(),
  callsConfigurationId: z.string().min(1),
  platform: Platform.optional(),
  parentCallId: z.string().optional(),
  externalId: z.string().optional(),
});
export type CallRequest = z.infer<typeof CallRequest>;

/**
 * POST /calls/1/calls/{callId}/say — com.infobip.model.CallsPublicSayRequest (CallsApi.callSayText takes
 * this one; com.infobip.model.CallsSayRequest lost stopOn/customData in 6.3.0 and is not the call body).
 */
export const CallsPublicSayRequest = z.strictObject({
  text: z.string().min(1),
  language: CallsLanguage,
  speechRate: speechRate.optional(),
  loopCount: nonNegInt.optional(),
  preferences: CallsVoicePreferences.optional(),
  stopOn: CallsTermination.optional(),
  customData: stringMap.optional(),
});
export type CallsPublicSayRequest = z.infer<typeof CallsPublicSayRequest>;

/** POST /calls/1/calls/{callId}/play — com.infobip.model.CallsPlayRequest */
export const CallsPlayRequest = z.strictObject({
  loopCount: nonNegInt.optional(),
  timeout: long.min(0).optional(),
  offset: long.min(0).optional(),
  content: CallsPlayContent,
  stopOn: CallsTermination.optional(),
  customData: stringMap.optional(),
});
export type CallsPlayRequest = z.infer<typeof CallsPlayRequest>;

/** POST /calls/1/calls/{callId}/stop-play — com.infobip.model.CallsStopPlayRequest */
export const CallsStopPlayRequest = z.strictObject({ customData: stringMap.optional() });

/**
 * POST /calls/1/calls/{callId}/capture/dtmf — com.infobip.model.CallsDtmfCaptureRequest.
 * maxLength ≥ 1 and timeouts ≥ 0 go beyond the model (Integer there).
 */
export const CallsDtmfCaptureRequest = z.strictObject({
  maxLength: int32.min(1),
  timeout: nonNegInt,
  terminator: z
    .string()
    .regex(/^[0-9*#]$/, 'must be one DTMF digit')
    .optional(),
  digitTimeout: nonNegInt.optional(),
  playContent: CallsPlayContent.optional(),
  customData: stringMap.optional(),
});
export type CallsDtmfCaptureRequest = z.infer<typeof CallsDtmfCaptureRequest>;

/**
 * com.infobip.model.CallsRecordingRequest (inside start-recording). No escape-digit field exists in the
 * model: a voicemail's escape digits must be done by the client (a capture, then stop-recording).
 */
export const CallsRecordingRequest = z.strictObject({
  recordingType: CallsRecordingType,
  maxSilence: nonNegInt.optional(),
  beep: z.boolean().optional(),
  maxDuration: nonNegInt.optional(),
  customData: stringMap.optional(),
  filePrefix: z.string().optional(),
});
export type CallsRecordingRequest = z.infer<typeof CallsRecordingRequest>;
/** POST /calls/1/calls/{callId}/start-recording — com.infobip.model.CallsRecordingStartRequest */
export const CallsRecordingStartRequest = z.strictObject({ recording: CallsRecordingRequest.optional() });

/** POST /calls/1/calls/{callId}/stop-recording — no request body in CallsApi; we accept none or {}. */
export const EmptyBody = z.strictObject({});

/** POST /calls/1/calls/{callId}/answer — com.infobip.model.CallsAnswerRequest */
export const CallsAnswerRequest = z.strictObject({
  customData: stringMap.optional(),
  recording: CallRecordingRequest.optional(),
});

/** POST /calls/1/calls/{callId}/hangup — com.infobip.model.CallsHangupRequest (answers a Call) */
export const CallsHangupRequest = z.strictObject({ errorCode: CallsErrorCode.optional() });

/** com.infobip.model.RingbackGeneration */
export const RingbackGeneration = z.strictObject({ enabled: z.boolean().optional() });
/** com.infobip.model.CallsConferenceComposition */
export const CallsConferenceComposition = z.strictObject({ enabled: z.boolean().optional() });
/** com.infobip.model.CallsConferenceRecordingRequest */
export const CallsConferenceRecordingRequest = z.strictObject({
  recordingType: CallsRecordingType,
  conferenceComposition: CallsConferenceComposition.optional(),
  customData: stringMap.optional(),
  filePrefix: z.string().optional(),
});
/** com.infobip.model.CallsActionConferenceRequest */
export const CallsActionConferenceRequest = z.strictObject({
  name: z.string().optional(),
  recording: CallsConferenceRecordingRequest.optional(),
  maxDuration: nonNegInt.optional(),
});
/** com.infobip.model.CallsActionCallRequest */
export const CallsActionCallRequest = z.strictObject({
  endpoint: CallEndpoint,
  from: z.string().optional(),
  fromDisplayName: z.string().optional(),
  connectTimeout: nonNegInt.optional(),
  recording: CallRecordingRequest.optional(),
  machineDetection: CallsMachineDetectionRequest.optional(),
  maxDuration: nonNegInt.optional(),
  customData: stringMap.optional(),
});
/**
 * POST /calls/1/calls/{callId}/connect — com.infobip.model.CallsConnectWithNewCallRequest (answers a
 * CallsConferenceAndCall). The description: connectOnEarlyMedia and ringbackGeneration.enabled cannot both be true.
 */
export const CallsConnectWithNewCallRequest = z
  .strictObject({
    callRequest: CallsActionCallRequest,
    connectOnEarlyMedia: z.boolean().optional(),
    ringbackGeneration: RingbackGeneration.optional(),
    conferenceRequest: CallsActionConferenceRequest.optional(),
  })
  .refine((r) => !(r.connectOnEarlyMedia === true && r.ringbackGeneration?.enabled === true), {
    message: 'connectOnEarlyMedia cannot be true when ringbackGeneration is enabled',
  });
export type CallsConnectWithNewCallRequest = z.infer<typeof CallsConnectWithNewCallRequest>;

/** com.infobip.model.CallsDialogCallRequest */
export const CallsDialogCallRequest = z.strictObject({
  endpoint: CallEndpoint.optional(),
  from: z.string().optional(),
  fromDisplayName: z.string().optional(),
  connectTimeout: nonNegInt.optional(),
  machineDetection: CallsMachineDetectionRequest.optional(),
  customData: stringMap.optional(),
});
/** com.infobip.model.CallsDialogRecordingComposition */
export const CallsDialogRecordingComposition = z.strictObject({ enabled: z.boolean().optional() });
/** com.infobip.model.CallsDialogRecordingRequest */
export const CallsDialogRecordingRequest = z.strictObject({
  recordingType: CallsRecordingType,
  dialogComposition: CallsDialogRecordingComposition.optional(),
  customData: stringMap.optional(),
  filePrefix: z.string().optional(),
});
/** com.infobip.model.CallsDialogPropagationOptions */
export const CallsDialogPropagationOptions = z.strictObject({
  childCallHangup: z.boolean().optional(),
  childCallRinging: z.boolean().optional(),
  ringbackGeneration: RingbackGeneration.optional(),
});
/**
 * POST /calls/1/dialogs — com.infobip.model.CallsDialogRequest (answers a CallsDialogResponse).
 * The model leaves childCallRequest optional; without it there is nobody to dial, so the fake needs it
 * (and its endpoint) and says so in a 400.
 */
export const CallsDialogRequest = z.strictObject({
  parentCallId: z.string().min(1),
  childCallRequest: CallsDialogCallRequest.optional(),
  recording: CallsDialogRecordingRequest.optional(),
  maxDuration: nonNegInt.optional(),
  propagationOptions: CallsDialogPropagationOptions.optional(),
});
export type CallsDialogRequest = z.infer<typeof CallsDialogRequest>;

// ---- responses and events (what the fake sends; strict so the tests catch our own drift) ------------

/** com.infobip.model.CallsErrorCodeInfo */
export const CallsErrorCodeInfo = z.strictObject({ id: z.int(), name: z.string(), description: z.string() });
export type CallsErrorCodeInfo = z.infer<typeof CallsErrorCodeInfo>;

/** com.infobip.model.CallsMachineDetectionProperties (also the MACHINE_DETECTION_FINISHED properties) */
export const CallsMachineDetectionProperties = z.strictObject({
  detectionResult: CallsDetectionResult.optional(),
  confidenceRating: z.record(z.string(), z.number().min(0).max(1)).optional(),
  customData: stringMap.optional(),
});

/** com.infobip.model.Call (create-call and hangup responses, CALL_* event `properties.call`) */
export const Call = z.strictObject({
  id: z.string(),
  endpoint: CallEndpoint,
  from: z.string().optional(),
  to: z.string().optional(),
  direction: CallDirection,
  state: CallState,
  startTime: z.string().optional(),
  answerTime: z.string().optional(),
  endTime: z.string().optional(),
  parentCallId: z.string().optional(),
  machineDetection: CallsMachineDetectionProperties.optional(),
  ringDuration: z.int().optional(),
  callsConfigurationId: z.string().optional(),
  platform: Platform.optional(),
  conferenceId: z.string().optional(),
  customData: stringMap.optional(),
  dialogId: z.string().optional(),
  externalId: z.string().optional(),
});
export type Call = z.infer<typeof Call>;

/** com.infobip.model.CallLog (CALL_FINISHED / CALL_FAILED `properties.callLog`) */
export const CallLog = z.strictObject({
  callId: z.string(),
  endpoint: CallEndpoint,
  from: z.string().optional(),
  to: z.string().optional(),
  direction: CallDirection,
  state: CallState,
  startTime: z.string().optional(),
  answerTime: z.string().optional(),
  endTime: z.string().optional(),
  parentCallId: z.string().optional(),
  machineDetection: CallsMachineDetectionProperties.optional(),
  ringDuration: z.int().optional(),
  callsConfigurationIds: z.array(z.string()).optional(),
  platform: Platform.optional(),
  conferenceIds: z.array(z.string()).optional(),
  duration: z.int().optional(),
  hasCameraVideo: z.boolean().optional(),
  hasScreenshareVideo: z.boolean().optional(),
  errorCode: CallsErrorCodeInfo,
  customData: stringMap.optional(),
  dialogId: z.string().optional(),
  sender: z.string().optional(),
  hangupSource: CallsHangupSource.optional(),
  externalId: z.string().optional(),
});
export type CallLog = z.infer<typeof CallLog>;

/** com.infobip.model.CallsRecordingFile (inside CALL_RECORDING_READY) */
export const CallsRecordingFile = z.strictObject({
  id: z.string(),
  name: z.string(),
  fileFormat: CallsFileFormat,
  size: z.int().optional(),
  creationTime: z.string().optional(),
  expirationTime: z.string().optional(),
  duration: z.int().optional(),
  startTime: z.string().optional(),
  endTime: z.string().optional(),
  location: CallsRecordingFileLocation.optional(),
  sftpUploadStatus: z.enum(['UPLOADING', 'UPLOADED', 'FAILED']).optional(),
  multichannelMappingData: stringMap.optional(),
});
/** com.infobip.model.CallRecording (CALL_RECORDING_READY `properties.recording`) */
export const CallRecording = z.strictObject({
  callId: z.string().optional(),
  endpoint: CallEndpoint,
  direction: CallDirection.optional(),
  files: z.array(CallsRecordingFile).optional(),
  status: CallsRecordingStatus.optional(),
  reason: z.string().optional(),
  callsConfigurationId: z.string().optional(),
  applicationId: z.string().optional(),
  startTime: z.string().optional(),
  endTime: z.string().optional(),
});
/** com.infobip.model.CallsPublicRecordingFile (GET /calls/1/recordings/calls/{callId}) */
export const CallsPublicRecordingFile = CallsRecordingFile.omit({
  expirationTime: true,
  multichannelMappingData: true,
}).extend({
  customData: stringMap.optional(),
});
/** com.infobip.model.CallsPublicRecording */
export const CallsPublicRecording = CallRecording.omit({ applicationId: true, files: true }).extend({
  files: z.array(CallsPublicRecordingFile).optional(),
  platform: Platform.optional(),
});

/** com.infobip.model.CallsDialog (DIALOG_* event properties.dialog) / CallsDialogResponse */
export const CallsDialog = z.strictObject({
  id: z.string(),
  callsConfigurationId: z.string().optional(),
  applicationId: z.string().optional(),
  entityId: z.string().optional(),
  state: CallsDialogState,
  startTime: z.string().optional(),
  establishTime: z.string().optional(),
  endTime: z.string().optional(),
  parentCall: Call.optional(),
  childCall: Call.optional(),
});

/** Event envelope: com.infobip.model.CallsEvent. There is NO event id. */
const envelope = {
  callId: z.string().nullable().optional(),
  conferenceId: z.string().nullable().optional(),
  dialogId: z.string().nullable().optional(),
  bulkId: z.string().nullable().optional(),
  timestamp: z.string(),
  callsConfigurationId: z.string().nullable().optional(),
  platform: Platform.nullable().optional(),
};
/** com.infobip.model.CallProperties */
const CallProperties = z.strictObject({
  call: Call,
  apiBaseUrl: z.string().optional(),
  sender: z.string().optional(),
  resolvedCnam: z.string().optional(),
});
/** com.infobip.model.CallWithErrorCodeProperties */
const CallWithErrorCodeProperties = z.strictObject({ callLog: CallLog });
/** com.infobip.model.CallsSayProperties / CallsPlayProperties (identical shapes) */
const PlaybackProperties = z.strictObject({
  duration: z.int().optional(),
  playedCompletely: z.boolean().optional(),
  capturedDtmf: z.string().optional(),
  customData: stringMap.optional(),
});
/** com.infobip.model.CallsDtmfProperties */
const CallsDtmfProperties = z.strictObject({
  dtmf: z.string().optional(),
  timeout: z.boolean().optional(),
  customData: stringMap.optional(),
  playedContentProperties: z
    .strictObject({ duration: z.int().optional(), playedCompletely: z.boolean().optional() })
    .optional(),
});
/** com.infobip.model.CallsDialogWithErrorCodeProperties */
const DialogWithErrorCodeProperties = z.strictObject({
  dialog: CallsDialog,
  errorCode: CallsErrorCodeInfo.optional(),
  hangupSource: CallsDialogHangupSource.optional(),
});
const ev = <T extends string, P extends z.ZodType>(type: T, properties: P) =>
  z.strictObject({ type: z.literal(type), ...envelope, properties });

/** The event subtypes the fake sends (com.infobip.model.CallsEvent @JsonSubTypes). */
export const CallsEvent = z.discriminatedUnion('type', [
  ev('CALL_RECEIVED', CallProperties), // CallReceivedEvent
  ev('CALL_RINGING', CallProperties), // CallRingingEvent
  ev('CALL_PRE_ESTABLISHED', CallProperties), // CallPreEstablishedEvent
  ev('CALL_ESTABLISHED', CallProperties), // CallEstablishedEvent
  ev('CALL_FINISHED', CallWithErrorCodeProperties), // CallFinishedEvent
  ev('CALL_FAILED', CallWithErrorCodeProperties), // CallFailedEvent
  ev('SAY_FINISHED', PlaybackProperties), // CallsSayFinishedEvent (CallsSayProperties)
  ev('PLAY_FINISHED', PlaybackProperties), // CallsPlayFinishedEvent (CallsPlayProperties)
  ev('DTMF_CAPTURED', CallsDtmfProperties), // CallsDtmfCapturedEvent
  ev('MACHINE_DETECTION_FINISHED', CallsMachineDetectionProperties), // CallsMachineDetectionFinishedEvent
  ev('MACHINE_DETECTION_FAILED', z.strictObject({ reason: z.string().optional(), customData: stringMap.optional() })),
  ev('CALL_RECORDING_READY', z.strictObject({ recording: CallRecording })), // CallRecordingReadyEvent
  ev(
    'ERROR',
    z.strictObject({
      actionType: CallsActionType.optional(),
      errorCode: z.string().optional(),
      errorDetails: z.string().optional(),
    }),
  ),
  ev('DIALOG_CREATED', z.strictObject({ dialog: CallsDialog, apiBaseUrl: z.string().optional() })), // CallsDialogCreatedEvent
  ev('DIALOG_ESTABLISHED', z.strictObject({ dialog: CallsDialog })), // CallsDialogEstablishedEvent
  ev('DIALOG_FAILED', DialogWithErrorCodeProperties), // CallsDialogFailedEvent
  ev('DIALOG_FINISHED', DialogWithErrorCodeProperties), // CallsDialogFinishedEvent
]);
export type CallsEvent = z.infer<typeof CallsEvent>;
export type CallsEventType = CallsEvent['type'];

/** Infobip's error body (com.infobip.ApiExceptionWrapper → ApiError.serviceException). */
export interface InfobipErrorBody {
  requestError: { serviceException: { messageId: string; text: string } };
}
