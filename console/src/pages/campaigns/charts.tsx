// The two charts of the campaign pages, drawn as inline SVG (no chart library: the console's
// first load stays small). Each has a text alternative: a title and description for assistive
// technology, and the numbers in a table or a sentence next to it.

const WIDTH = 560;
const HEIGHT = 180;
const PAD = { top: 12, right: 12, bottom: 32, left: 44 };

/** 1, 2, 5 × 10ⁿ steps, about four of them up to `max`. */
function niceTicks(max: number): number[] {
  if (max <= 0) return [0];
  const raw = max / 4;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) ?? raw;
  const ticks: number[] = [0];
  while ((ticks.at(-1) ?? 0) < max) ticks.push(Math.round(ticks.length * step * 1000) / 1000);
  return ticks;
}

/** The part of the forecast the chart draws. */
export interface ForecastSeries {
  recipients: number;
  notCallable: number;
  firstDialAt?: string;
  lastFirstDialAt?: string;
  finishAt?: string;
  perDay: Array<{ date: string; dials: number }>;
}

/**
 * The forecast as a chart: first dials per day when the campaign spans several days (delivery
 * windows and daily speeds show there); within one day, first dials placed over time, up to the
 * last one, with the moment every call is done marked.
 */
export function ForecastChart({ forecast }: { forecast: ForecastSeries }) {
  return forecast.perDay.length > 1 ? <PerDayBars perDay={forecast.perDay} /> : <PlacementLine forecast={forecast} />;
}

function YAxis({ ticks, y }: { ticks: number[]; y: (v: number) => number }) {
  return (
    <>
      {ticks.map((t) => (
        <g key={t} className="chart-grid">
          <line x1={PAD.left} x2={WIDTH - PAD.right} y1={y(t)} y2={y(t)} />
          <text x={PAD.left - 6} y={y(t)} dy="0.32em" textAnchor="end">
            {t}
          </text>
        </g>
      ))}
    </>
  );
}

function PerDayBars({ perDay }: { perDay: Array<{ date: string; dials: number }> }) {
  const innerW = WIDTH - PAD.left - PAD.right;
  const innerH = HEIGHT - PAD.top - PAD.bottom;
  const ticks = niceTicks(Math.max(1, ...perDay.map((d) => d.dials)));
  const top = ticks.at(-1) ?? 1;
  const slot = innerW / Math.max(1, perDay.length);
  const barW = Math.max(2, Math.min(48, slot * 0.7));
  const y = (v: number) => PAD.top + innerH - (v / top) * innerH;
  // Label every day when they fit, else about eight of them.
  const labelEvery = Math.max(1, Math.ceil(perDay.length / 8));
  return (
    <svg className="chart" viewBox={`0 0 ${WIDTH} ${HEIGHT}`} role="img" aria-labelledby="forecast-title forecast-desc">
      <title id="forecast-title">First dials per day (UTC)</title>
      <desc id="forecast-desc">{perDay.map((d) => `${d.date}: ${d.dials}`).join('; ')}</desc>
      <YAxis ticks={ticks} y={y} />
      {perDay.map((d, i) => {
        const x = PAD.left + slot * i + (slot - barW) / 2;
        return (
          <g key={d.date}>
            <rect className="chart-bar" x={x} y={y(d.dials)} width={barW} height={PAD.top + innerH - y(d.dials)} />
            {i % labelEvery === 0 ? (
              <text className="chart-label" x={x + barW / 2} y={HEIGHT - PAD.bottom + 16} textAnchor="middle">
                {d.date.slice(5)}
              </text>
            ) : null}
          </g>
        );
      })}
      <line className="chart-axis" x1={PAD.left} x2={WIDTH - PAD.right} y1={y(0)} y2={y(0)} />
    </svg>
  );
}

const clock = (ms: number, withSeconds: boolean) =>
  new Intl.DateTimeFormat(undefined, {
    hour: '2-digit',
    minute: '2-digit',
    ...(withSeconds ? { second: '2-digit' } : {}),
  }).format(ms);

function PlacementLine({ forecast: f }: { forecast: ForecastSeries }) {
  const innerW = WIDTH - PAD.left - PAD.right;
  const innerH = HEIGHT - PAD.top - PAD.bottom;
  const callable = f.recipients - f.notCallable;
  const first = f.firstDialAt ? Date.parse(f.firstDialAt) : undefined;
  const last = f.lastFirstDialAt ? Date.parse(f.lastFirstDialAt) : undefined;
  const done = f.finishAt ? Date.parse(f.finishAt) : last;
  if (first === undefined || last === undefined || done === undefined || callable <= 0)
    return <p>Nobody to call: no chart.</p>;
  const end = Math.max(done, last, first + 1000);
  const span = end - first;
  const x = (ms: number) => PAD.left + ((ms - first) / span) * innerW;
  const ticks = niceTicks(callable);
  const top = ticks.at(-1) ?? callable;
  const y = (v: number) => PAD.top + innerH - (v / top) * innerH;
  const withSeconds = span < 10 * 60_000;
  const timeTicks = [0, 0.25, 0.5, 0.75, 1].map((k) => first + k * span);
  const summary = `${callable} first dials from ${clock(first, withSeconds)} to ${clock(last, withSeconds)}; every call done by ${clock(done, withSeconds)} without retries`;
  return (
    <svg className="chart" viewBox={`0 0 ${WIDTH} ${HEIGHT}`} role="img" aria-labelledby="forecast-title forecast-desc">
      <title id="forecast-title">First dials placed over time</title>
      <desc id="forecast-desc">{summary}</desc>
      <YAxis ticks={ticks} y={y} />
      <path
        className="chart-area"
        d={`M${x(first)},${y(0)} L${x(last)},${y(callable)} L${x(end)},${y(callable)} L${x(end)},${y(0)} Z`}
      />
      <path className="chart-line" d={`M${x(first)},${y(0)} L${x(last)},${y(callable)} L${x(end)},${y(callable)}`} />
      <line className="chart-marker" x1={x(done)} x2={x(done)} y1={PAD.top} y2={y(0)} />
      <text className="chart-label" x={x(done) - 4} y={PAD.top + 10} textAnchor="end">
        all done
      </text>
      {timeTicks.map((t, i) => (
        <text
          key={t}
          className="chart-label"
          x={x(t)}
          y={HEIGHT - PAD.bottom + 16}
          textAnchor={i === 0 ? 'start' : i === timeTicks.length - 1 ? 'end' : 'middle'}
        >
          {clock(t, withSeconds)}
        </text>
      ))}
      <line className="chart-axis" x1={PAD.left} x2={WIDTH - PAD.right} y1={y(0)} y2={y(0)} />
    </svg>
  );
}

export interface RatePoint {
  /** Epoch ms. */
  at: number;
  /** Dials per minute around that instant. */
  perMinute: number;
}

/** Dials per minute over the last minutes, from the dashboard's status stream. */
export function Sparkline({ points, label }: { points: RatePoint[]; label: string }) {
  const w = 320;
  const h = 64;
  const pad = 4;
  const max = Math.max(1, ...points.map((p) => p.perMinute));
  const first = points[0]?.at ?? 0;
  const last = points.at(-1)?.at ?? first;
  const span = Math.max(1, last - first);
  const xy = points.map(
    (p) => [pad + ((p.at - first) / span) * (w - 2 * pad), h - pad - (p.perMinute / max) * (h - 2 * pad)] as const,
  );
  const line = xy.map(([x, yv], i) => `${i === 0 ? 'M' : 'L'}${x.toFixed(1)},${yv.toFixed(1)}`).join(' ');
  const area =
    xy.length > 1 ? `${line} L${xy.at(-1)![0].toFixed(1)},${h - pad} L${xy[0]![0].toFixed(1)},${h - pad} Z` : '';
  return (
    <svg className="sparkline" viewBox={`0 0 ${w} ${h}`} role="img" aria-label={label}>
      <line className="chart-axis" x1={pad} x2={w - pad} y1={h - pad} y2={h - pad} />
      {area ? <path className="sparkline-area" d={area} /> : null}
      {xy.length > 1 ? <path className="sparkline-line" d={line} /> : null}
    </svg>
  );
}
