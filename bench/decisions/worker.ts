// A worker thread of runJobs (matrix.ts): runs each job it is sent and posts its rows back.
import { parentPort } from 'node:worker_threads';
import { type Job, runJob } from './matrix.ts';

parentPort!.on('message', (job: Job) => {
  runJob(job).then(
    (rows) => parentPort!.postMessage(rows),
    (err: unknown) => {
      throw err;
    },
  );
});
