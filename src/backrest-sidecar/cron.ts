const FIELDS = [
  { name: "minute", min: 0, max: 59 },
  { name: "hour", min: 0, max: 23 },
  { name: "day of month", min: 1, max: 31 },
  { name: "month", min: 1, max: 12 },
  { name: "day of week", min: 0, max: 7 },
] as const;
const NAMES: Record<string, number> = {
  jan: 1,
  feb: 2,
  mar: 3,
  apr: 4,
  may: 5,
  jun: 6,
  jul: 7,
  aug: 8,
  sep: 9,
  oct: 10,
  nov: 11,
  dec: 12,
  sun: 0,
  mon: 1,
  tue: 2,
  wed: 3,
  thu: 4,
  fri: 5,
  sat: 6,
};
const MACROS = new Set(["@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"]);

function value(text: string, field: (typeof FIELDS)[number]): number {
  const named = NAMES[text.toLowerCase()];
  const number = named ?? (/^\d+$/.test(text) ? Number(text) : Number.NaN);
  if (!Number.isInteger(number) || number < field.min || number > field.max) {
    throw new Error(`${field.name} '${text}' is out of range ${field.min}-${field.max}`);
  }
  return number;
}

/** Validate a standard 5-field cron expression (what Backrest's schedule.cron takes); throws why not. */
export function checkCron(expression: string): void {
  const text = expression.trim();
  if (MACROS.has(text)) return;
  const parts = text.split(/\s+/);
  if (parts.length !== 5)
    throw new Error(`'${expression}' needs 5 fields (minute hour day-of-month month day-of-week)`);
  parts.forEach((part, index) => {
    const field = FIELDS[index] as (typeof FIELDS)[number];
    for (const item of part.split(",")) {
      const [range, step] = item.split("/");
      if (step !== undefined && !/^\d+$/.test(step))
        throw new Error(`${field.name} step '${step}' is not a number`);
      if (range === "*") continue;
      const [from, to] = (range ?? "").split("-");
      const start = value(from ?? "", field);
      if (to !== undefined && value(to, field) < start)
        throw new Error(`${field.name} range '${range}' runs backwards`);
    }
  });
}
