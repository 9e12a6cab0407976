// A server reflection client (grpc.reflection.v1) for tests: the services a port lists, or the
// status it answers with when it serves no reflection.
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

type ListAnswer = { list_services_response?: { service: { name: string }[] } };

export const ServerReflection = (
  grpc.loadPackageDefinition(
    protoLoader.loadSync(
      fileURLToPath(
        new URL('../../node_modules/@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto', import.meta.url),
      ),
      { keepCase: true, defaults: true, oneofs: true },
    ),
  ) as unknown as { grpc: { reflection: { v1: { ServerReflection: grpc.ServiceClientConstructor } } } }
).grpc.reflection.v1.ServerReflection;

/** Lists the services at `address`: OK and their names, or the status the call failed with. */
export async function listServices(
  address: string,
  credentials = grpc.credentials.createInsecure(),
): Promise<{ code: grpc.status; names: string[] }> {
  const client = new ServerReflection(address, credentials);
  const call = (
    client as unknown as { ServerReflectionInfo(options: grpc.CallOptions): grpc.ClientDuplexStream<unknown, ListAnswer> }
  ).ServerReflectionInfo({ deadline: Date.now() + 3000 });
  try {
    return await new Promise((resolve) => {
      call.on('data', (m: ListAnswer) =>
        resolve({ code: grpc.status.OK, names: (m.list_services_response?.service ?? []).map((s) => s.name) }),
      );
      call.on('error', (err: grpc.ServiceError) => resolve({ code: err.code, names: [] }));
      call.write({ list_services: '' });
    });
  } finally {
    call.cancel();
    client.close();
  }
}
