// The ExternalScaler gRPC service: translates KEDA's calls into Engine calls and errors into
// statuses (through toServiceError). Knows gRPC, nothing about brokers or the model's insides.
import type * as grpc from '@grpc/grpc-js';
import { type Engine, type Evaluation, settle } from '../engine.ts';
import type { TriggerRef } from '../trigger/types.ts';
import { InvalidTrigger, errorMessage, statusName, toServiceError } from '../errors.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { ScalerMetrics } from '../telemetry/metrics.ts';
import type { Trigger } from '../trigger/types.ts';
import type {
  GetMetricSpecResponse,
  GetMetricsRequest,
  GetMetricsResponse,
  IsActiveResponse,
  ScaledObjectRef,
} from './protocol.ts';

export interface ExternalScalerOptions {
  readonly engine: Engine;
  readonly logger: Logger;
  readonly metrics: ScalerMetrics;
  /** How often an open StreamIsActive re-checks its sources (through the cache). */
  readonly streamIntervalMs: number;
}

function toRef(ref: ScaledObjectRef | null | undefined): TriggerRef {
  return { name: ref?.name ?? '', namespace: ref?.namespace ?? '', metadata: ref?.scalerMetadata ?? {} };
}

function isActiveResponse({ decision }: Evaluation): IsActiveResponse {
  return { result: decision.active };
}

function metricsResponse(request: GetMetricsRequest, { trigger, metricValue }: Evaluation): GetMetricsResponse {
  return {
    metricValues: [
      {
        metricName: request.metricName || trigger.metricName,
        metricValue: Math.round(metricValue),
        metricValueFloat: metricValue,
      },
    ],
  };
}

/** D as KEDA wants it: both the float and the deprecated int field (KEDA reads the int when the float is 0). */
function metricSpec(trigger: Trigger): GetMetricSpecResponse {
  return { metricSpecs: [{ metricName: trigger.metricName, targetSize: 1, targetSizeFloat: 1 }] };
}

type Stream<Req, Res> = grpc.ServerWritableStream<Req, Res>;

export class ExternalScalerService {
  private readonly options: ExternalScalerOptions;
  private readonly streams = new Set<Stream<ScaledObjectRef, unknown>>();

  constructor(options: ExternalScalerOptions) {
    this.options = options;
  }

  /** Handlers in the shape grpc-js wants for server.addService. */
  handlers(): grpc.UntypedServiceImplementation {
    return {
      IsActive: this.unary('IsActive', (ref: ScaledObjectRef) => this.evaluate(ref, isActiveResponse)),
      GetMetricSpec: this.unary('GetMetricSpec', (ref: ScaledObjectRef) => metricSpec(this.options.engine.trigger(toRef(ref)))),
      GetMetrics: this.unary('GetMetrics', (request: GetMetricsRequest) =>
        this.evaluate(request.scaledObjectRef, (evaluation) => metricsResponse(request, evaluation)),
      ),
      StreamIsActive: (call: Stream<ScaledObjectRef, IsActiveResponse>) => this.streamIsActive(call),
      StreamMetricSpec: (call: Stream<ScaledObjectRef, GetMetricSpecResponse>) => this.streamMetricSpec(call),
    };
  }

  /**
   * The trigger's evaluation, answered at once from fresh cached readings (nearly every call) or
   * once its sources are read. Throws InvalidTrigger.
   */
  private evaluate<Res>(ref: ScaledObjectRef | null, respond: (evaluation: Evaluation) => Res): Res | Promise<Res> {
    const { engine } = this.options;
    return settle(engine.evaluate(engine.trigger(toRef(ref))), respond);
  }

  /** Ends every open stream (KEDA re-opens them), for a graceful shutdown. */
  endStreams(): void {
    for (const call of this.streams) call.end();
    this.streams.clear();
  }

  private unary<Req, Res>(method: string, handle: (request: Req) => Res | Promise<Res>) {
    const labels = { method };
    const answered = { method, code: 'OK' };
    const respond = (startedMs: number, response: Res, callback: grpc.sendUnaryData<Res>) => {
      this.options.metrics.requestSeconds.observe(labels, (performance.now() - startedMs) / 1000);
      this.options.metrics.requests.inc(answered);
      callback(null, response);
    };
    const fail = (startedMs: number, err: unknown, callback: grpc.sendUnaryData<Res>) => {
      const { metrics, logger } = this.options;
      metrics.requestSeconds.observe(labels, (performance.now() - startedMs) / 1000);
      const serviceError = toServiceError(err);
      metrics.requests.inc({ method, code: statusName(serviceError.code) });
      if (!(err instanceof InvalidTrigger)) {
        logger.debug({ method, code: statusName(serviceError.code), err: serviceError.details }, 'request failed');
      }
      callback(serviceError, null);
    };
    return (call: grpc.ServerUnaryCall<Req, Res>, callback: grpc.sendUnaryData<Res>) => {
      const startedMs = performance.now();
      // Every path ends in callback: grpc-js catches neither throws nor rejected promises here.
      let response: Res | Promise<Res>;
      try {
        response = handle(call.request);
      } catch (err) {
        fail(startedMs, err, callback);
        return;
      }
      // Answered from the cache (nearly always): no promise, no closure.
      if (!(response instanceof Promise)) respond(startedMs, response, callback);
      else
        response.then(
          (value) => respond(startedMs, value, callback),
          (err: unknown) => fail(startedMs, err, callback),
        );
    };
  }

  private track(method: string, call: Stream<ScaledObjectRef, unknown>, onEnd: () => void): void {
    const { metrics } = this.options;
    this.streams.add(call);
    metrics.openStreams.inc({ method });
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      this.streams.delete(call);
      metrics.openStreams.dec({ method });
      onEnd();
    };
    call.on('cancelled', end);
    call.on('close', end);
    call.on('finish', end);
    call.on('error', end);
  }

  /**
   * Sends the current answer at once, then each change. Checks every streamIntervalMs through
   * the cache, so a message published into an empty queue turns it true within about a second.
   * A source that cannot be read sends nothing (never a false); KEDA's GetMetrics path fails
   * and its fallback acts.
   */
  private streamIsActive(call: Stream<ScaledObjectRef, IsActiveResponse>): void {
    const { engine, logger, metrics, streamIntervalMs } = this.options;
    const ref = toRef(call.request);
    let trigger: Trigger;
    try {
      trigger = engine.trigger(ref);
    } catch (err) {
      metrics.requests.inc({ method: 'StreamIsActive', code: statusName(toServiceError(err).code) });
      call.emit('error', toServiceError(err));
      return;
    }
    metrics.requests.inc({ method: 'StreamIsActive', code: 'OK' });
    let last: boolean | undefined;
    let timer: NodeJS.Timeout | undefined;
    let stopped = false;
    let lastError: string | undefined;
    let dueAtMs = -Infinity;
    let checks = 0;
    const firstDelayMs = Math.max(1, Math.round(Math.random() * streamIntervalMs));
    // The first re-check comes early (see below) and would find the reading of the opening check
    // still fresh, then wait a whole interval: it asks for one younger than half its delay.
    const firstRecheck = { maxAgeMs: Math.max(1, Math.floor(firstDelayMs / 2)) };
    const later = {};
    // One timer for the regular checks, re-armed in place (refresh), not a new one per check.
    let everyInterval: NodeJS.Timeout | undefined;
    const send = ({ decision }: Evaluation) => {
      lastError = undefined;
      if (!stopped && decision.active !== last) {
        last = decision.active;
        call.write({ result: decision.active });
      }
    };
    const failed = (err: unknown) => {
      const message = errorMessage(err);
      if (message !== lastError) {
        logger.warn(
          { trigger: `${ref.namespace}/${ref.name}`, err: message },
          'stream check failed; sending nothing until the source answers',
        );
        lastError = message;
      }
    };
    const next = () => {
      // The first re-check lands at a random point of the interval: streams opened together (KEDA
      // re-opening them all after a restart) would otherwise check in the same instant every
      // interval, a burst that holds up every other call for its whole length.
      const delayMs = checks++ === 0 ? firstDelayMs : streamIntervalMs;
      dueAtMs = Date.now() + delayMs;
      if (stopped) return;
      if (delayMs !== streamIntervalMs) timer = setTimeout(tick, delayMs);
      else timer = everyInterval = everyInterval?.refresh() ?? setTimeout(tick, streamIntervalMs);
    };
    const tick = () => {
      // Timers run on the event loop's cached clock, which lags Date.now() by up to one loop
      // turn: a tick that fires early would find the cache entry a hair younger than its TTL and
      // see the old value for one more whole interval (a wake 2 s late instead of 1 s).
      const earlyMs = dueAtMs - Date.now();
      // (More than an interval early means the wall clock stepped back: check now.)
      if (earlyMs > 0 && earlyMs <= streamIntervalMs) {
        if (!stopped) timer = setTimeout(tick, earlyMs);
        return;
      }
      const options = checks === 1 ? firstRecheck : later;
      let evaluation: Evaluation | Promise<Evaluation>;
      try {
        evaluation = engine.evaluate(trigger, options);
      } catch (err) {
        // A timer callback has no caller to hand a throw to: log it and keep checking.
        failed(err);
        next();
        return;
      }
      if (!(evaluation instanceof Promise)) {
        send(evaluation);
        next();
      } else {
        evaluation.then(send, failed).finally(next);
      }
    };
    this.track('StreamIsActive', call, () => {
      stopped = true;
      clearTimeout(timer);
      clearTimeout(everyInterval);
    });
    tick();
  }

  /** The spec depends on the metadata only (target 1), so it is sent once and never changes. */
  private streamMetricSpec(call: Stream<ScaledObjectRef, GetMetricSpecResponse>): void {
    const { engine, metrics } = this.options;
    let trigger: Trigger;
    try {
      trigger = engine.trigger(toRef(call.request));
    } catch (err) {
      metrics.requests.inc({ method: 'StreamMetricSpec', code: statusName(toServiceError(err).code) });
      call.emit('error', toServiceError(err));
      return;
    }
    metrics.requests.inc({ method: 'StreamMetricSpec', code: 'OK' });
    this.track('StreamMetricSpec', call, () => undefined);
    call.write(metricSpec(trigger));
  }
}
