import { coerceError } from "../errors.js";
import type { Service } from "./service.js";

/**
 * Runs the core's housekeeping (`Service.sweep`: expired requests, lapsed leases) every `intervalMs`, after
 * failing once the work of endpoints deleted before kikitori failed it (`failStranded`); a cluster-wide
 * loop, so one process of the cluster runs it.
 */
export class Sweeper {
  readonly name = "sweeper";
  private timer?: NodeJS.Timeout;
  private running = Promise.resolve();

  constructor(
    private readonly service: Service,
    private readonly o: { intervalMs: number; log: (msg: string) => void },
  ) {}

  start(): void {
    this.running = this.running.then(() =>
      this.service.failStranded().then(
        (n) => {
          if (n) this.o.log(`failed ${n} invocation(s) of endpoints deleted earlier`);
        },
        (e: unknown) => this.o.log(`failing deleted endpoints' work failed: ${coerceError(e).message}`),
      ),
    );
    this.timer ??= setInterval(() => {
      this.running = this.running.then(() =>
        this.service.sweep().then(
          () => {},
          (e: unknown) => this.o.log(`sweep failed: ${coerceError(e).message}`),
        ),
      );
    }, this.o.intervalMs);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }
}
