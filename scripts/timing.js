// Timing helpers shared by the benchmark scripts.
'use strict';

const now = () => Number(process.hrtime.bigint()) / 1e9;
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };

/** Seconds per call of fn(), called (synchronously) for at least minSeconds. */
function secondsPerCall(fn, minSeconds) {
  let iterations = 0;
  const start = now();
  do { fn(); iterations++; } while (now() - start < minSeconds);
  return (now() - start) / iterations;
}

module.exports = { now, median, secondsPerCall };
