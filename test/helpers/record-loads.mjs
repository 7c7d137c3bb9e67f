// `node --import tsx --import ./test/helpers/record-loads.mjs …`: records the URL of every module the
// process imports into $TRELLIS_RECORD_LOADS (see loaded-modules.ts). Registered after tsx, so it sees the
// URLs tsx resolved (.ts files for .js specifiers).
import { register } from 'node:module';

const file = process.env.TRELLIS_RECORD_LOADS;
if (!file) throw new Error('record-loads.mjs needs TRELLIS_RECORD_LOADS');
register('./record-loads-hooks.mjs', import.meta.url, { data: { file } });
