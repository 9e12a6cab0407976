// The ExternalScaler gRPC service: translates KEDA's calls into Engine calls and errors into
// statuses (through toServiceError). Knows gRPC, nothing about brokers or the model's insides.
import type * as grpc from '@grpc/grpc-js';
import { type Engine, type Evaluation, settle } from '../engine.ts';
import { StreamChecks } from './streamChecks.ts';
import type { TriggerRef } from '../trigger/types.ts';
import { InvalidTrigger, TooManyStreams, clip, errorCode, errorMessage } from '../errors.ts';
import { toServiceError } from './status.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { ScalerMetrics } from '../telemetry/metrics.ts';
import { Throttle } from '../telemetry/throttle.ts';
import { MAX_TIMER_MS } from '../timers.ts';
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
  /** Streams held at once, over every client; one more is refused with RESOURCE_EXHAUSTED. */
  readonly maxOpenStreams: number;
  /**
   * A stream ends (status OK) after 80-100 % of this, before its connection's maximum age and
   * grace run out: KEDA re-opens a stream that ended with OK after 2 s, on a new connection,
   * where a connection closed under it (UNAVAILABLE) doubles its backoff up to a minute, for good.
   */
  readonly maxStreamAgeMs: number;
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
  /** Open streams, each with what ends it from this side (its checks stopped first). */
  private readonly streams = new Map<Stream<ScaledObjectRef, unknown>, () => void>();
  /** Refused streams and INTERNAL answers (per method): a flood of either logs once a minute. */
  private readonly logged = new Throttle(60_000);
  /** Set by endStreams: a stream that arrives while the server stops ends at once. */
  private stopping = false;

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
    this.stopping = true;
    for (const finish of [...this.streams.values()]) finish();
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
    const fail = (startedMs: number, err: unknown, callback: grpc.sendUnaryData<Res>, request: Req) => {
      const { metrics, logger } = this.options;
      metrics.requestSeconds.observe(labels, (performance.now() - startedMs) / 1000);
      const serviceError = toServiceError(err);
      metrics.requests.inc({ method, code: errorCode(err) });
      if (!this.logDefect(method, err, request) && !(err instanceof InvalidTrigger)) {
        logger.debug({ method, code: errorCode(err), err: serviceError.details }, 'request failed');
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
        fail(startedMs, err, callback, call.request);
        return;
      }
      // Answered from the cache (nearly always): no promise, no closure.
      if (!(response instanceof Promise)) respond(startedMs, response, callback);
      else
        response.then(
          (value) => respond(startedMs, value, callback),
          (err: unknown) => fail(startedMs, err, callback, call.request),
        );
    };
  }

  /**
   * An INTERNAL answer is a defect, not a source or its metadata: logged at error with its stack
   * (the KedaInferenceScalerInternalErrors alert points here), once a minute per method. Returns
   * whether `err` was one.
   */
  private logDefect(method: string, err: unknown, request?: unknown): boolean {
    if (errorCode(err) !== 'INTERNAL') return false;
    if (this.logged.allows(`defect ${method}`)) {
      // Which ScaledObject it was asked about, for the report (found by review: the line named none).
      this.options.logger.error(
        { method, ...scaledObjectOf(request), err },
        'internal error: a defect of the scaler, please report it',
      );
    }
    return true;
  }

  /**
   * Refuses a stream when the server holds its maximum: each costs some 7 KB of heap, and a client
   * that opened 20,000 took the heap to exhaustion. Returns true when refused.
   */
  private refuseOverLimit(method: string, call: Stream<ScaledObjectRef, unknown>): boolean {
    const { maxOpenStreams, logger } = this.options;
    if (this.streams.size < maxOpenStreams) return false;
    if (this.logged.allows('refused stream')) {
      logger.warn({ method, open: this.streams.size, maxOpenStreams }, 'stream refused: too many open streams');
    }
    this.failStream(
      method,
      call,
      new TooManyStreams(
        `${this.streams.size} streams are open, the most this scaler holds (GRPC_MAX_OPEN_STREAMS=${maxOpenStreams}); retry later or raise it`,
      ),
    );
    return true;
  }

  /** Ends a stream that could not start with `err`'s status, counted (and logged when a defect). */
  private failStream(method: string, call: Stream<ScaledObjectRef, unknown>, err: unknown): void {
    this.logDefect(method, err);
    this.options.metrics.requests.inc({ method, code: errorCode(err) });
    call.emit('error', toServiceError(err));
  }

  private track(method: string, call: Stream<ScaledObjectRef, unknown>, onEnd: () => void): void {
    const { metrics, maxStreamAgeMs } = this.options;
    if (this.stopping) {
      // Between endStreams and the server refusing new calls: it would hold the stop until its timeout.
      call.end();
      onEnd();
      return;
    }
    metrics.openStreams.inc({ method });
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      clearTimeout(aged);
      this.streams.delete(call);
      metrics.openStreams.dec({ method });
      onEnd();
    };
    // Ended from this side (its age, a shutdown): its checks stop before the status goes, so none
    // writes after it (grpc-js would turn the OK that KEDA re-opens on into an error).
    const finish = () => {
      end();
      call.end();
    };
    this.streams.set(call, finish);
    // Spread over a fifth of the age: streams opened together (KEDA re-opening all of them after
    // a restart) do not all end, and come back, in the same second.
    const aged = setTimeout(finish, Math.min(Math.round(maxStreamAgeMs * (0.8 + 0.2 * Math.random())), MAX_TIMER_MS));
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
    if (this.refuseOverLimit('StreamIsActive', call)) return;
    const ref = toRef(call.request);
    let trigger: Trigger;
    try {
      trigger = engine.trigger(ref);
    } catch (err) {
      this.failStream('StreamIsActive', call, err);
      return;
    }
    metrics.requests.inc({ method: 'StreamIsActive', code: 'OK' });
    let last: boolean | undefined;
    let lastError: string | undefined;
    let open = true;
    const send = ({ decision }: Evaluation) => {
      lastError = undefined;
      if (open && decision.active !== last) {
        last = decision.active;
        call.write({ result: decision.active });
      }
    };
    const checks = new StreamChecks({
      intervalMs: streamIntervalMs,
      check: (options) => {
        const evaluation = engine.evaluate(trigger, options);
        if (evaluation instanceof Promise) return evaluation.then(send);
        send(evaluation);
      },
      failed: (err) => {
        // A defect in a check is counted where the InternalErrors alert looks; a source's failure is not.
        if (this.logDefect('StreamIsActive', err)) {
          metrics.requests.inc({ method: 'StreamIsActive', code: 'INTERNAL' });
          return;
        }
        // Metadata the source itself refuses (a Prometheus query it cannot parse) will not read on
        // a later check: the stream ends with the status, which KEDA logs and re-opens on after its
        // backoff, where an open stream that sends nothing hides it (found by review).
        if (errorCode(err) === 'INVALID_ARGUMENT') {
          if (!open) return;
          open = false;
          checks.stop();
          this.failStream('StreamIsActive', call, err);
          return;
        }
        const message = errorMessage(err);
        // At debug: the source's failure is said at warn once per source (SourceFailureLog), where
        // this would say it again for every stream on it (500 lines for 500 triggers on one broker).
        if (message !== lastError) {
          logger.debug(
            { trigger: `${ref.namespace}/${ref.name}`, err: message },
            'stream check failed; sending nothing until the source answers',
          );
          lastError = message;
        }
      },
    });
    this.track('StreamIsActive', call, () => {
      open = false;
      checks.stop();
    });
    checks.start();
  }

  /** The spec depends on the metadata only (target 1), so it is sent once and never changes. */
  private streamMetricSpec(call: Stream<ScaledObjectRef, GetMetricSpecResponse>): void {
    const { engine, metrics } = this.options;
    if (this.refuseOverLimit('StreamMetricSpec', call)) return;
    let trigger: Trigger;
    try {
      trigger = engine.trigger(toRef(call.request));
    } catch (err) {
      this.failStream('StreamMetricSpec', call, err);
      return;
    }
    metrics.requests.inc({ method: 'StreamMetricSpec', code: 'OK' });
    this.track('StreamMetricSpec', call, () => undefined);
    // Ended by track (a stop under way): nothing is written after the end (found by review).
    if (!this.stopping) call.write(metricSpec(trigger));
  }
}

/** The namespace and name of the ScaledObject a request names, clipped, if it names one. */
function scaledObjectOf(request: unknown): { namespace?: string; name?: string } {
  const r = request as { scaledObjectRef?: unknown; namespace?: unknown; name?: unknown } | undefined;
  const so = (r?.scaledObjectRef ?? r) as { namespace?: unknown; name?: unknown } | undefined;
  return {
    ...(typeof so?.namespace === 'string' && { namespace: clip(so.namespace, 63) }),
    ...(typeof so?.name === 'string' && { name: clip(so.name, 253) }),
  };
}
