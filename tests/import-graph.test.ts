import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../src/project-root.js';

/**
 * The layers, lowest first: a module may import its own layer or a lower
 * one, never a higher one (the framework never reaches up to the families or
 * to the entry points that hand them in).
 */
const LAYERS: [number, RegExp][] = [
  // The launcher's modules shared with the processes (bin/ is plain JavaScript).
  [0, /^src\/(config|deps|generated)\/|^src\/(log|project-root)\.ts$|^bin\/(priority|heap-limit)\.js$/],
  [1, /^src\/(db|redis)\/|^src\/process-(exit|priority|stop)\.ts$/],
  [2, /^src\/(fleet|demo)\//],
  [3, /^src\/market\//],
  [4, /^src\/families\//],
  // The processes: each entry point is handed the families by its index.ts.
  [5, /^(dashboard|workers)\//],
  [6, /^src\/cli\//],
];

function layerOf(file: string): number {
  const layer = LAYERS.find(([, pattern]) => pattern.test(file));
  if (!layer) throw new Error(`${file} is in no layer: add its folder to LAYERS`);
  return layer[0];
}

function sources(): string[] {
  return ['src', 'dashboard', 'workers'].flatMap((dir) =>
    (readdirSync(path.join(PROJECT_ROOT, dir), { recursive: true }) as string[])
      .filter((file) => file.endsWith('.ts') && !file.includes('generated'))
      .map((file) => path.posix.join(dir, file.split(path.sep).join('/'))),
  );
}

/** The project modules a file imports, statically or dynamically, types included. */
function importsOf(file: string): string[] {
  const text = readFileSync(path.join(PROJECT_ROOT, file), 'utf8');
  const specifiers = [...text.matchAll(/(?:from\s+|import\s*\(\s*|^import\s+)['"](\.[^'"]+)['"]/gm)].map((m) => m[1]!);
  return specifiers.map((spec) => {
    const target = path.posix.normalize(path.posix.join(path.posix.dirname(file), spec));
    // A TypeScript module is imported by its .js name; a JavaScript one (bin/) is what it says.
    const typescript = target.replace(/\.js$/, '.ts');
    return existsSync(path.join(PROJECT_ROOT, typescript)) ? typescript : target;
  });
}

describe('the import graph', () => {
  const graph = new Map(sources().map((file) => [file, importsOf(file).filter((target) => !target.includes('generated'))]));

  it('has no upward import', () => {
    const upward = [...graph].flatMap(([file, targets]) => targets.filter((target) => layerOf(target) > layerOf(file)).map((target) => `${file} -> ${target}`));
    expect(upward).toEqual([]);
  });

  it('has no cycle', () => {
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const visit = (file: string, trail: string[]) => {
      if (state.get(file) === 'done') return;
      if (state.get(file) === 'open') {
        cycles.push([...trail.slice(trail.indexOf(file)), file].join(' -> '));
        return;
      }
      state.set(file, 'open');
      for (const target of graph.get(file) ?? []) visit(target, [...trail, file]);
      state.set(file, 'done');
    };
    for (const file of graph.keys()) visit(file, []);
    expect(cycles).toEqual([]);
  });

  it('reads every import it checks (the test would pass on nothing otherwise)', () => {
    expect(graph.size).toBeGreaterThan(70);
    expect(graph.get('src/cli/main.ts')).toContain('src/cli/status.ts');
    expect(graph.get('src/families/lots.ts')).toContain('src/fleet/family.ts');
    // A type-only import binds the layers as much as any other.
    expect(readFileSync(path.join(PROJECT_ROOT, 'src/redis/connection.ts'), 'utf8')).toMatch(/^import type .* from '\.\.\/config\/env\.js';$/m);
    expect(graph.get('src/redis/connection.ts')).toContain('src/config/env.ts');
  });
});
