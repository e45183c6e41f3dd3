// mulberry32: small, fast, good enough for jitter and chaos; its whole state is one uint32, so it
// can live in a workflow's state (and replay identically) or in a simulator.

/** One step: the next state and a number in [0, 1). */
export function mulberry32(state: number): { state: number; value: number } {
  const next = (state + 0x6d2b79f5) >>> 0;
  let t = next;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return { state: next, value: ((t ^ (t >>> 14)) >>> 0) / 4294967296 };
}

/** A stateful generator over mulberry32, for code that owns its randomness (the simulator). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    const r = mulberry32(state);
    state = r.state;
    return r.value;
  };
}
