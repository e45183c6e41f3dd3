// `{{path.to.value}}` placeholders in prompts, numbers and names.
// A missing value renders as an empty string: a prompt never shows "undefined" to a caller.

export interface TemplateContext {
  recipient: Record<string, unknown>;
  vars: Record<string, unknown>;
  profile?: Record<string, unknown>;
}

const PLACEHOLDER = /\{\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)\s*\}\}/g;

export function lookup(ctx: TemplateContext, path: string): unknown {
  let cur: unknown = ctx;
  for (const key of path.split('.')) {
    if (cur === null || typeof cur !== 'object' || !Object.prototype.hasOwnProperty.call(cur, key)) return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}

export function render(template: string, ctx: TemplateContext): string {
  return template.replace(PLACEHOLDER, (_m, path: string) => {
    const v = lookup(ctx, path);
    if (v === undefined || v === null) return '';
    return typeof v === 'object' ? JSON.stringify(v) : String(v);
  });
}

export function placeholders(template: string): string[] {
  return [...template.matchAll(PLACEHOLDER)].map((m) => m[1] ?? '');
}
