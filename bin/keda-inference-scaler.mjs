#!/usr/bin/env node
// keda-inference-scaler explain --namespace NS --name SO [--url http://127.0.0.1:8080]
// Asks a running scaler (its metrics port, /explain) why it answers what it answers for a
// ScaledObject's triggers, and prints the inputs, each demand, the winner and activity.
import { realpathSync } from 'node:fs';
import { argv, exit, stdout, stderr } from 'node:process';
import { pathToFileURL } from 'node:url';

const USAGE = 'usage: keda-inference-scaler explain --namespace NS --name SO [--url http://127.0.0.1:8080] [--json]';

export function parseArgs(args) {
  const [command, ...rest] = args;
  if (command !== 'explain') throw new Error(USAGE);
  const out = { url: 'http://127.0.0.1:8080', json: false };
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i];
    if (a === '--json') out.json = true;
    else if (a === '--namespace' || a === '--name' || a === '--url') {
      const v = rest[++i];
      if (v === undefined) throw new Error(`${a} needs a value\n${USAGE}`);
      out[a.slice(2)] = v;
    } else throw new Error(`unknown argument ${a}\n${USAGE}`);
  }
  if (out.namespace === undefined || out.name === undefined) throw new Error(USAGE);
  // The scaler's metrics port, e.g. http://127.0.0.1:8080: a host:port alone is not a URL.
  if (!/^https?:\/\//i.test(out.url) || !URL.canParse(out.url)) {
    throw new Error(
      // Up to the last "@" masked: a user:password the URL may carry (found by review).
      `--url: want the scaler's metrics address as an http:// or https:// URL, got ${JSON.stringify(out.url.replace(/^.*@/s, '***@'))}\n${USAGE}`,
    );
  }
  return out;
}

// Three decimals, or three significant digits under 1: a rate of one request an hour (0.000278 a
// second) must not print as 0.
const fmt = (v) => {
  if (typeof v !== 'number') return String(v);
  return String(Math.abs(v) >= 1 || v === 0 || !Number.isFinite(v) ? Math.round(v * 1000) / 1000 : Number(v.toPrecision(3)));
};

/** A trigger KEDA has not asked about for this long is likely one it left (a poll is 30 s by default). */
const UNASKED_S = 120;

/** Whether `answer` is what /explain serves: a list of trigger views. */
export function isViews(answer) {
  return (
    Array.isArray(answer) &&
    answer.every(
      (v) =>
        v !== null &&
        typeof v === 'object' &&
        typeof v.trigger === 'object' &&
        v.trigger !== null &&
        (v.refused !== undefined || (Array.isArray(v.trigger.sources) && typeof v.explanation === 'object')),
    )
  );
}

/**
 * Why a request failed, in words: fetch's cause, where it has some. A name that resolves to several
 * addresses none of which answer (localhost: ::1 and 127.0.0.1) fails with an AggregateError whose
 * message is empty: its errors say it (found by review: the line ended in nothing).
 */
export function reason(err) {
  const cause = err?.cause;
  const inner = Array.isArray(cause?.errors)
    ? cause.errors
        .map((e) => e?.message)
        .filter(Boolean)
        .join('; ')
    : '';
  return cause?.message || inner || cause?.code || err?.message || String(err);
}

export function render(view) {
  if (view.refused !== undefined) {
    const r = view.refused;
    return [
      `${view.trigger.namespace}/${view.trigger.name}  trigger metadata refused`,
      `  last answer: ${r.code} at ${r.at} (${r.calls} ${r.calls === 1 ? 'call' : 'calls'}): ${r.message}`,
      "  (KEDA got that error for every call: fix the ScaledObject's trigger metadata; docs/metadata.md lists the keys)",
    ].join('\n');
  }
  const e = view.explanation;
  const head = [
    `${view.trigger.namespace}/${view.trigger.name}  trigger ${view.trigger.id}`,
    `  sources: ${view.trigger.sources.join('; ')}`,
  ];
  const failure = view.lastFailure;
  if (failure !== undefined) {
    head.push(
      `  last answer: ${failure.code} at ${failure.at}: ${failure.message}`,
      e === null
        ? '  (no decision yet: every answer so far was an error; KEDA keeps the replicas, or uses the fallback)'
        : '  (KEDA got that error and keeps the replicas, or uses the fallback; the decision below is the one before it)',
    );
  }
  if (view.lastAskedAt !== undefined) {
    const ago = view.secondsSinceAsked;
    head.push(
      `  last asked: ${view.lastAskedAt} (${ago} s before this answer)${
        ago > UNASKED_S && view.replacedBy === undefined
          ? ': KEDA has not asked since (a paused or deleted ScaledObject, or its calls go to another scaler replica), so what follows is not what it gets'
          : ''
      }`,
    );
  }
  if (view.replacedBy !== undefined) {
    head.push(
      `  replaced by: trigger ${view.replacedBy}, after its settings were edited; KEDA gets that trigger's answers, not this one's (kept until 30 minutes unasked)`,
    );
  }
  if (view.learnedUnder !== undefined) {
    head.push(`  learned under: trigger ${view.learnedUnder}, before its settings were edited (carried on from there)`);
  }
  if (view.sharedState !== undefined) {
    head.push(`  shared state: ${view.sharedState.role} on this replica, decided from ${view.sharedState.decidedFrom}`);
  }
  if (e === null) return head.join('\n');
  const lines = [
    ...head,
    `  answer:  desired replicas ${view.desiredReplicas} (metric value ${fmt(view.metricValue)}, target 1), active ${view.active}`,
    `  why active: ${e.activeReason}`,
    '  inputs:',
    ...Object.entries(e.signals).map(([k, v]) => `    ${k} = ${fmt(v)}`),
    '  demands (replicas, before bounds):',
    ...Object.entries(e.demands).map(([k, v]) => `    ${k === e.winner ? '*' : ' '} ${k} = ${fmt(v)}`),
    ...(e.details.gpuReplicasNotSizing === undefined
      ? []
      : [
          `      gpu = ${fmt(e.details.gpuReplicasNotSizing)}, not sizing: the queues count the messages in service, and the backlog demand sizes for them (docs/gpu.md)`,
        ]),
    `  winner: ${e.winner}`,
    ...(e.details.consumersPerReplicaSuggested === undefined
      ? []
      : [
          `  hint: consumersPerReplica ${fmt(e.details.consumersPerReplicaSuggested)}? For ten minutes the queues counted about ${fmt(e.details.consumersPerReplicaSuggested)} consumers for each replica asked for: if each replica opens several, set it, or the fleet is sized several times too large; if minReplicaCount, another trigger or another deployment holds them, nothing is wrong (docs/model.md, "Several consumers a replica")`,
        ]),
    '  details:',
    ...Object.entries(e.details).map(([k, v]) => `    ${k} = ${fmt(v)}`),
  ];
  return lines.join('\n');
}

async function main() {
  let args;
  try {
    args = parseArgs(argv.slice(2));
  } catch (err) {
    stderr.write(`${err.message}\n`);
    exit(2);
  }
  // Relative to the URL's path, kept: a scaler behind a path prefix (kubectl proxy's service path);
  // a URL that names /explain itself is taken as it is.
  const base = args.url.replace(/\/explain\/?$/, '');
  const url = new URL('explain', base.endsWith('/') ? base : `${base}/`);
  url.searchParams.set('namespace', args.namespace);
  url.searchParams.set('name', args.name);
  // A user and password in --url go as basic auth (a proxy in front), not in the URL: fetch refuses
  // such a URL with an error that quotes it, password and all (found by review).
  const headers = {};
  if (url.username !== '' || url.password !== '') {
    const user = decodeURIComponent(url.username);
    const password = decodeURIComponent(url.password);
    headers.authorization = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
    url.username = '';
    url.password = '';
  }
  let views;
  try {
    const res = await fetch(url, { headers, signal: AbortSignal.timeout(5000) });
    if (!res.ok) {
      // What the scaler (or a proxy in front) said: "add ?namespace=", "no endpoints available".
      const said = (await res.text().catch(() => '')).replace(/\s+/g, ' ').trim().slice(0, 200);
      throw new Error(`HTTP ${res.status}${said === '' ? '' : `: ${said}`}`);
    }
    // Something else on the port (a proxy's login page, another server's JSON) is said as such, not
    // a JSON parse error or a TypeError with a stack (found by review).
    const notViews = new Error("the answer is not a list of triggers: is --url the scaler's metrics port?");
    views = await res.json().catch(() => {
      throw notViews;
    });
    if (!isViews(views)) throw notViews;
  } catch (err) {
    stderr.write(`cannot ask the scaler at ${url.origin}: ${reason(err)}\n`);
    exit(1);
  }
  // Exit 3 when the scaler has nothing on the ScaledObject, with --json (an empty list) too.
  if (args.json) {
    stdout.write(`${JSON.stringify(views, null, 2)}\n`);
    if (views.length === 0) exit(3);
    return;
  }
  if (views.length === 0) {
    stdout.write(
      `no decision yet for ${args.namespace}/${args.name} (the scaler explains a trigger after KEDA has asked about it)\n`,
    );
    exit(3);
  }
  stdout.write(`${views.map(render).join('\n\n')}\n`);
}

// Run as the command, not when a test imports render: import.meta.main from Node 22.18 and 24.2;
// before (23.x, 24.0-24.1) undefined, and then the script's own path stands in.
function invoked() {
  if (import.meta.main !== undefined) return import.meta.main;
  try {
    return argv[1] !== undefined && pathToFileURL(realpathSync(argv[1])).href === import.meta.url;
  } catch {
    return false;
  }
}
if (invoked()) await main();
