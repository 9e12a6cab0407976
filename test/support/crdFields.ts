// Fields a custom resource names that its CustomResourceDefinition does not define. The
// kubernetes-models validators (manifests.ts) check types, enums and required fields but accept
// any field they do not know, and the API server prunes such a field without a word: a misspelt
// `pollingInteval` in an example would be dropped in every cluster it is copied to. The CRDs come
// from the projects' own modules (scripts/tools.sh, CRDS=...).
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { Manifest } from './manifests.ts';

interface Schema {
  readonly properties?: Record<string, Schema>;
  readonly additionalProperties?: Schema | boolean;
  readonly items?: Schema;
  readonly 'x-kubernetes-preserve-unknown-fields'?: boolean;
}

interface Crd {
  readonly kind: string;
  readonly spec: {
    readonly group: string;
    readonly names: { readonly kind: string };
    readonly versions: readonly { readonly name: string; readonly schema?: { readonly openAPIV3Schema: Schema } }[];
  };
}

/** Each CRD version's schema in `dir` (YAML files), by `apiVersion kind` ("keda.sh/v1alpha1 ScaledObject"). */
export function loadCrdSchemas(dir: string): Map<string, Schema> {
  const schemas = new Map<string, Schema>();
  for (const file of readdirSync(dir).filter((f) => /\.ya?ml$/.test(f))) {
    for (const doc of parseAllDocuments(readFileSync(join(dir, file), 'utf8'))) {
      const crd = doc.toJS() as Crd | null;
      if (crd?.kind !== 'CustomResourceDefinition') continue;
      for (const version of crd.spec.versions) {
        if (version.schema === undefined) continue;
        schemas.set(`${crd.spec.group}/${version.name} ${crd.spec.names.kind}`, version.schema.openAPIV3Schema);
      }
    }
  }
  return schemas;
}

/** The paths of the fields in `manifest` that its schema does not define (none: every field known). */
export function unknownFields(manifest: Manifest, schema: Schema): string[] {
  const out: string[] = [];
  walk(manifest, schema, '', out);
  return out;
}

function walk(value: unknown, schema: Schema | undefined, path: string, out: string[]): void {
  if (schema === undefined || value === null || typeof value !== 'object') return;
  if (Array.isArray(value)) {
    value.forEach((item, i) => walk(item, schema.items, `${path}[${i}]`, out));
    return;
  }
  const open = schema['x-kubernetes-preserve-unknown-fields'] === true || schema.additionalProperties === true;
  for (const [key, field] of Object.entries(value)) {
    const known = schema.properties?.[key];
    if (known !== undefined) walk(field, known, `${path}.${key}`, out);
    else if (typeof schema.additionalProperties === 'object') walk(field, schema.additionalProperties, `${path}.${key}`, out);
    // An object schema without properties (metadata: type object) says nothing of its fields.
    else if (!open && schema.properties !== undefined) out.push(`${path}.${key}`);
  }
}
