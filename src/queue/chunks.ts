import type { HeartbeatResult } from "./types.js";

/** One chunk of a planned invocation, as the planner stores it; `data` is the model server's (opaque here). */
export interface PlannedChunk {
  idx: number;
  /** Speech seconds it holds (progress is done speech ÷ all speech). */
  speechSeconds: number;
  data: unknown;
}

/** A chunk leased by an instance. */
export interface ChunkLease {
  invocationId: string;
  idx: number;
  data: unknown;
  attempts: number;
}

export type ChunkState = "queued" | "running" | "done" | "failed";

/** Where a planned invocation's chunks stand. */
export interface ChunkProgress {
  chunks: number;
  done: number;
  /** The error of the first failed chunk (a chunk fails the invocation). */
  failed?: string;
  speechSeconds: number;
  doneSeconds: number;
}

/**
 * The chunks of long invocations as units of work (src/instances/instance.ts's chunk path): planned once
 * by the instance that leased the invocation, leased by any instance of the endpoint's variant (chunks of
 * started invocations before new invocations), their results kept as they finish. All of an invocation's
 * chunks are deleted when it finishes.
 */
export interface ChunkStore {
  /**
   * Stores the plan of a Running invocation while `owner` holds its lease (false otherwise); a plan already
   * stored is kept as it is (a later attempt plans the same audio the same way). Wakes the endpoint's
   * instances (`queued`).
   */
  saveChunkPlan(id: string, owner: string, variant: string, chunks: PlannedChunk[]): Promise<boolean>;
  /**
   * Takes up to `max` queued chunks of the variant's Running, not cancelled invocations, oldest invocation
   * first then in order, counting an attempt; a chunk whose attempts reached the invocation's maxAttempts
   * is never leased.
   */
  leaseChunks(
    endpoint: string,
    variant: string,
    owner: string,
    max: number,
    leaseMs: number,
    now: number,
  ): Promise<ChunkLease[]>;
  /** Renews a chunk's lease: "lost" when `owner` no longer holds it, "cancel-requested" when its invocation is being cancelled. */
  heartbeatChunk(
    id: string,
    idx: number,
    owner: string,
    leaseMs: number,
    now: number,
  ): Promise<HeartbeatResult>;
  /** Keeps a leased chunk's result (done) or its error (failed); false when `owner` no longer holds it. */
  finishChunk(
    id: string,
    idx: number,
    owner: string,
    outcome: { result: unknown } | { error: string },
  ): Promise<boolean>;
  /**
   * Gives leased chunks back: `owner`'s chunk (its instance stopped), or with `lapsedBefore` every running
   * chunk whose lease ran out before then. Requeued while attempts remain (waking the endpoint's instances),
   * else failed with `error`. Returns the endpoint of each chunk requeued.
   */
  releaseChunks(
    which: { id: string; idx: number; owner: string } | { lapsedBefore: number },
    error: string,
  ): Promise<string[]>;
  /** How far an invocation's chunks are; undefined when it has no plan. */
  chunkProgress(id: string): Promise<ChunkProgress | undefined>;
  /** The invocation's done chunks (as planned, and their results), in order. */
  chunkResults(id: string): Promise<{ idx: number; data: unknown; result: unknown }[]>;
}
