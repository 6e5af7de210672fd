// Cleanups tied to a lifetime (a connection, a session channel): each runs once, when the scope
// ends or when what it guards ends first; a child scope ends with its parent.
export class Scope {
  private readonly cleanups = new Set<() => void>();
  private ended = false;

  /** Registers a cleanup; returns a function that runs it early (and only once). */
  defer(fn: () => void): () => void {
    if (this.ended) {
      fn();
      return () => {};
    }
    let done = false;
    const run = () => {
      if (done) return;
      done = true;
      this.cleanups.delete(run);
      fn();
    };
    this.cleanups.add(run);
    return run;
  }

  child(): Scope {
    const child = new Scope();
    const detach = this.defer(() => child.end());
    child.defer(() => detach());
    return child;
  }

  get isEnded(): boolean {
    return this.ended;
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    for (const fn of [...this.cleanups]) {
      try {
        fn();
      } catch {
        // one failing cleanup must not keep the others from running
      }
    }
    this.cleanups.clear();
  }
}
