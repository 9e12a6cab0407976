// Entry point. The signal handlers come first, before a module loads: node as PID 1 (the image's)
// drops a SIGTERM it has no handler for, and loading the modules takes half a second or more, so a
// pod deleted while it started ran until the kubelet's SIGKILL (found by review). Signals that come
// before run.ts takes them are queued and handed over; one handler serves the whole life, so none
// is lost between two (removing the last listener closes Node's signal handle).
import type { SignalHandler } from './run.ts';

const early: NodeJS.Signals[] = [];
let handle: SignalHandler = (signal) => void early.push(signal);
const onSignal = (signal: NodeJS.Signals) => handle(signal);
process.on('SIGTERM', onSignal);
process.on('SIGINT', onSignal);

const { run } = await import('./run.ts');
await run((handler) => {
  handle = handler;
  for (const signal of early.splice(0)) handler(signal);
});
