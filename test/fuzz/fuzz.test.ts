/**
 * A short fuzz run of every target (`npm run fuzz` runs the same properties longer). A failure
 * prints fast-check's seed and shrunk counterexample.
 */
import { describe, it } from 'vitest';
import { TARGETS, TEST_RUNS } from './properties.js';

for (const [target, { description, cases }] of Object.entries(TARGETS)) {
  describe(`fuzz ${target} (${description})`, () => {
    for (const fuzz of cases) {
      it(fuzz.name, () => fuzz.assert(TEST_RUNS));
    }
  });
}
