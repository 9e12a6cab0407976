// Preloaded (--import) into a process by the integration tests: says on stderr how many SIGTERM
// listeners it has when its first heavy module (SIGNAL_PROBE_MODULE, @grpc/grpc-js unless set) is
// resolved.
import { registerHooks } from 'node:module';

const heavy = process.env.SIGNAL_PROBE_MODULE ?? '@grpc/grpc-js';
let said = false;
registerHooks({
  resolve(specifier, context, next) {
    if (!said && specifier === heavy) {
      said = true;
      process.stderr.write(`signal probe: ${heavy} loads with ${process.listenerCount('SIGTERM')} SIGTERM listeners\n`);
    }
    return next(specifier, context);
  },
});
