// A tiny history-API router: the current path as React state, navigate() to push a new one, <Link>
// for in-app anchors (a real <a href>, so middle-click and keyboard work as on any link).
import { createElement, useSyncExternalStore, type AnchorHTMLAttributes, type MouseEvent } from 'react';

const listeners = new Set<() => void>();
const notify = (): void => listeners.forEach((listener) => listener());
window.addEventListener('popstate', notify);

function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

const currentPath = (): string => window.location.pathname;

/** The current path (no query string); re-renders on navigate() and back/forward. */
export function useRoute(): string {
  return useSyncExternalStore(subscribe, currentPath);
}

/** The current query string parameters. */
export function useSearchParams(): URLSearchParams {
  const search = useSyncExternalStore(subscribe, () => window.location.search);
  return new URLSearchParams(search);
}

export function navigate(path: string, opts: { replace?: boolean } = {}): void {
  if (opts.replace) window.history.replaceState(null, '', path);
  else window.history.pushState(null, '', path);
  notify();
}

export type LinkProps = AnchorHTMLAttributes<HTMLAnchorElement> & { to: string };

export function Link({ to, onClick, ...rest }: LinkProps) {
  const handleClick = (event: MouseEvent<HTMLAnchorElement>): void => {
    onClick?.(event);
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
    event.preventDefault();
    navigate(to);
  };
  const active = currentPath() === to || (to !== '/' && currentPath().startsWith(`${to}/`));
  return createElement('a', {
    href: to,
    onClick: handleClick,
    'aria-current': active ? 'page' : undefined,
    ...rest,
  });
}
