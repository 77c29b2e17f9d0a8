// The sidebar as a drawer on narrow screens (≤ 720 px): the menu button opens it over the
// conversation, picking a session, the scrim or Escape closes it. While closed it is
// `inert`: out of the focus order and of what a screen reader reads. On wide screens it is
// always there and the button is hidden.

const NARROW = "(max-width: 720px)";

export class Drawer {
  private media = window.matchMedia(NARROW);

  constructor(
    private app: HTMLElement,
    private panel: HTMLElement,
    private button: HTMLButtonElement,
    scrim: HTMLElement,
  ) {
    button.addEventListener("click", () => (this.isOpen ? this.close() : this.open()));
    scrim.addEventListener("click", () => this.close());
    panel.addEventListener("keydown", (ev) => {
      if (ev.key === "Escape" && this.isOpen) { ev.preventDefault(); this.close(); }
    });
    this.media.addEventListener("change", () => this.sync());
    this.sync();
  }

  get narrow() { return this.media.matches; }
  get isOpen() { return this.app.classList.contains("drawer-open"); }

  open() {
    // Already open: leave focus where the user put it (the list refreshes every 30 s).
    if (!this.narrow || this.isOpen) return;
    this.app.classList.add("drawer-open");
    this.sync();
    (this.panel.querySelector<HTMLElement>(".session.current button, #new-session-title"))?.focus();
  }

  /** Close it (on narrow screens); focus goes back to the menu button unless told where. */
  close(focusButton = true) {
    if (!this.isOpen) return;
    this.app.classList.remove("drawer-open");
    this.sync();
    if (focusButton) this.button.focus();
  }

  private sync() {
    if (!this.narrow) this.app.classList.remove("drawer-open");
    const hidden = this.narrow && !this.isOpen;
    this.panel.inert = hidden;
    this.button.setAttribute("aria-expanded", String(this.isOpen));
  }
}
