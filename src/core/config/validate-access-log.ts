// The access-log formats of the mesh config (accessLogFile, accessLogEncoding, accessLogFormat) and
// of its `envoyFileAccessLog` and `envoyOtelAls` providers (`logFormat.text`, `logFormat.labels`), and
// a Telemetry's `filter.expression`, checked as Envoy would take them: what Envoy refuses (a stray
// `%`, an operator it does not have, an operator missing its argument, an expression that is not
// CEL, accessLogFormat under JSON that is not a JSON object) is an error; an operator or expression
// meshgate does not evaluate is a warning, with what it prints or does instead.

import type { FieldPath } from '../model/resource.js';
import { asBool, asEnum, asObj, asString, atMostOne, knownFields, type Checker, type Obj } from './validate-common.js';
import { compileFormat, type CompiledFormat } from '../telemetry/access-log-format.js';
import { parseJsonLogFormat } from '../telemetry/access-log-formats.js';
import { compileExpression } from '../telemetry/metric-expression.js';

function report(c: Checker, f: CompiledFormat, at: FieldPath): void {
  for (const e of f.errors) c.error(at, `not an Envoy access-log format: ${e}`);
  const u = f.unsupported;
  if (u.length > 0) c.warn(at, `${u.join(', ')} ${u.length === 1 ? 'is' : 'are'} not evaluated by meshgate and ${u.length === 1 ? 'prints' : 'print'} '-'`);
}

/** The values of a JSON format are format strings, or objects of them (nesting), or plain numbers and booleans. */
function checkJsonFormat(c: Checker, spec: Obj, at: FieldPath): void {
  for (const [k, v] of Object.entries(spec)) {
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) checkJsonFormat(c, v as Obj, [...at, k]);
    else if (typeof v === 'string') report(c, compileFormat(v), [...at, k]);
    else if (typeof v !== 'number' && typeof v !== 'boolean') c.error([...at, k], 'must be a format string (such as "%RESPONSE_CODE%") or a mapping of them');
  }
}

/** accessLogFile, accessLogEncoding and accessLogFormat of the mesh config at `at` (`data.mesh`). */
export function checkMeshAccessLog(c: Checker, m: Obj, at: FieldPath): void {
  asString(c, m['accessLogFile'], [...at, 'accessLogFile']);
  const encoding = asEnum(c, m['accessLogEncoding'], [...at, 'accessLogEncoding'], ['TEXT', 'JSON'] as const);
  const format = asString(c, m['accessLogFormat'], [...at, 'accessLogFormat']);
  if (format === undefined || format === '') return;
  const fat = [...at, 'accessLogFormat'];
  if (encoding !== 'JSON') return report(c, compileFormat(format), fat);
  const spec = parseJsonLogFormat(format);
  // Istio logs the failure and writes its default JSON keys instead; meshgate says so where it is.
  if (!spec) return c.error(fat, 'under accessLogEncoding JSON, accessLogFormat must be a JSON object of keys to format strings ({"status": "%RESPONSE_CODE%"}); Istio would write its default keys instead');
  checkJsonFormat(c, spec, fat);
}

/**
 * A provider's `logFormat`: a file's is `text` or `labels` (its JSON keys), one of the two; a
 * collector's may have both (the record's body and its attributes).
 */
function checkLogFormat(c: Checker, p: Obj, at: FieldPath, oneOf: boolean): void {
  const format = asObj(c, p['logFormat'], [...at, 'logFormat']);
  if (!format) return;
  knownFields(c, format, [...at, 'logFormat'], ['text', 'labels']);
  if (oneOf) atMostOne(c, format, [...at, 'logFormat'], ['text', 'labels']);
  const text = asString(c, format['text'], [...at, 'logFormat', 'text']);
  if (text) report(c, compileFormat(text), [...at, 'logFormat', 'text']);
  const labels = asObj(c, format['labels'], [...at, 'logFormat', 'labels']);
  if (labels) checkJsonFormat(c, labels, [...at, 'logFormat', 'labels']);
}

/** An `envoyFileAccessLog` provider: where it writes and in what format. */
export function checkFileLogProvider(c: Checker, p: Obj, at: FieldPath): void {
  knownFields(c, p, at, ['path', 'logFormat', 'omitEmptyValues']);
  asString(c, p['path'], [...at, 'path']);
  if (asBool(c, p['omitEmptyValues'], [...at, 'omitEmptyValues'])) c.warn([...at, 'omitEmptyValues'], "not supported: values that are not known are written as '-' (null in JSON)");
  checkLogFormat(c, p, at, true);
}

/** An `envoyOtelAls` provider's logName and logFormat (its collector's address is checked with the other providers'). */
export function checkOtelLogProvider(c: Checker, als: Obj, at: FieldPath): void {
  asString(c, als['logName'], [...at, 'logName']);
  checkLogFormat(c, als, at, false);
}

/** A Telemetry `accessLogging[].filter.expression`: not CEL is an error, CEL meshgate does not evaluate a warning. */
export function checkFilterExpression(c: Checker, expression: string, at: FieldPath): void {
  const compiled = compileExpression(expression);
  if (compiled.ok) return;
  if (compiled.syntax) c.error(at, `not a CEL expression: ${compiled.reason}`);
  else c.warn(at, `expression not supported (${compiled.reason}); every request is logged`);
}
