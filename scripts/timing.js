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

/**
 * The same for an async fn(), awaited call after call: one untimed call first
 * (a pool that went to sleep wakes up outside the timing), then calls for at
 * least minSeconds. A twin of secondsPerCall rather than one function for
 * both, so that the synchronous timings carry no microtask per call.
 */
async function secondsPerAsyncCall(fn, minSeconds) {
  await fn();
  let iterations = 0;
  const start = now();
  do { await fn(); iterations++; } while (now() - start < minSeconds);
  return (now() - start) / iterations;
}

module.exports = { now, median, secondsPerCall, secondsPerAsyncCall };
