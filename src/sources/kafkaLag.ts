// The Kafka lag rules, pure: partition offsets + trigger flags -> one SourceReading.
//
// Per partition, with E = log-end offset, S = earliest retained offset, C = committed offset:
//   committed:        lag = E - max(C, S), never negative (messages deleted by retention are not work)
//   nothing committed: scaleToZeroOnInvalidOffset -> 0; else earliest -> E - S (the whole retained
//                      log, what a new consumer would read); latest -> 1 (so the workload wakes and
//                      commits), as KEDA's Kafka scaler does.
//   committed past E:  as nothing committed (a log truncated by an unclean election, offsets
//                      restored from elsewhere): a consumer's fetch is out of range and it resets by
//                      its policy. Counted 0 (KEDA's negative lag, clamped), a workload at zero
//                      would not wake until E passed C.
import { createHash } from 'node:crypto';
import { SourceBadAnswer } from '../errors.ts';
import type { KafkaSourceConfig } from '../trigger/types.ts';
import type { SourceReading } from './source.ts';

export interface PartitionOffsets {
  readonly topic: string;
  readonly partition: number;
  /** Earliest offset still retained (low watermark). */
  readonly logStart: number;
  /** Log-end offset (high watermark): the offset the next message will get. */
  readonly logEnd: number;
  /** The group's committed offset; undefined when it has committed nothing on this partition. */
  readonly committed: number | undefined;
}

export type LagRules = Pick<KafkaSourceConfig, 'offsetResetPolicy' | 'scaleToZeroOnInvalidOffset' | 'allowIdleConsumers'>;

export function partitionLag(p: PartitionOffsets, rules: Omit<LagRules, 'allowIdleConsumers'>): number {
  const committed = validCommit(p);
  if (committed === undefined) {
    if (rules.scaleToZeroOnInvalidOffset) return 0;
    return rules.offsetResetPolicy === 'earliest' ? Math.max(0, p.logEnd - p.logStart) : 1;
  }
  return Math.max(0, p.logEnd - Math.max(committed, p.logStart));
}

/** The committed offset, unless there is none or it is past the log's end (out of range: reset). */
function validCommit(p: PartitionOffsets): number | undefined {
  return p.committed !== undefined && p.committed <= p.logEnd ? p.committed : undefined;
}

/**
 * Where the group stands in the log, as a cumulative "served" counter: the committed offset, or
 * where a new consumer would start (S under earliest, E under latest, whose arrivals it skips).
 */
function servedOffset(p: PartitionOffsets, rules: Pick<LagRules, 'offsetResetPolicy'>): number {
  const committed = validCommit(p);
  if (committed !== undefined) return committed;
  return rules.offsetResetPolicy === 'earliest' ? p.logStart : p.logEnd;
}

/**
 * Partitions where the group's committed offset is behind the earliest retained one (retention
 * deleted what it had not read): its consumer resets past the deleted messages, and the committed
 * offset, the served counter, jumps by messages nobody served. The read that sees such a jump has
 * its counters on a basis of their own (SourceReading.counterBasis), so that the model reads no
 * completions from it, and the next is on the partitions' again. Found by review: the jump read as
 * throughput, μ learned thousands of times too high under the backlog that had outrun retention.
 * Only the jump's read is marked: a basis that counted the skips seen would differ between
 * processes that saw different ones, and a follower's counters would never compare with the
 * writer's (found by review of the first version).
 */
export class RetentionSkips {
  private behind: ReadonlySet<string> = new Set();

  /** The counters' basis for a read: its partitions', marked on a read where a group skipped. */
  basis(partitions: readonly PartitionOffsets[]): string {
    let behind: Set<string> | undefined;
    let skipped = false;
    for (const p of partitions) {
      const committed = p.committed;
      const key = `${p.topic}/${p.partition}`;
      if (committed !== undefined && committed < p.logStart) (behind ??= new Set()).add(key);
      else if (this.behind.has(key)) skipped = true;
    }
    if (behind !== undefined || this.behind.size > 0) this.behind = behind ?? new Set();
    const set = partitionSet(partitions);
    return skipped ? `${set}/skipped` : set;
  }
}

/** B, the partition cap and the arrival/service counters for one read. */
export function kafkaReading(
  partitions: readonly PartitionOffsets[],
  rules: LagRules,
  consumers?: number,
  skips?: RetentionSkips,
): SourceReading {
  let backlog = 0;
  let arrivedTotal = 0;
  let servedTotal = 0;
  for (const p of partitions) {
    backlog += partitionLag(p, rules);
    arrivedTotal += p.logEnd;
    servedTotal += servedOffset(p, rules);
  }
  return {
    backlog,
    arrivedTotal,
    orderedQueues: partitions.length,
    servedTotal,
    counterBasis: skips?.basis(partitions) ?? partitionSet(partitions),
    ...(rules.allowIdleConsumers ? {} : { replicaCap: partitions.length }),
    ...(consumers !== undefined ? { consumers } : {}),
  };
}

/** The partitions the counters sum, as a short fingerprint: their count and a hash of their names. */
export function partitionSet(partitions: readonly PartitionOffsets[]): string {
  const names = partitions.map((p) => `${p.topic}:${p.partition}`).sort();
  return `${names.length}:${createHash('sha256').update(names.join('\n')).digest('hex').slice(0, 12)}`;
}

/** kafkajs gives offsets as strings, "-1" for "none committed". */
export function parseOffset(raw: string, where: string): number | undefined {
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isSafeInteger(n))
    throw new SourceBadAnswer(`${where}: broker gave offset ${JSON.stringify(raw)}`);
  return n < 0 ? undefined : n;
}
