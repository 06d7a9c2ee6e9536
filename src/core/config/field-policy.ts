// Whether an unknown field is an error (the default, as `kubectl apply` with strict field validation
// rejects it) or only a warning (`--allow-unknown-fields`, for configs written for a newer Istio).
// One setting per process: every command and role reads config the same way, and forked gateway
// workers inherit it through the environment.

const ENV = 'MESHGATE_ALLOW_UNKNOWN_FIELDS';

export function allowUnknownFields(): boolean {
  return process.env[ENV] === '1';
}

/** Called once by the command line, before any config is read. */
export function setAllowUnknownFields(allow: boolean): void {
  if (allow) process.env[ENV] = '1';
  else delete process.env[ENV];
}
