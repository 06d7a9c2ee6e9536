// The YAML parser, loaded when YAML is first read rather than when the program starts: a sidecar fed by
// the control plane gets its configuration as JSON and never needs the parser's code in its memory.

import { createRequire } from 'node:module';

type Yaml = typeof import('yaml');

let loaded: Yaml | undefined;

export function yaml(): Yaml {
  return (loaded ??= createRequire(import.meta.url)('yaml') as Yaml);
}
