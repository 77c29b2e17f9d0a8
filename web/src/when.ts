// How the page writes a moment: the time of day for today, with the date before it on any
// other day (and the year when it is not this year), in the browser's locale.

const sameDay = (a: Date, b: Date) =>
  a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate();

function day(t: Date, now: Date): string {
  return t.toLocaleDateString([], t.getFullYear() === now.getFullYear()
    ? { month: "short", day: "numeric" }
    : { year: "numeric", month: "short", day: "numeric" });
}

const timeOfDay = (t: Date) => t.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });

/** A message's time: "14:05" today, "Nov 28, 14:05" on another day. */
export function stamp(t: Date, now = new Date()): string {
  return sameDay(t, now) ? timeOfDay(t) : `${day(t, now)}, ${timeOfDay(t)}`;
}

/** A session's last activity in the list, kept short: "14:05" today, "Nov 28" before. */
export function brief(t: Date, now = new Date()): string {
  return sameDay(t, now) ? timeOfDay(t) : day(t, now);
}
