/**
 * Training progress: a live cli-progress bar on a terminal, one plain line per epoch otherwise
 * (logs and CI output stay readable and greppable instead of filling with carriage returns).
 */
import { MultiBar, SingleBar } from 'cli-progress';
import type { BatchStats, EpochStats } from '../model/fit';

export interface Progress {
  batch(stats: BatchStats): void;
  epoch(stats: EpochStats): void;
  /** A message line that does not corrupt the bar. */
  log(line: string): void;
  stop(): void;
}

/** 12,345 */
export function grouped(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** 42 s, 3 m 05 s, 1 h 02 m */
export function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} m ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} m`;
}

/** The per-epoch summary line, shared by both modes so logs look the same either way. */
export function epochLine(s: EpochStats, epochs: number, etaSeconds: number): string {
  const width = String(epochs).length;
  const val = s.valLoss === undefined ? '' : `  val ${s.valLoss.toFixed(2)}`;
  const eta = s.epoch < epochs ? `  ETA ${duration(etaSeconds)}` : '';
  return `epoch ${String(s.epoch).padStart(width)}/${epochs}  loss ${s.loss.toFixed(2)} (rec ${s.reconstruction.toFixed(2)}, KL ${s.kl.toFixed(2)})${val}  ${grouped(s.samplesPerSecond)} samples/s  ${s.seconds.toFixed(1)} s${eta}`;
}

export function createProgress(options: { epochs: number; rows: number; batchSize: number; tty: boolean; out?: (line: string) => void }): Progress {
  const { epochs, rows, batchSize } = options;
  const batchesPerEpoch = Math.ceil(rows / batchSize);
  const out = options.out ?? ((line: string) => process.stdout.write(line + '\n'));
  const started = Date.now();
  let epochSeconds = 0; // sum over completed epochs, for the ETA
  const etaAfter = (epoch: number) => (epochSeconds / epoch) * (epochs - epoch);

  if (!options.tty) {
    let done = 0;
    return {
      batch() {},
      epoch(s) {
        done = s.epoch;
        epochSeconds += s.seconds;
        out(epochLine(s, epochs, etaAfter(done)));
      },
      log: out,
      stop() {},
    };
  }

  // Kept under 80 columns: cli-progress truncates lines wider than the terminal. {remaining} is
  // our own ETA: the built-in {eta} extrapolates from recent updates and jumps around.
  const multi = new MultiBar({
    format: 'epoch {epoch}/{epochs} [{bar}] loss {loss}  KL {kl}  {speed} samples/s  ETA {remaining}',
    barsize: 12,
    hideCursor: true,
    clearOnComplete: true,
    stopOnComplete: false,
    fps: 10,
    stream: process.stderr,
  });
  const bar: SingleBar = multi.create(epochs * batchesPerEpoch, 0, { epoch: 1, epochs, loss: '-', kl: '-', speed: '-', remaining: '-' });
  // Exponential moving averages: single batches are too noisy to read.
  let loss = NaN, kl = NaN, speed = NaN;
  // Batches are reported in groups after they ran, so speed is measured between groups: rows of
  // the groups completed since windowStart over the time until the last group was reported.
  let windowStart = performance.now(), lastReport = windowStart, windowRows = 0;
  return {
    batch(s) {
      const now = performance.now();
      if (now - lastReport > 5 && lastReport - windowStart >= 250) {
        const current = windowRows / ((lastReport - windowStart) / 1000);
        speed = Number.isNaN(speed) ? current : 0.7 * speed + 0.3 * current;
        windowStart = lastReport;
        windowRows = 0;
      }
      windowRows += Math.min(batchSize, rows - (s.batch - 1) * batchSize);
      lastReport = now;
      loss = Number.isNaN(loss) ? s.loss : 0.95 * loss + 0.05 * s.loss;
      kl = Number.isNaN(kl) ? s.kl : 0.95 * kl + 0.05 * s.kl;
      const value = (s.epoch - 1) * batchesPerEpoch + s.batch;
      const eta = (((Date.now() - started) / 1000) / value) * (epochs * batchesPerEpoch - value);
      bar.update(value, {
        epoch: s.epoch, loss: loss.toFixed(2), kl: kl.toFixed(2),
        speed: Number.isNaN(speed) ? '-' : grouped(speed), remaining: duration(eta).replace(/ /g, ''),
      });
    },
    epoch(s) {
      epochSeconds += s.seconds;
      // Validation ran since the last batch: restart the speed window so it does not count.
      windowStart = lastReport = performance.now();
      windowRows = 0;
      multi.log(epochLine(s, epochs, etaAfter(s.epoch)) + '\n');
    },
    log(line) {
      multi.log(line + '\n');
    },
    stop() {
      multi.update(); // flush lines still queued by log() before the bar is cleared
      multi.stop();
    },
  };
}
