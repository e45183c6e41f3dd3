// The signed-in console user, for pages that show or hide actions by role.
import { createContext, useContext } from 'react';
import type { SessionUser } from './api.js';

export const SessionContext = createContext<SessionUser | undefined>(undefined);

export function useSessionUser(): SessionUser | undefined {
  return useContext(SessionContext);
}

const RANK = { viewer: 0, operator: 1, admin: 2 } as const;

/** Whether the signed-in user has at least this role (hide what the API would refuse with 403). */
export function useHasRole(min: keyof typeof RANK): boolean {
  const user = useSessionUser();
  return user !== undefined && RANK[user.role] >= RANK[min];
}
