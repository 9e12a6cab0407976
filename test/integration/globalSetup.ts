// Finds the real services for the integration project and hands them to the tests. Fails the
// run (never skips) when a service is missing.
import type { TestProject } from 'vitest/node';
import { HOW_TO_GET_SERVICES, SERVICE_KEYS, type ServiceEnv, discoverServices } from '../support/services.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    services: ServiceEnv;
  }
}

export default function setup(project: TestProject): void {
  const services = discoverServices();
  const missing = SERVICE_KEYS.filter((k) => services[k] === undefined);
  if (missing.length > 0) throw new Error(`missing ${missing.join(', ')}: ${HOW_TO_GET_SERVICES}`);
  project.provide('services', services);
}
