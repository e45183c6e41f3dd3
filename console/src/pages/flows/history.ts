// Undo / redo of the flow document: every edit is a snapshot; edits of the same field in quick
// succession (typing) are one step.
import { useCallback, useReducer } from 'react';
import type { FlowDoc } from './model.js';

const COALESCE_MS = 1000;
const MAX_STEPS = 200;

interface HistoryState {
  past: FlowDoc[];
  present: FlowDoc;
  future: FlowDoc[];
  lastKey: string | undefined;
  lastAt: number;
}

type Action =
  | { kind: 'edit'; doc: FlowDoc; key: string | undefined; at: number }
  | { kind: 'reset'; doc: FlowDoc }
  | { kind: 'undo' }
  | { kind: 'redo' };

function reducer(state: HistoryState, action: Action): HistoryState {
  switch (action.kind) {
    case 'edit': {
      if (action.doc === state.present) return state;
      const coalesce =
        action.key !== undefined && action.key === state.lastKey && action.at - state.lastAt < COALESCE_MS;
      return {
        past: coalesce ? state.past : [...state.past, state.present].slice(-MAX_STEPS),
        present: action.doc,
        future: [],
        lastKey: action.key,
        lastAt: action.at,
      };
    }
    case 'reset':
      return { past: [], present: action.doc, future: [], lastKey: undefined, lastAt: 0 };
    case 'undo': {
      const previous = state.past.at(-1);
      if (!previous) return state;
      return {
        ...state,
        past: state.past.slice(0, -1),
        present: previous,
        future: [state.present, ...state.future],
        lastKey: undefined,
      };
    }
    case 'redo': {
      const [next, ...rest] = state.future;
      if (!next) return state;
      return { ...state, past: [...state.past, state.present], present: next, future: rest, lastKey: undefined };
    }
  }
}

export interface DocHistory {
  doc: FlowDoc;
  canUndo: boolean;
  canRedo: boolean;
  /** Record an edit; `key` (a field path) merges quick successive edits of one field. */
  edit: (doc: FlowDoc, key?: string) => void;
  reset: (doc: FlowDoc) => void;
  undo: () => void;
  redo: () => void;
}

export function useDocHistory(initial: () => FlowDoc): DocHistory {
  const [state, dispatch] = useReducer(reducer, undefined, () => ({
    past: [],
    present: initial(),
    future: [],
    lastKey: undefined,
    lastAt: 0,
  }));
  return {
    doc: state.present,
    canUndo: state.past.length > 0,
    canRedo: state.future.length > 0,
    edit: useCallback((doc: FlowDoc, key?: string) => dispatch({ kind: 'edit', doc, key, at: Date.now() }), []),
    reset: useCallback((doc: FlowDoc) => dispatch({ kind: 'reset', doc }), []),
    undo: useCallback(() => dispatch({ kind: 'undo' }), []),
    redo: useCallback(() => dispatch({ kind: 'redo' }), []),
  };
}
