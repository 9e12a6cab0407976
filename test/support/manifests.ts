// Kubernetes manifests for the deployment tests: YAML documents in, each validated against the
// OpenAPI schema of its kind as shipped by the kubernetes-models packages (built-in kinds, KEDA,
// cert-manager, Prometheus Operator): required fields, types, enums and formats. Offline.
import * as certManager from '@kubernetes-models/cert-manager/cert-manager.io/v1';
import * as keda from '@kubernetes-models/keda/keda.sh/v1alpha1';
import * as monitoring from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import * as apps from 'kubernetes-models/apps/v1';
import * as networking from 'kubernetes-models/networking.k8s.io/v1';
import * as policy from 'kubernetes-models/policy/v1';
import * as core from 'kubernetes-models/v1';
import { parseAllDocuments } from 'yaml';

export interface Manifest {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly namespace?: string; readonly [key: string]: unknown };
  readonly spec?: Record<string, unknown>;
  readonly [key: string]: unknown;
}

type Model = new (data: Manifest) => { validate(): void };

const groups: Record<string, Record<string, unknown>> = {
  v1: core,
  'apps/v1': apps,
  'networking.k8s.io/v1': networking,
  'policy/v1': policy,
  'keda.sh/v1alpha1': keda,
  'monitoring.coreos.com/v1': monitoring,
  'cert-manager.io/v1': certManager,
};

/** Every non-empty YAML document of a multi-document text; throws on a YAML error. */
export function parseManifests(text: string): Manifest[] {
  return parseAllDocuments(text)
    .map((doc) => {
      if (doc.errors.length > 0) throw new Error(doc.errors.map((e) => e.message).join('; '));
      return doc.toJS() as Manifest | null;
    })
    .filter((m): m is Manifest => m !== null && m !== undefined);
}

/** Problems found by the kind's schema, or a note that the kind is unknown here. Empty: valid. */
export function schemaProblems(manifest: Manifest): string[] {
  const model = groups[manifest.apiVersion]?.[manifest.kind] as Model | undefined;
  if (model === undefined) return [`no schema for ${manifest.apiVersion} ${manifest.kind}`];
  try {
    new model(manifest).validate();
    return [];
  } catch (err) {
    return [(err as Error).message];
  }
}

export const describe = (m: Manifest) => `${m.apiVersion} ${m.kind}/${m.metadata?.name}`;
