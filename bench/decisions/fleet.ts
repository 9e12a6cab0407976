// The GPU fleet: replicas that serve `concurrency` requests at a time after a cold start, a FIFO
// queue in front of them, and the bill. A replica's consumer takes up to `prefetch` messages from
// the queue (the broker's unacknowledged ones): those beyond `concurrency` wait inside the replica,
// unseen as waiting by the broker (a Celery worker's default prefetch is 4 per process); a replica
// removed returns them to the queue's head. A replica costs GPU-seconds from the moment it is asked
// for (the model loads on the GPU) until it is gone; a removed replica that still serves finishes
// its requests first (graceful termination) and is billed until then. Removal order follows the
// ReplicaSet controller: not-ready pods first, then the least busy. A consumer acknowledges a
// message after serving it, or (`ack` 'before': Celery's default early acknowledgment) as it
// starts it: the broker then counts only what waits inside a replica unacknowledged, and its ack
// counter counts starts.

/**
 * GPUs billed per node (--nodes), a node per replica: a replica gone leaves its node idle for
 * `retainS` (the Cluster Autoscaler's scale-down-unneeded-time, 10 minutes by default; its
 * scale-down-delay-after-add holds every node 10 minutes after a scale-up too, which this leaves
 * out), where the next replica asked for starts without a node of its own (the one idled last: the
 * cheapest pick, where a scheduler picks any); asked for with none idle, a replica waits `bootS`
 * for a new node before its cold start (minutes for a GPU node; no autoscaler default). Billed from
 * a node's boot to its release.
 */
export interface NodeBilling {
  readonly retainS: number;
  readonly bootS: number;
}

/** A GPU node under NodeBilling: billed from `createdS`, up from `upS`; idle until `releaseS` once its replica is gone. */
interface Node {
  readonly createdS: number;
  readonly upS: number;
  releaseS?: number;
}

export interface Request {
  readonly arrivalS: number;
  readonly serviceS: number;
}

export interface Replica {
  readonly id: number;
  readonly askedS: number;
  readonly readyS: number;
  ready: boolean;
  busy: number;
  /** Delivered to this replica's consumer (prefetched), not started: they wait for one of its slots. */
  readonly held: Request[];
  removing: boolean;
  /** Its node, under NodeBilling. */
  readonly node?: Node;
  /** Messages it served, and of those the ones its consumer has committed (Kafka: Fleet.commit). */
  served: number;
  committed: number;
}

/** When a replica's consumer acknowledges a message: after serving it, or as it starts it. */
export type Ack = 'after' | 'before';

export interface FleetHooks {
  /** Schedules a callback in simulated time. */
  at(atS: number, run: () => void): void;
}

export class Fleet {
  readonly concurrency: number;
  /** Messages a replica's consumer holds at once (concurrency: none waits inside a replica). */
  readonly prefetch: number;
  readonly ack: Ack;
  private readonly hooks: FleetHooks;
  private readonly nodes: NodeBilling | undefined;
  /** Nodes whose replica is gone, within their retention, latest released last. */
  private readonly idleNodes: Node[] = [];
  private readonly live = new Map<number, Replica>();
  private readonly queue: Request[] = [];
  private queueHead = 0;
  private nextId = 0;
  gpuSeconds = 0;
  coldStarts = 0;
  arrived = 0;
  served = 0;
  /** Served by replicas now gone: their consumers committed it as they closed. */
  private retiredCommitted = 0;
  inService = 0;
  /** Prefetched and not started, over every replica. */
  held = 0;
  readonly waits: number[] = [];
  /** When each request of `waits` arrived, in the same order. */
  readonly waitArrivals: number[] = [];

  constructor(concurrency: number, hooks: FleetHooks, prefetch = concurrency, ack: Ack = 'after', nodes?: NodeBilling) {
    if (prefetch < concurrency) throw new Error(`prefetch ${prefetch} below concurrency ${concurrency}`);
    this.concurrency = concurrency;
    this.prefetch = prefetch;
    this.ack = ack;
    this.hooks = hooks;
    this.nodes = nodes;
  }

  /** What a replica asked for with no idle node waits before its cold start (NodeBilling; 0 billed per replica). */
  get bootSeconds(): number {
    return this.nodes?.bootS ?? 0;
  }

  /** Replicas asked for and not being removed: what Deployment.spec.replicas says. */
  get size(): number {
    let n = 0;
    for (const r of this.live.values()) if (!r.removing) n++;
    return n;
  }

  get readyCount(): number {
    let n = 0;
    for (const r of this.live.values()) if (r.ready && !r.removing) n++;
    return n;
  }

  /** Ready messages in the broker's queue (none of the ones prefetched by a replica). */
  get waiting(): number {
    return this.queue.length - this.queueHead;
  }

  /** What the broker counts unacknowledged: in service (unless acknowledged before the work), and prefetched waiting inside a replica. */
  get unacked(): number {
    return this.ack === 'before' ? this.held : this.inService + this.held;
  }

  /** The broker's ack counter: served, or started (served and in service) when acknowledged before the work. */
  get acked(): number {
    return this.ack === 'before' ? this.served + this.inService : this.served;
  }

  /** Busy share of each ready GPU, summed: busy GPU-equivalents. */
  get busyGpus(): number {
    let sum = 0;
    for (const r of this.live.values()) if (r.ready) sum += r.busy / this.concurrency;
    return sum;
  }

  /**
   * NVML's utilisation (DCGM_FI_DEV_GPU_UTIL / 100) summed: the share of time any kernel ran, which
   * an LLM server's decode keeps near 1 while one request is in its hands (docs/gpu.md): each ready
   * GPU with a request counts whole.
   */
  get busyGpusAnyKernel(): number {
    let sum = 0;
    for (const r of this.live.values()) if (r.ready && r.busy > 0) sum += 1;
    return sum;
  }

  arrive(nowS: number, request: Request): void {
    this.arrived++;
    this.queue.push(request);
    this.dispatch(nowS);
  }

  /** Sets the replica count (spec.replicas), drawing cold starts for new replicas. */
  scaleTo(nowS: number, replicas: number, coldStartS: () => number): void {
    let size = this.size;
    while (size < replicas) {
      this.add(nowS, coldStartS());
      size++;
    }
    if (size > replicas) {
      // As the ReplicaSet controller picks (controller.ActivePodsWithRanks): not ready before ready,
      // then the one ready for the least time, then the newest. It knows nothing of a replica's
      // load: the least busy went first until 2026-12-06 (found by review), which spared the
      // policies that give replicas back while they serve.
      const victims = [...this.live.values()]
        .filter((r) => !r.removing)
        .sort((a, b) => Number(a.ready) - Number(b.ready) || (a.ready ? b.readyS - a.readyS : b.askedS - a.askedS))
        .slice(0, size - replicas);
      for (const r of victims) this.remove(nowS, r);
    }
  }

  /** A replica asked for at `nowS`; `provisioned`: its node was there before (an always-on fleet's). */
  add(nowS: number, coldStartS: number, provisioned = false): Replica {
    const node = this.nodeFor(nowS, provisioned);
    const replica: Replica = {
      id: this.nextId++,
      askedS: nowS,
      // On a node still booting (asked for by a replica given back before it was up), from when it is up.
      readyS: Math.max(nowS, node?.upS ?? nowS) + coldStartS,
      ...(node !== undefined && { node }),
      ready: false,
      busy: 0,
      held: [],
      removing: false,
      served: 0,
      committed: 0,
    };
    this.live.set(replica.id, replica);
    this.coldStarts++;
    this.hooks.at(replica.readyS, () => {
      if (!this.live.has(replica.id) || replica.removing) return;
      replica.ready = true;
      this.dispatch(replica.readyS);
    });
    return replica;
  }

  remove(nowS: number, replica: Replica): void {
    replica.removing = true;
    // Its consumer closes: what it prefetched and did not start goes back to the queue's head.
    if (replica.held.length > 0) {
      this.held -= replica.held.length;
      this.queue.splice(this.queueHead, 0, ...replica.held.splice(0));
      this.dispatch(nowS);
    }
    if (replica.busy === 0) this.retire(nowS, replica);
  }

  /** Bills every replica (or node) still alive up to `endS`. */
  close(endS: number): void {
    this.releaseIdle(endS);
    for (const node of this.idleNodes) this.gpuSeconds += Math.min(node.releaseS!, endS) - node.createdS;
    this.idleNodes.length = 0;
    for (const r of this.live.values()) {
      this.gpuSeconds += Math.max(0, endS - (r.node?.createdS ?? r.askedS));
      for (const request of r.held) this.waited(request, endS);
    }
    this.held = 0;
    this.live.clear();
    for (let i = this.queueHead; i < this.queue.length; i++) this.waited(this.queue[i]!, endS);
    this.queueHead = this.queue.length;
  }

  private waited(request: Request, startS: number): void {
    this.waits.push(startS - request.arrivalS);
    this.waitArrivals.push(request.arrivalS);
  }

  /**
   * The consumers' committed offsets, summed: what Kafka's lag counts as done. Each consumer
   * commits what it served every `intervalS` from when it started (Fleet.commit), and all of it as
   * it closes.
   */
  get committed(): number {
    let sum = this.retiredCommitted;
    for (const r of this.live.values()) sum += r.committed;
    return sum;
  }

  /** Commits, for each consumer whose `intervalS` came round between `sinceS` and `nowS`, what it served. */
  commit(sinceS: number, nowS: number, intervalS: number): void {
    for (const r of this.live.values()) {
      if (r.ready && Math.floor((nowS - r.readyS) / intervalS) > Math.floor((sinceS - r.readyS) / intervalS))
        r.committed = r.served;
    }
  }

  private retire(nowS: number, replica: Replica): void {
    this.retiredCommitted += replica.served;
    const { node } = replica;
    if (node === undefined) this.gpuSeconds += nowS - replica.askedS;
    else {
      // Billed on: idle for the retention, or until the next replica takes it; a node still booting
      // comes up first (neither the Cluster Autoscaler nor Karpenter removes a node not yet ready).
      node.releaseS = Math.max(nowS, node.upS) + this.nodes!.retainS;
      this.idleNodes.push(node);
    }
    this.live.delete(replica.id);
  }

  /**
   * Under NodeBilling, the node a replica asked for at `nowS` runs on: an idle one (the latest
   * idled), else a new one, which boots unless `provisioned`.
   */
  private nodeFor(nowS: number, provisioned: boolean): Node | undefined {
    if (this.nodes === undefined) return undefined;
    this.releaseIdle(nowS);
    const idle = this.idleNodes.pop();
    if (idle !== undefined) {
      idle.releaseS = undefined;
      return idle;
    }
    return { createdS: nowS, upS: nowS + (provisioned ? 0 : this.nodes.bootS) };
  }

  /** Releases the idle nodes whose retention ended by `nowS`, billing each to its release. */
  private releaseIdle(nowS: number): void {
    for (let i = this.idleNodes.length - 1; i >= 0; i--) {
      const node = this.idleNodes[i]!;
      if (node.releaseS! > nowS) continue;
      this.gpuSeconds += node.releaseS! - node.createdS;
      this.idleNodes.splice(i, 1);
    }
  }

  private dispatch(nowS: number): void {
    while (this.queueHead < this.queue.length) {
      let best: Replica | undefined;
      for (const r of this.live.values()) {
        if (r.ready && !r.removing && this.unackedOn(r) < this.prefetch && (best === undefined || this.load(r) < this.load(best)))
          best = r;
      }
      if (best === undefined) return;
      const request = this.queue[this.queueHead++]!;
      if (this.queueHead > 4096 && this.queueHead * 2 > this.queue.length) {
        this.queue.splice(0, this.queueHead);
        this.queueHead = 0;
      }
      if (best.busy < this.concurrency) this.start(nowS, best, request);
      else {
        best.held.push(request);
        this.held++;
      }
    }
  }

  /** What the broker counts unacknowledged on the replica's consumer: what its prefetch bounds. */
  private unackedOn(r: Replica): number {
    return this.ack === 'before' ? r.held.length : this.load(r);
  }

  private load(r: Replica): number {
    return r.busy + r.held.length;
  }

  private start(nowS: number, replica: Replica, request: Request): void {
    replica.busy++;
    this.inService++;
    this.waited(request, nowS);
    this.hooks.at(nowS + request.serviceS, () => {
      const doneS = nowS + request.serviceS;
      replica.busy--;
      this.inService--;
      this.served++;
      replica.served++;
      if (replica.removing) {
        if (replica.busy === 0) this.retire(doneS, replica);
      } else {
        const next = replica.held.shift();
        if (next !== undefined) {
          this.held--;
          this.start(doneS, replica, next);
        }
        this.dispatch(doneS);
      }
    });
  }
}

/**
 * What Prometheus reports of the fleet's GPUs: `share`, each ready GPU's busy slots over its slots
 * (a signal that grows with the load); `nvml`, DCGM_FI_DEV_GPU_UTIL as NVML measures it, a GPU
 * counting whole while any request runs on it.
 */
export const SIMULATED_GPU = {
  share: (f: Fleet) => f.busyGpus,
  nvml: (f: Fleet) => f.busyGpusAnyKernel,
} as const;
export type SimulatedGpu = keyof typeof SIMULATED_GPU;
