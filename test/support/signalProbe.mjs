// Preloaded (--import) into a scaler by test/integration/process.test.ts: says on stderr how many
// SIGTERM listeners the process has when its first heavy module (@grpc/grpc-js) is resolved.
import { registerHooks } from 'node:module';

let said = false;
registerHooks({
  resolve(specifier, context, next) {
    if (!said && specifier === '@grpc/grpc-js') {
      said = true;
      process.stderr.write(`signal probe: @grpc/grpc-js loads with ${process.listenerCount('SIGTERM')} SIGTERM listeners\n`);
    }
    return next(specifier, context);
  },
});
