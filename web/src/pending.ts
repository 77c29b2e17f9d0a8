// Frames sent and not yet answered. The server answers a frame (`ack`, `completions`,
// `confirm_required`, `error`) with the `id` it was sent with, and only that id: the page
// remembers, by id, what each frame was about, so its answer can reach what asked (the
// button to free again, the message the confirmation is for, the completion to ignore).

/** What a sent frame's answer (or error) is about. */
export type Pending =
  | { kind: "message"; content: string }
  | { kind: "complete" }
  | { kind: "action"; button: HTMLButtonElement; label: string }
  | { kind: "cancel"; button: HTMLButtonElement }
  | { kind: "confirm" };

/**
 * Send a frame and remember what its answer will be about; returns the frame's id, or null
 * when offline (nothing was sent). What the modules get instead of the socket itself.
 */
export type SendAwaitingAnswer = (frame: Record<string, unknown>, about: Pending) => string | null;

/** The frames awaiting an answer, by id. Bounded: an answer may never come. */
export class PendingFrames {
  private byId = new Map<number | string, Pending>();

  remember(id: string, p: Pending) {
    this.byId.set(id, p);
    if (this.byId.size > 500) this.byId.delete(this.byId.keys().next().value!);
  }

  /** What the answer with this id is about (once: it is forgotten). */
  take(id: number | string): Pending | undefined {
    const p = this.byId.get(id);
    this.byId.delete(id);
    return p;
  }

  clear() {
    this.byId.clear();
  }
}
