// `meshgate --version` (one line) and `meshgate version` (the build's details): the package version,
// the commit when run from a git checkout, and the runtime it runs on.

import { readFileSync } from 'node:fs';
import { PACKAGE_ROOT as ROOT } from './package-root.js';

export function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { version?: string }).version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** The commit of a git checkout (HEAD, or the branch it names); undefined in an installed package. */
function gitCommit(): string | undefined {
  try {
    const head = readFileSync(`${ROOT}.git/HEAD`, 'utf8').trim();
    if (!head.startsWith('ref: ')) return head.slice(0, 12);
    return readFileSync(`${ROOT}.git/${head.slice(5)}`, 'utf8').trim().slice(0, 12);
  } catch {
    return undefined;
  }
}

export function versionLine(): string {
  return `meshgate ${packageVersion()}`;
}

export function versionDetails(): string {
  const commit = gitCommit();
  return [
    `meshgate:  ${packageVersion()}`,
    ...(commit ? [`commit:    ${commit}`] : []),
    `node:      ${process.version}`,
    `platform:  ${process.platform}/${process.arch}`,
    'istio api: networking.istio.io/v1 (v1beta1, v1alpha3), security.istio.io/v1 (v1beta1)',
  ].join('\n');
}
