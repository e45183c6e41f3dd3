// A Mermaid flowchart of a flow, branches labelled: the first step toward the no-code editor.
import type { Flow, FlowElement } from './schema.js';
import { branchesOf } from './graph.js';

const quote = (s: string) => `"${s.replace(/"/g, '#quot;')}"`;
/** Mermaid ids: `end` is reserved and punctuation can be read as edge syntax, so ids are prefixed and sanitised. */
const nid = (id: string) => `n_${id.replace(/[^A-Za-z0-9_]/g, '_')}`;

function label(el: FlowElement): string {
  const title = el.label ?? el.id;
  switch (el.type) {
    case 'play':
      return `${title}<br/>play: ${el.tts ? el.tts.text.slice(0, 40) + (el.tts.text.length > 40 ? '…' : '') : 'audio'}`;
    case 'collect':
      return `${title}<br/>collect ${el.maxDigits} digit${el.maxDigits > 1 ? 's' : ''}`;
    case 'startIncomingCall':
      return `${title}<br/>incoming ${el.number}`;
    case 'startOutgoingCall':
      return `${title}<br/>call ${el.to}`;
    case 'forwardCall':
      return `${title}<br/>forward to ${el.to}`;
    default:
      return `${title}<br/>${el.type}`;
  }
}

function node(el: FlowElement): string {
  const l = quote(label(el));
  const id = nid(el.id);
  switch (el.type) {
    case 'startIncomingCall':
    case 'startOutgoingCall':
      return `${id}([${l}])`;
    case 'collect':
    case 'condition':
      return `${id}{${l}}`;
    case 'hangUp':
      return `${id}((${quote(el.label ?? el.id)}))`;
    case 'pause':
      return `${id}[[${l}]]`;
    case 'sendSms':
    case 'updateProfile':
    case 'httpRequest':
    case 'setVariable':
      return `${id}[/${l}/]`;
    default:
      return `${id}[${l}]`;
  }
}

export function toMermaid(flow: Flow): string {
  const lines = ['flowchart TD'];
  for (const el of flow.elements) lines.push(`  ${node(el)}`);
  for (const el of flow.elements) {
    for (const b of branchesOf(el)) {
      if (typeof b.target !== 'string') continue;
      lines.push(
        b.name === 'next'
          ? `  ${nid(el.id)} --> ${nid(b.target)}`
          : `  ${nid(el.id)} -- ${quote(b.name)} --> ${nid(b.target)}`,
      );
    }
  }
  return `${lines.join('\n')}\n`;
}
