// Rounding that ignores float noise: a count divided and summed back (7 / 0.7, 3.75 + 0.25) lands
// a hair off the integer it is. Pure.

/** x rounded when within float noise of an integer, else `step(x)`. */
function snapped(x: number, step: (x: number) => number): number {
  const rounded = Math.round(x);
  return Math.abs(x - rounded) < 1e-9 ? rounded : step(x);
}

/** ceil that ignores float noise: 7 / 0.7 is 10.000000000000002, and must give 10, not 11. */
export function ceilSafe(x: number): number {
  return snapped(x, Math.ceil);
}

/** floor that ignores float noise: 0.3 / 0.1 is 2.9999999999999996, and must give 3, not 2. */
export function floorSafe(x: number): number {
  return snapped(x, Math.floor);
}
