/**
 * A JSON number written with a fraction or exponent (`2.0`, `1e0`). JSON.parse turns `2.0` into
 * the integer 2, but OpenAlgo (Python) sees a float and rejects it, so the request parser marks
 * such literals with this wrapper before normalising. Its own module: both the Python behaviours
 * (python.ts) and the mode rules (modes.ts) need it, and modes.ts needs python.ts.
 */
export class FloatLiteral {
  constructor(readonly text: string) {}
}
