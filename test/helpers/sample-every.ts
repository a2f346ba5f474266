/**
 * The sampling loop of the deployment tests (test/e2e/deployments.test.ts, ha-deploy.test.ts and the
 * libvirt VmDeployFixture): what a test samples is its own (task folders, /proc, VM health files), the
 * loop that gathers the samples while a deployment runs is this one.
 */

/** sampleEvery calls sample now and every `ms` until stop(), which samples once more and returns all the samples. */
export function sampleEvery<S>(sample: () => S, ms: number): { stop: () => S[] } {
  const samples: S[] = [sample()];
  const timer = setInterval(() => samples.push(sample()), ms);
  return { stop: () => (clearInterval(timer), samples.push(sample()), samples) };
}
