// Sums the test results of every suite (vitest JSON reports, the C tests' "N passed, N failed"
// line) into one plain closing line for CI logs: "N passed, N failed, N skipped".
import { existsSync, readFileSync } from 'node:fs';

let passed = 0;
let failed = 0;
let skipped = 0;
for (const file of process.argv.slice(2)) {
  if (!existsSync(file)) {
    failed++; // a suite that wrote no report did not run to the end
    continue;
  }
  const text = readFileSync(file, 'utf8');
  if (file.endsWith('.json')) {
    const report = JSON.parse(text);
    passed += report.numPassedTests ?? 0;
    failed += report.numFailedTests ?? 0;
    skipped += (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
  } else {
    const m = /(\d+) passed, (\d+) failed/.exec(text);
    if (m) {
      passed += Number(m[1]);
      failed += Number(m[2]);
    } else {
      failed++;
    }
  }
}
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
