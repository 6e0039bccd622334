/**
 * Shared readers for the deployment checks: repository paths, YAML files, the chart's values and
 * templates, and where each service reads its environment. Plain file reads, no network.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';
import { parse, parseAllDocuments } from 'yaml';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const CHART_DIR = join(ROOT, 'charts/smart-routing');
export const TEMPLATES_DIR = join(CHART_DIR, 'templates');

/** The four services that ship as images, by package folder. */
export const IMAGE_PACKAGES = ['dispatcher', 'worker', 'log-collector', 'uploader'] as const;
export type ImagePackage = (typeof IMAGE_PACKAGES)[number];

export function readText(path: string): string {
  return readFileSync(join(ROOT, path), 'utf8');
}

export function readJson<T = unknown>(path: string): T {
  return JSON.parse(readText(path)) as T;
}

/** Parses a single-document YAML file, throwing on any syntax error. */
export function readYaml<T = unknown>(path: string): T {
  return parse(readText(path), { prettyErrors: true }) as T;
}

/** Every document of a YAML file with its errors (empty when it parses). */
export function yamlErrors(path: string): string[] {
  return parseAllDocuments(readText(path)).flatMap((doc) => doc.errors.map((e) => e.message));
}

/** Files under `dir` (repository-relative), recursively, skipping node_modules. */
export function listFiles(dir: string, filter: (path: string) => boolean = () => true): string[] {
  const out: string[] = [];
  const walk = (abs: string): void => {
    for (const name of readdirSync(abs)) {
      if (name === 'node_modules' || name === '.terraform') continue;
      const child = join(abs, name);
      if (statSync(child).isDirectory()) walk(child);
      else if (filter(child)) out.push(relative(ROOT, child));
    }
  };
  walk(join(ROOT, dir));
  return out.sort();
}

/** True when `command` is an executable on PATH. */
export function onPath(command: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Merges an overlay into base values the way Helm coalesces `-f` files: maps merge key by key,
 * anything else (lists, scalars) replaces, and null deletes the key.
 */
export function mergeValues(base: JsonObject, overlay: JsonObject): JsonObject {
  const out: JsonObject = { ...base };
  for (const [key, value] of Object.entries(overlay)) {
    if (value === null) delete out[key];
    else if (isObject(value) && isObject(out[key])) out[key] = mergeValues(out[key], value);
    else out[key] = value;
  }
  return out;
}

/** True when the dotted `path` (e.g. `worker.triton.gpus`) names a key of `values`. */
export function hasPath(values: JsonObject, path: string): boolean {
  let node: Json = values;
  for (const key of path.split('.')) {
    if (!isObject(node) || !Object.prototype.hasOwnProperty.call(node, key)) return false;
    node = node[key];
  }
  return true;
}

export function chartValues(file = 'values.yaml'): JsonObject {
  return readYaml<JsonObject>(`charts/smart-routing/${file}`);
}

/** Template files of the chart: name -> text. */
export function chartTemplates(): Map<string, string> {
  const out = new Map<string, string>();
  for (const name of readdirSync(TEMPLATES_DIR).sort())
    out.set(name, readFileSync(join(TEMPLATES_DIR, name), 'utf8'));
  return out;
}

/**
 * Values paths a template reads: `.Values.a.b` anywhere (also `$.Values…` and `.root.Values…`), and
 * `$v.c` where the template set `$v := .Values.a.b` (giving `a.b.c`).
 */
export function valuesPathsUsed(template: string): string[] {
  const paths = new Set<string>();
  for (const m of template.matchAll(/\.Values\.([A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*)/g)) paths.add(m[1]!);
  const aliases = new Map<string, string>();
  for (const m of template.matchAll(
    /\$([A-Za-z0-9_]+)\s*:=\s*\.Values\.([A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*)\s*(?:-?\}\}|\))/g,
  ))
    aliases.set(m[1]!, m[2]!);
  for (const [alias, base] of aliases) {
    const re = new RegExp(`\\$${alias}\\.([A-Za-z0-9_]+(?:\\.[A-Za-z0-9_]+)*)`, 'g');
    for (const m of template.matchAll(re)) paths.add(`${base}.${m[1]}`);
  }
  return [...paths].sort();
}

export interface ContainerSpec {
  template: string;
  name: string;
  /** Names of the environment variables the template sets on it (`- name: UPPER_CASE`). */
  env: string[];
  body: string;
}

/** `define "name"` blocks of the templates: name -> body. */
export function templateDefines(templates: Map<string, string>): Map<string, string> {
  const out = new Map<string, string>();
  for (const text of templates.values())
    for (const m of text.matchAll(
      /\{\{-? define "([^"]+)" -?\}\}([\s\S]*?)\{\{-? end -?\}\}\n(?=\n|\{\{|$)/g,
    ))
      out.set(m[1]!, m[2]!);
  return out;
}

/** Replaces `include "name" …` actions by the named template's body (one level), so env set by a helper counts. */
export function expandIncludes(text: string, defines: Map<string, string>): string {
  return text.replace(
    /\{\{-?\s*include "([^"]+)"[^}]*\}\}/g,
    (action, name: string) => defines.get(name) ?? action,
  );
}

/**
 * Splits templates into containers. Our templates start every container with `- name: <name>`
 * directly followed by `image:`, so a container runs from there to the next container or the end.
 * Helper templates are expanded first, so env vars a helper sets count for the container.
 */
export function templateContainers(templates: Map<string, string>): ContainerSpec[] {
  const out: ContainerSpec[] = [];
  const defines = templateDefines(templates);
  for (const [template, raw] of templates) {
    if (template.startsWith('_')) continue;
    const text = expandIncludes(raw, defines);
    const starts = [...text.matchAll(/^(\s*)- name: ([a-z0-9-]+)\n\1 {2}image:/gm)];
    starts.forEach((m, i) => {
      const body = text.slice(m.index, i + 1 < starts.length ? starts[i + 1]!.index : text.length);
      const env = [...new Set([...body.matchAll(/^\s*- name: ([A-Z][A-Z0-9_]*)\s*$/gm)].map((e) => e[1]!))];
      out.push({ template, name: m[2]!, env, body });
    });
  }
  return out;
}

/** Every `.ts` file under `<pkg>/src`, concatenated ('' when there is none yet). */
export function packageSource(pkg: string): string {
  if (!existsSync(join(ROOT, pkg, 'src'))) return '';
  return listFiles(join(pkg, 'src'), (p) => p.endsWith('.ts'))
    .map((p) => readText(p))
    .join('\n');
}

/** True when the package's source names the environment variable (as a whole word). */
export function sourceReadsEnv(source: string, name: string): boolean {
  return new RegExp(`(?<![A-Za-z0-9_])${name}(?![A-Za-z0-9_])`).test(source);
}

/** Root package.json scripts. */
export function rootScripts(): Record<string, string> {
  return readJson<{ scripts?: Record<string, string> }>('package.json').scripts ?? {};
}

/** The npm scripts a shell command line runs: `npm run X`, `npm run-script X`, `npm test`, `npm start`. */
export function npmScriptsCalled(command: string): string[] {
  const out: string[] = [];
  for (const m of command.matchAll(/\bnpm\s+(?:run|run-script)\s+([A-Za-z0-9:_-]+)/g)) out.push(m[1]!);
  for (const m of command.matchAll(/\bnpm\s+(test|start|stop|restart)\b/g)) out.push(m[1]!);
  return out;
}

/**
 * A template's static YAML skeleton: lines that are only a template action are dropped and inline
 * actions become `X`. What is left must parse as YAML, which catches mis-indented literal lines
 * (the helpers' `nindent` output is not checked this way).
 */
export function templateSkeleton(template: string): string {
  return template
    .split('\n')
    .filter((line) => !/^\s*\{\{-?[\s\S]*\}\}\s*$/.test(line))
    .map((line) => line.replace(/\{\{-?[\s\S]*?-?\}\}/g, 'X'))
    .join('\n');
}
