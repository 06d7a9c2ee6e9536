// The format each file log writes, from the configuration as Istio reads it: the mesh config's
// accessLogEncoding (TEXT, the default, or JSON) and accessLogFormat (a text format string, or under
// JSON an object of keys to format strings, written as JSON); an `envoyFileAccessLog` provider's
// `logFormat.text` or `logFormat.labels` (JSON); Istio's default text format or default JSON keys
// when none is given. Istio adds a newline to a text format that lacks one. Formats are compiled once
// and kept by their text, so a new snapshot with the same settings reuses them.

import { compileFormat, compileJsonFormat, ISTIO_JSON_FORMAT, ISTIO_TEXT_FORMAT, type CompiledFormat } from './access-log-format.js';

/** The proxy's standard output: where Istio's `envoy` provider writes, and meshgate's `--access-log`. */
export const STDOUT = '/dev/stdout';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

const compiled = new Map<string, CompiledFormat>();

function cached(key: string, make: () => CompiledFormat): CompiledFormat {
  let f = compiled.get(key);
  if (!f) {
    // Bounded: formats come from configuration, but a long-running process sees many snapshots.
    if (compiled.size > 200) compiled.clear();
    compiled.set(key, (f = make()));
  }
  return f;
}

/** A text format as Istio hands it to Envoy: its own default when empty, a newline added when missing. */
export function textFormat(text: string | undefined): CompiledFormat {
  const line = text === undefined || text === '' ? ISTIO_TEXT_FORMAT : text.endsWith('\n') ? text : `${text}\n`;
  return cached(`t${line}`, () => compileFormat(line));
}

/** A JSON format (its keys sorted): Istio's default keys when the object is empty. */
export function jsonFormat(spec: Obj | undefined): CompiledFormat {
  const keys = spec && Object.keys(spec).length > 0 ? spec : ISTIO_JSON_FORMAT;
  return cached(`j${JSON.stringify(keys)}`, () => compileJsonFormat(keys));
}

/** meshgate's own log, when the mesh config says nothing of it: Istio's JSON keys and the local reply's error code. */
const MESHGATE_DEFAULT = compileJsonFormat(ISTIO_JSON_FORMAT, { key: 'meshgate_error_code', read: (e) => ('errorCode' in e ? e.errorCode : undefined) });

/** accessLogFormat under accessLogEncoding JSON: a JSON object, or undefined (Istio then uses its default keys). */
export function parseJsonLogFormat(text: string): Obj | undefined {
  try {
    const v: unknown = JSON.parse(text);
    return isObj(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The mesh config's format. `builtIn`: for Istio's `envoy` provider, which writes Istio's default
 * text format when the mesh config sets no encoding or format; otherwise (the proxy's own log with no
 * Telemetry about it) a mesh config that sets none of accessLogFile, accessLogEncoding and
 * accessLogFormat leaves meshgate's default.
 */
export function meshLogFormat(mesh: Obj | undefined, builtIn: boolean): CompiledFormat {
  const set = (k: string): boolean => typeof mesh?.[k] === 'string' && mesh[k] !== '';
  if (!builtIn && !set('accessLogFile') && !set('accessLogEncoding') && !set('accessLogFormat')) return MESHGATE_DEFAULT;
  const format = set('accessLogFormat') ? (mesh!['accessLogFormat'] as string) : undefined;
  if (mesh?.['accessLogEncoding'] === 'JSON') return jsonFormat(format !== undefined ? parseJsonLogFormat(format) : undefined);
  return textFormat(format);
}

/** An envoyFileAccessLog provider's `logFormat`: `text`, or `labels` as JSON; Istio's default text without either. */
export function fileFormat(logFormat: unknown): CompiledFormat {
  if (isObj(logFormat) && isObj(logFormat['labels'])) return jsonFormat(logFormat['labels']);
  return textFormat(isObj(logFormat) && typeof logFormat['text'] === 'string' ? logFormat['text'] : undefined);
}
