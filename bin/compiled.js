// Plain JavaScript: decides, before anything is compiled or loaded, whether
// the build in dist/ can run, or the sources must (through tsx).
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SOURCES = ['src', 'dashboard', 'workers'];

/**
 * The compiled form of a module under the project root (like
 * 'src/cli/main.ts'), or null when there is no build or a source file is
 * newer than it: an edited checkout never runs stale code.
 * @param {string} module
 * @returns {string | null}
 */
export function compiledModule(module) {
  const built = path.join(root, 'dist', module.replace(/\.ts$/, '.js'));
  if (!existsSync(built)) return null;
  const builtAt = statSync(built).mtimeMs;
  for (const dir of SOURCES) {
    const base = path.join(root, dir);
    if (!existsSync(base)) continue;
    for (const file of readdirSync(base, { recursive: true })) {
      if (String(file).endsWith('.ts') && statSync(path.join(base, String(file))).mtimeMs > builtAt) return null;
    }
  }
  return built;
}
