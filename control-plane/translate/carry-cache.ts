// A cache that carries what is still in use from one snapshot to the next. `advance()` starts a new
// generation: an entry read or written since the previous `advance()` survives it, one that was not is
// dropped. The generator advances when it sees a new snapshot, and every connected proxy is regenerated
// for each snapshot, so the entries of connected proxies stay and the rest go (memory stays bounded by what
// is in use, whatever the churn).
export class CarryCache<V> {
  private current = new Map<string, V>();
  private previous = new Map<string, V>();

  get(key: string): V | undefined {
    const hit = this.current.get(key);
    if (hit !== undefined) return hit;
    const carried = this.previous.get(key);
    if (carried !== undefined) {
      this.current.set(key, carried);
      this.previous.delete(key);
    }
    return carried;
  }

  set(key: string, value: V): void {
    this.current.set(key, value);
  }

  advance(): void {
    this.previous = this.current;
    this.current = new Map();
  }

  /** Entries held (both generations). */
  get size(): number {
    return this.current.size + this.previous.size;
  }
}
