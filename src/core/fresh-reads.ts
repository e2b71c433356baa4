/**
 * Reads that concurrent callers share without seeing anything older than their own call: a caller joins
 * the read of its key that has not been sent yet (it is sent on the next turn of the event loop), never
 * one already in flight. So each caller gets a value read after it asked — after its own commit, say —
 * and a burst of N callers costs one round trip per key per loop turn instead of N.
 *
 * The value is shared: callers must not mutate it.
 */
export class FreshReads<K, V> {
  private readonly waiting = new Map<K, Promise<V>>();

  constructor(private readonly read: (key: K) => Promise<V>) {}

  get(key: K): Promise<V> {
    let next = this.waiting.get(key);
    if (!next) {
      next = new Promise<V>((resolve, reject) => {
        setImmediate(() => {
          this.waiting.delete(key);
          Promise.resolve(key)
            .then((k) => this.read(k))
            .then(resolve, reject);
        });
      });
      this.waiting.set(key, next);
    }
    return next;
  }
}
