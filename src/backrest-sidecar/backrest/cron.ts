/**
 * Cron schedules as Backrest v1.14.1 takes them (its parser is gitploy-io/cronexpr): exactly five
 * fields; day of week 0-6 or SUN-SAT; items `*`, `N`, `N-M`, `*\/S`, `N-M/S`, `N/S` (= N-max/S),
 * lists of them; day of month and day of week must BOTH match; and the schedule must have a run
 * time within five years, or Backrest refuses to start ("next scheduled time is invalid").
 * A schedule with an exact equivalent (an @ macro, day of week 7) is translated; one without
 * (@reboot, a date that never comes) is refused with the rule it breaks.
 */

interface Field {
  name: string;
  min: number;
  /** The highest value a user may write (day of week: 7, Vixie cron's second Sunday). */
  max: number;
  /** The end of `*` and of `N/S`: Backrest's own highest value (day of week: 6). */
  last: number;
  names?: Record<string, number>;
}

const MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

const FIELDS: readonly Field[] = [
  { name: "minute", min: 0, max: 59, last: 59 },
  { name: "hour", min: 0, max: 23, last: 23 },
  { name: "day of month", min: 1, max: 31, last: 31 },
  { name: "month", min: 1, max: 12, last: 12, names: Object.fromEntries(MONTHS.map((m, i) => [m, i + 1])) },
  // 7 (Sunday in Vixie cron) is read here and written back as 0, which is all Backrest takes.
  { name: "day of week", min: 0, max: 7, last: 6, names: Object.fromEntries(DAYS.map((d, i) => [d, i])) },
];

/** The macros with an exact five-field equivalent. */
export const CRON_MACROS: Readonly<Record<string, string>> = {
  "@yearly": "0 0 1 1 *",
  "@annually": "0 0 1 1 *",
  "@monthly": "0 0 1 * *",
  "@weekly": "0 0 * * 0",
  "@daily": "0 0 * * *",
  "@midnight": "0 0 * * *",
  "@hourly": "0 * * * *",
};

/** Backrest looks this far ahead for the next run time. */
const LOOKAHEAD_YEARS = 5;

function value(text: string, field: Field): number {
  const named = field.names?.[text.toLowerCase()];
  const number = named ?? (/^\d+$/.test(text) ? Number(text) : Number.NaN);
  if (!Number.isInteger(number) || number < field.min || number > field.max) {
    throw new Error(`${field.name} '${text}' is out of range ${field.min}-${field.max}`);
  }
  return number;
}

/** The values one field matches (a 7 in day of week is Sunday, 0), and whether a 7 was written. */
function values(part: string, field: Field): { found: Set<number>; seven: boolean } {
  const found = new Set<number>();
  let seven = false;
  for (const item of part.split(",")) {
    if (item === "") throw new Error(`${field.name} '${part}' has an empty list item`);
    const pieces = item.split("/");
    if (pieces.length > 2) throw new Error(`${field.name} '${item}' has more than one '/'`);
    const [range = "", stepText] = pieces;
    let step = 1;
    if (stepText !== undefined) {
      if (!/^\d+$/.test(stepText) || Number(stepText) === 0)
        throw new Error(`${field.name} step '${stepText}' must be a whole number of at least 1`);
      step = Number(stepText);
    }
    let from: number;
    let to: number;
    if (range === "*") {
      from = field.min;
      to = field.last;
    } else {
      const ends = range.split("-");
      if (ends.length > 2) throw new Error(`${field.name} '${item}' has more than one '-'`);
      from = value(ends[0] ?? "", field);
      to = ends.length === 2 ? value(ends[1] ?? "", field) : stepText !== undefined ? field.last : from;
      if (to < from) throw new Error(`${field.name} range '${range}' runs backwards`);
    }
    for (let v = from; v <= to; v += step) {
      if (v > field.last) seven = true;
      found.add(v > field.last ? 0 : v);
    }
  }
  return { found, seven };
}

/** A day-of-week set written back without 7: runs of consecutive days as ranges. */
function dayOfWeekText(days: ReadonlySet<number>): string {
  const sorted = [...days].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && (sorted[j + 1] as number) === (sorted[j] as number) + 1) j++;
    parts.push(j > i ? `${sorted[i]}-${sorted[j]}` : String(sorted[i]));
    i = j + 1;
  }
  return parts.join(",");
}

/** Is there a day in the next five years whose month, day of month AND day of week all match? */
function hasRunDay(
  months: Set<number>,
  daysOfMonth: Set<number>,
  daysOfWeek: Set<number>,
  from: Date,
): boolean {
  const day = new Date(Date.UTC(from.getUTCFullYear(), from.getUTCMonth(), from.getUTCDate()));
  const end = Date.UTC(from.getUTCFullYear() + LOOKAHEAD_YEARS, from.getUTCMonth(), from.getUTCDate());
  for (; day.getTime() <= end; day.setUTCDate(day.getUTCDate() + 1)) {
    if (
      months.has(day.getUTCMonth() + 1) &&
      daysOfMonth.has(day.getUTCDate()) &&
      daysOfWeek.has(day.getUTCDay())
    )
      return true;
  }
  return false;
}

export interface CronSchedule {
  /** The five-field expression to write, as Backrest takes it. */
  cron: string;
  /** Why it differs from what was given (a macro, day of week 7), for the log. */
  translated?: string;
  /** Day of month and day of week are both restricted: Backrest runs only when both match. */
  bothDays?: boolean;
}

/**
 * A schedule as Backrest takes it, or an Error naming the rule it breaks. `now` is only for the
 * look-ahead (tests pin it).
 */
export function backrestCron(expression: string, now = new Date()): CronSchedule {
  const given = expression.trim().replace(/\s+/g, " ");
  let text = given;
  const notes: string[] = [];
  if (given.startsWith("@")) {
    const equivalent = CRON_MACROS[given.toLowerCase()];
    if (equivalent === undefined) {
      throw new Error(
        `'${given}' has no five-field equivalent (Backrest takes only "minute hour day-of-month month day-of-week"; macros it can have: ${Object.keys(CRON_MACROS).join(", ")})`,
      );
    }
    text = equivalent;
    notes.push(`${given} is written as '${equivalent}'`);
  }
  const parts = text.split(" ");
  if (parts.length !== 5)
    throw new Error(
      `'${given}' needs 5 fields (minute hour day-of-month month day-of-week), it has ${parts.length}`,
    );
  const parsed = parts.map((part, index) => values(part, FIELDS[index] as Field));
  const [, , daysOfMonth, months, daysOfWeek] = parsed.map((p) => p.found) as [
    Set<number>,
    Set<number>,
    Set<number>,
    Set<number>,
    Set<number>,
  ];
  if (parsed[4]?.seven) {
    parts[4] = daysOfWeek.size === 7 ? "*" : dayOfWeekText(daysOfWeek);
    notes.push(`day of week 7 (Sunday) is written as 0: '${parts.join(" ")}'`);
  }
  if (!hasRunDay(months, daysOfMonth, daysOfWeek, now)) {
    throw new Error(
      `'${given}' never runs: no day in the next ${LOOKAHEAD_YEARS} years matches its month, day of month and day of week (Backrest needs a next run time)`,
    );
  }
  const cron = parts.join(" ");
  return {
    cron,
    ...(notes.length > 0 ? { translated: notes.join("; ") } : {}),
    ...(parts[2] !== "*" && parts[4] !== "*" ? { bothDays: true } : {}),
  };
}

/** Validate a schedule (throws why not); see backrestCron. */
export function checkCron(expression: string): void {
  backrestCron(expression);
}
