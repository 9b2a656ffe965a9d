/** Runs `run` every `intervalMs` until cancelled: timers in production, a hand-cranked loop in tests. */
export interface Scheduler {
  every(intervalMs: number, run: () => void): () => void;
}

/** setInterval, unref'd so a pending run never keeps the process alive. */
export const timerScheduler: Scheduler = {
  every(intervalMs, run) {
    const timer = setInterval(run, intervalMs);
    timer.unref();
    return () => clearInterval(timer);
  },
};
