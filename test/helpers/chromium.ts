// Headless Chromium for browser tests: Debian's `chromium` driven by playwright-core (no browser
// download), with a throwaway profile. Skipped where it is not installed, except in CI.

import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

export function chromiumSkipReason(): string | false {
  const probe = spawnSync(CHROMIUM, ['--version'], { encoding: 'utf8' });
  if (!probe.error && probe.status === 0) return false;
  const why = `chromium is not installed (${probe.error?.message ?? `exit ${probe.status}`})`;
  if (process.env.CI) throw new Error(`${why}; CI must install it (.ci/run installs chromium)`);
  return `${why}; install chromium to run this test`;
}

export async function launchChromium(viewport = { width: 1280, height: 720 }): Promise<{ context: BrowserContext; close(): Promise<void> }> {
  const profile = await mkdtemp(join(tmpdir(), 'meshgate-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  return {
    context,
    close: async () => {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}
