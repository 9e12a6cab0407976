// The ExternalScaler gRPC service: translates KEDA's calls into Engine calls and errors into
// statuses (through toServiceError). Knows gRPC, nothing about brokers or the model's insides.
import type * as grpc from '@grpc/grpc-js';
import type { Engine, TriggerRef } from '../engine.ts';
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
      IsActive: this.unary('IsActive', async (ref: ScaledObjectRef): Promise<IsActiveResponse> => {
        const { decision } = await this.options.engine.evaluate(toRef(ref));
        return { result: decision.active };
      }),
      GetMetricSpec: this.unary('GetMetricSpec', async (ref: ScaledObjectRef) => metricSpec(this.options.engine.trigger(toRef(ref)))),
      GetMetrics: this.unary('GetMetrics', async (request: GetMetricsRequest): Promise<GetMetricsResponse> => {
        const evaluation = await this.options.engine.evaluate(toRef(request.scaledObjectRef));
        const value = evaluation.metricValue;
        return {
          metricValues: [
            { metricName: request.metricName || evaluation.trigger.metricName, metricValue: Math.round(value), metricValueFloat: value },
          ],
        };
      }),
      StreamIsActive: (call: Stream<ScaledObjectRef, IsActiveResponse>) => this.streamIsActive(call),
      StreamMetricSpec: (call: Stream<ScaledObjectRef, GetMetricSpecResponse>) => this.streamMetricSpec(call),
    };
  }

  /** Ends every open stream (KEDA re-opens them), for a graceful shutdown. */
  endStreams(): void {
    for (const call of this.streams) call.end();
    this.streams.clear();
  }

  get openStreams(): number {
    return this.streams.size;
  }

  private unary<Req, Res>(method: string, handle: (request: Req) => Promise<Res>) {
    const { metrics, logger } = this.options;
    return (call: grpc.ServerUnaryCall<Req, Res>, callback: grpc.sendUnaryData<Res>) => {
      const stop = metrics.requestSeconds.startTimer({ method });
      // grpc-js does not catch rejected promises from handlers: every path ends in callback.
      handle(call.request).then(
        (response) => {
          stop();
          metrics.requests.inc({ method, code: 'OK' });
          callback(null, response);
        },
        (err: unknown) => {
          stop();
          const serviceError = toServiceError(err);
          metrics.requests.inc({ method, code: statusName(serviceError.code) });
          if (!(err instanceof InvalidTrigger)) {
            logger.debug({ method, code: statusName(serviceError.code), err: serviceError.details }, 'request failed');
          }
          callback(serviceError, null);
        },
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
    const tick = async () => {
      // Timers run on the event loop's cached clock, which lags Date.now() by up to one loop
      // turn: a tick that fires early would find the cache entry a hair younger than its TTL and
      // see the old value for one more whole interval (a wake 2 s late instead of 1 s).
      const earlyMs = dueAtMs - Date.now();
      // (More than an interval early means the wall clock stepped back: check now.)
      if (earlyMs > 0 && earlyMs <= streamIntervalMs) {
        if (!stopped) timer = setTimeout(tick, earlyMs);
        return;
      }
      try {
        const { decision } = await engine.evaluateTrigger(trigger, checks === 1 ? firstRecheck : later);
        lastError = undefined;
        if (!stopped && decision.active !== last) {
          last = decision.active;
          call.write({ result: decision.active });
        }
      } catch (err) {
        const message = errorMessage(err);
        if (message !== lastError) {
          logger.warn({ trigger: `${ref.namespace}/${ref.name}`, err: message }, 'stream check failed; sending nothing until the source answers');
          lastError = message;
        }
      }
      // The first re-check lands at a random point of the interval: streams opened together (KEDA
      // re-opening them all after a restart) would otherwise check in the same instant every
      // interval, a burst that holds up every other call for its whole length.
      const delayMs = checks++ === 0 ? firstDelayMs : streamIntervalMs;
      dueAtMs = Date.now() + delayMs;
      if (stopped) return;
      if (delayMs !== streamIntervalMs) timer = setTimeout(tick, delayMs);
      else timer = everyInterval = everyInterval?.refresh() ?? setTimeout(tick, streamIntervalMs);
    };
    this.track('StreamIsActive', call, () => {
      stopped = true;
      clearTimeout(timer);
      clearTimeout(everyInterval);
    });
    void tick();
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

