// What each telephony provider can do, and the warnings `dialflow validate` / `flows publish` give
// when a flow uses something the configured provider lacks. One table: docs/providers.md shows it
// and a test keeps the two in step.
import type { ValidationIssue } from '../flow/validate.js';
import type { Flow } from '../flow/schema.js';

export const PROVIDERS = ['simulator', 'sip', 'infobip'] as const;
export type ProviderName = (typeof PROVIDERS)[number];

export interface ProviderCapabilities {
  /** Answering-machine detection (the startOutgoingCall `voicemail` branch). */
  machineDetection: boolean;
  /** TTS languages (primary subtags, e.g. `en`), or `any` where the provider checks at run time. */
  ttsLanguages: 'any' | readonly string[];
  ttsVoices: readonly ('female' | 'male')[];
  ttsNeural: boolean;
  /** Play sources: an .mp3/.wav by URL, an uploaded file, a voicemail recorded earlier in the call. */
  audio: { url: boolean; file: boolean; voicemail: boolean };
  /** forwardCall destinations. */
  forward: { phone: boolean; sip: boolean; webrtc: boolean };
  recordCall: boolean;
  voicemail: { record: boolean; beep: boolean; maxSilence: boolean; escapeDigits: boolean };
  inbound: boolean;
  sms: boolean;
}

/** espeak-ng 1.51 (Debian bookworm) languages, by primary subtag. */
const ESPEAK_LANGUAGES = [
  'af',
  'am',
  'an',
  'ar',
  'as',
  'az',
  'ba',
  'be',
  'bg',
  'bn',
  'bpy',
  'bs',
  'ca',
  'chr',
  'cmn',
  'cs',
  'cv',
  'cy',
  'da',
  'de',
  'el',
  'en',
  'eo',
  'es',
  'et',
  'eu',
  'fa',
  'fi',
  'fr',
  'ga',
  'gd',
  'gn',
  'grc',
  'gu',
  'hak',
  'haw',
  'he',
  'hi',
  'hr',
  'ht',
  'hu',
  'hy',
  'hyw',
  'ia',
  'id',
  'io',
  'is',
  'it',
  'ja',
  'jbo',
  'ka',
  'kk',
  'kl',
  'kn',
  'ko',
  'kok',
  'ku',
  'ky',
  'la',
  'lb',
  'lfn',
  'lt',
  'ltg',
  'lv',
  'mi',
  'mk',
  'ml',
  'mr',
  'ms',
  'mt',
  'my',
  'nb',
  'nci',
  'ne',
  'nl',
  'nog',
  'om',
  'or',
  'pa',
  'pap',
  'piqd',
  'pl',
  'pt',
  'py',
  'qdb',
  'qu',
  'quc',
  'qya',
  'ro',
  'ru',
  'sd',
  'shn',
  'si',
  'sjn',
  'sk',
  'sl',
  'smj',
  'sq',
  'sr',
  'sv',
  'sw',
  'ta',
  'te',
  'th',
  'tk',
  'tn',
  'tr',
  'tt',
  'ug',
  'uk',
  'ur',
  'uz',
  'vi',
  'yue',
] as const;

export const CAPABILITIES: Record<ProviderName, ProviderCapabilities> = {
  simulator: {
    machineDetection: true,
    ttsLanguages: 'any',
    ttsVoices: ['female', 'male'],
    ttsNeural: true,
    audio: { url: true, file: true, voicemail: true },
    forward: { phone: true, sip: true, webrtc: true },
    recordCall: true,
    voicemail: { record: true, beep: true, maxSilence: true, escapeDigits: true },
    inbound: true,
    sms: true,
  },
  sip: {
    // Detected on the received audio (greeting length and cadence, src/telephony/amd.ts).
    machineDetection: true,
    ttsLanguages: ESPEAK_LANGUAGES,
    ttsVoices: ['female', 'male'],
    ttsNeural: false,
    audio: { url: true, file: true, voicemail: true },
    forward: { phone: true, sip: true, webrtc: false },
    recordCall: true,
    voicemail: { record: true, beep: true, maxSilence: true, escapeDigits: true },
    inbound: true,
    // A SIP trunk carries calls only; SMS needs an SMS gateway, which this provider does not have.
    sms: false,
  },
  infobip: {
    machineDetection: true,
    // Infobip checks the language and voice itself; an unsupported one comes back as an ERROR event.
    ttsLanguages: 'any',
    ttsVoices: ['female', 'male'],
    ttsNeural: true,
    audio: { url: true, file: false, voicemail: true },
    forward: { phone: true, sip: true, webrtc: true },
    recordCall: true,
    // Infobip's recording request has no escape digits: the recording ends on silence, length or hang-up.
    voicemail: { record: true, beep: true, maxSilence: true, escapeDigits: false },
    inbound: true,
    sms: false,
  },
};

/** The warnings for a valid flow run by `provider`; codes are stable: `provider.<capability>`. */
export function providerIssues(flow: Flow, provider: ProviderName): ValidationIssue[] {
  const caps = CAPABILITIES[provider];
  const out: ValidationIssue[] = [];
  const warn = (code: string, index: number, elementId: string, field: string, what: string) =>
    out.push({
      severity: 'warning',
      code: `provider.${code}`,
      elementId,
      path: `elements[${index}]${field ? `.${field}` : ''}`,
      message: `the ${provider} provider ${what}`,
    });
  flow.elements.forEach((el, i) => {
    switch (el.type) {
      case 'startOutgoingCall':
        if (!caps.machineDetection && el.next.voicemail)
          warn(
            'machineDetection',
            i,
            el.id,
            'next.voicemail',
            'has no answering-machine detection: an answering machine takes the `answered` branch, never `voicemail`',
          );
        if (!caps.recordCall && el.recordCall) warn('recordCall', i, el.id, 'recordCall', 'cannot record whole calls');
        break;
      case 'startIncomingCall':
        if (!caps.inbound) warn('inbound', i, el.id, '', 'cannot receive calls');
        break;
      case 'play':
        if (el.tts) {
          const primary = el.tts.language.split('-')[0] ?? el.tts.language;
          if (caps.ttsLanguages !== 'any' && !caps.ttsLanguages.includes(primary))
            warn(
              'ttsLanguage',
              i,
              el.id,
              'tts.language',
              `has no text-to-speech voice for "${el.tts.language}"; it speaks English instead`,
            );
          if (!caps.ttsVoices.includes(el.tts.voice))
            warn('ttsVoice', i, el.id, 'tts.voice', `has no ${el.tts.voice} voice`);
          if (el.tts.neural && !caps.ttsNeural)
            warn('ttsNeural', i, el.id, 'tts.neural', 'has no neural voices; the standard voice speaks');
        }
        if (el.audio && 'url' in el.audio && !caps.audio.url)
          warn('audioUrl', i, el.id, 'audio.url', 'cannot play audio from a URL');
        if (el.audio && 'file' in el.audio && !caps.audio.file)
          warn(
            'audioFile',
            i,
            el.id,
            'audio.file',
            'cannot play uploaded files; put the file at an https URL and use audio.url',
          );
        if (el.audio && 'voicemail' in el.audio && !caps.audio.voicemail)
          warn('audioVoicemail', i, el.id, 'audio.voicemail', 'cannot play recorded voicemails');
        break;
      case 'forwardCall': {
        const kind = el.to.startsWith('sip')
          ? 'sip'
          : el.to.startsWith('webrtc:')
            ? 'webrtc'
            : el.to.includes('{{')
              ? undefined
              : 'phone';
        if (kind && !caps.forward[kind])
          warn(
            'forward',
            i,
            el.id,
            'to',
            `cannot forward to a ${kind === 'webrtc' ? 'WebRTC' : kind === 'sip' ? 'SIP' : 'phone'} destination; the call takes \`notForwarded\``,
          );
        break;
      }
      case 'recordVoicemail':
        if (!caps.voicemail.record) warn('voicemail', i, el.id, '', 'cannot record voicemails');
        else {
          if (el.escapeDigits && !caps.voicemail.escapeDigits)
            warn(
              'escapeDigits',
              i,
              el.id,
              'escapeDigits',
              'cannot stop a recording on a key; it ends on silence, length or hang-up',
            );
          if (el.beep && !caps.voicemail.beep) warn('beep', i, el.id, 'beep', 'plays no beep before recording');
        }
        break;
      case 'sendSms':
        if (!caps.sms) warn('sms', i, el.id, '', 'sends no SMS: the element takes its onError path (or next)');
        break;
      default:
        break;
    }
  });
  return out;
}
