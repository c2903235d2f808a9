// Switchyard plugin SDK for JavaScript: the host's functions (log, counters, clock, failure
// policy) with JavaScript types. Only usable inside a component: `jco componentize` links the
// import `switchyard:plugin/host@0.1.1` to the proxy.
import * as host from 'switchyard:plugin/host@0.1.1';

/** Log a line under this plugin's name (level: 'trace' | 'debug' | 'info' | 'warn' | 'error').
 * Never log prompt text. */
export function log(level, message) {
  host.log(level, message);
}

/** Add `delta` (a number or a BigInt) to this plugin's counter `name`. */
export function counterAdd(name, delta = 1) {
  host.counterAdd(name, BigInt(delta));
}

/** Monotonic nanoseconds since an arbitrary point, as a BigInt. */
export function nowNs() {
  return host.nowNs();
}

/** Whether this plugin runs fail-open; a redactor can refuse that in `init`. */
export function failsOpen() {
  return host.failurePolicy() === 'open';
}
